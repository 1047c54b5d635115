"""ParaView series (VTX, XDMF) and off-screen PNGs."""

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from mpi4py import MPI

import meshes
from samplers.gaussian import gaussian_density
from solvers import FokkerPlanckSolver
from solvers.io.output import SeriesWriter, plot_png


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

    if not dolfinx.common.has_adios2:
        pytest.skip("dolfinx built without ADIOS2")
    with SeriesWriter(tmp_path / "rho", [solver.rho]) as w:
        w.write(0.0)
        solver.step()
        w.write(solver.t)
    assert w.fmt == "vtx" and os.path.isdir(w.path)
    assert os.path.getsize(os.path.join(w.path, "data.0")) > 8 * solver.num_dofs


def test_png_shows_the_density(tmp_path, solver):
    if not os.environ.get("DISPLAY"):
        pytest.skip("VTK needs an X display here: run under xvfb-run (make test does)")
    import matplotlib.image

    name = plot_png(solver.rho, str(tmp_path / "rho.png"), title="t = 0")
    img = matplotlib.image.imread(name)
    assert img.shape[0] > 300 and img.shape[1] > 300
    rgb = img[..., :3]
    coloured = np.mean(np.ptp(rgb, axis=2) > 0.1)      # pixels of the colour map, not grey/white
    assert coloured > 0.15, coloured
