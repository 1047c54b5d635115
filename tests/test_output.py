"""ParaView series (VTX, XDMF) and off-screen PNGs."""

import os
import xml.etree.ElementTree as ET

import dolfinx.fem
import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.io.output import SeriesWriter, plot_png


@pytest.fixture
def solver():
    msh = meshes.rectangle(MPI.COMM_WORLD, [-3, -3], [3, 3], 0.3)
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), degree=2, dt=0.1)
    s.set_initial(lambda x: gaussian_density(x, [1, 0], 0.3 * np.eye(2)))
    return s


def test_xdmf_series(tmp_path, solver):
    with SeriesWriter(tmp_path / "rho", [solver.rho], fmt="xdmf") as w:
        w.write(solver.t)
        for _ in range(3):
            solver.step()
            w.write(solver.t)
    assert w.path.endswith(".xdmf") and os.path.exists(tmp_path / "rho.h5")
    times = [float(t.get("Value")) for t in ET.parse(w.path).getroot().iter("Time")]
    np.testing.assert_allclose(times, [0.0, 0.1, 0.2, 0.3], atol=1e-12)


def test_vtx_series(tmp_path, solver):
    import dolfinx

    # docker/packages.txt's python3-dolfinx is built with ADIOS2: its absence is a broken environment, not a skip
    assert dolfinx.common.has_adios2, "dolfinx built without ADIOS2 (the environment's python3-dolfinx has it)"
    with SeriesWriter(tmp_path / "rho", [solver.rho]) as w:
        w.write(0.0)
        solver.step()
        w.write(solver.t)
    assert w.fmt == "vtx" and os.path.isdir(w.path)
    assert os.path.getsize(os.path.join(w.path, "data.0")) > 8 * solver.num_dofs


def test_png_shows_the_density(tmp_path, solver):
    from fpjko.solvers.io import render

    ok, why = render.can_render()
    # python3-pyvista, xvfb and libgl1-mesa-dri are in docker/packages.txt: not rendering is a failure, not a skip
    assert ok, f"pyvista cannot render here: {why}"
    import matplotlib.image

    name = plot_png(solver.rho, str(tmp_path / "rho.png"), title="t = 0")
    img = matplotlib.image.imread(name)
    assert img.shape[0] > 300 and img.shape[1] > 300
    rgb = img[..., :3]
    coloured = np.mean(np.ptp(rgb, axis=2) > 0.1)      # pixels of the colour map, not grey/white
    assert coloured > 0.15, coloured


def test_png_falls_back_to_matplotlib_without_a_renderer(tmp_path, monkeypatch):
    """No way to render (FPJKO_NO_RENDER): the PNG is still written, by matplotlib, with one warning."""
    import warnings

    from fpjko.solvers.io import render

    monkeypatch.setattr(render, "_state", {})
    monkeypatch.setenv("FPJKO_NO_RENDER", "1")
    msh = meshes.rectangle(MPI.COMM_WORLD, [-1, -1], [1, 1], 0.25)
    u = dolfinx.fem.Function(dolfinx.fem.functionspace(msh, ("Lagrange", 2)), name="rho")
    u.interpolate(lambda x: 1 + x[0] ** 2)
    with pytest.warns(RuntimeWarning, match="cannot render off screen here.*matplotlib"):
        out = plot_png(u, str(tmp_path / "u.png"), title="fallback")
    assert out and os.path.getsize(out) > 5000
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # warned once only
        plot_png(u, str(tmp_path / "v.png"))


def test_render_probe_starts_xvfb_without_display():
    """Without DISPLAY, can_render() starts a private Xvfb (where installed) instead of letting VTK abort."""
    import shutil
    import subprocess
    import sys

    assert shutil.which("Xvfb") is not None, "no Xvfb here (docker/packages.txt installs xvfb)"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    code = ("from fpjko.solvers.io import render, output; import os; ok, why = render.can_render(); "
            "print(ok, os.environ.get('DISPLAY'), why)")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    ok, display = p.stdout.split()[:2]
    assert ok == "True" and display.startswith(":")
