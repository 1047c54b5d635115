"""Particle-mesh forces (fpjko.samplers.particle_mesh): second order in the grid against the direct sum, bitwise
the same on 1 and 2 ranks, bad input refused on every rank."""

import numpy as np
import pytest

from conftest import run_mpi
from fpjko.metrics.study import fitted_slope
from fpjko.samplers.interacting import interaction_force
from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.streams import Streams


def gauss_grad(z):
    """grad W for W(z) = -exp(-|z|^2 / 2)."""
    return z * np.exp(-0.5 * np.sum(z * z, axis=-1))[..., None]


def morse_grad(z):
    """grad W for the attraction-repulsion W(z) = exp(-|z|^2) - 0.5 exp(-|z|^2 / 4)."""
    r2 = np.sum(z * z, axis=-1)[..., None]
    return z * (-2.0 * np.exp(-r2) + 0.25 * np.exp(-0.25 * r2))


def _rel_rms(F, G):
    return float(np.sqrt(np.mean(np.sum((F - G) ** 2, axis=1)) / np.mean(np.sum(G ** 2, axis=1))))


@pytest.mark.parametrize("d,grad", [(1, gauss_grad), (2, gauss_grad), (2, morse_grad), (3, gauss_grad)])
def test_second_order_in_the_grid_against_the_direct_sum(d, grad):
    """The relative RMS force error against the exact O(n^2) sum falls like h^2 (CIC deposit and interpolation,
    exact convolution on the grid; measured order 2.0) and is below 1e-3 at the default 2D grid (256^2)."""
    st = Streams(1500, 3, comm=None)
    x = np.clip(st.sample(lambda g, m: 0.8 * g.standard_normal((m, d))), -3.9, 3.9)
    exact = interaction_force(x, st, grad_W=grad)
    cells = [16, 32, 64] if d == 3 else [64, 128, 256]
    errs = [_rel_rms(particle_mesh_force(x, st, ParticleMesh(grad, [-4] * d, [4] * d, c)), exact) for c in cells]
    order = -fitted_slope(cells, errs)
    assert 1.8 < order < 2.3, (errs, order)
    if d == 2:
        assert errs[-1] < 1e-3 and ParticleMesh(grad, [-4] * 2, [4] * 2).cells.tolist() == [256, 256]


def test_two_ranks_give_the_serial_forces_bitwise():
    """The fixed-point deposit sums exactly over ranks: 1 and 2 ranks give the same bits, also when a rank has no
    particles (n = 700 < one block of 1000). (The Random Batch forces: tests/test_random_batch.py.)"""
    for n in (5000, 700):
        r1, r2 = run_mpi(1, "mpi_particle_mesh.py", n), run_mpi(2, "mpi_particle_mesh.py", n)
        assert r1["F"] == r2["F"] and len(r1["F"]) == 2 * n


def test_runs_without_numba():
    """With numba switched off (FPJKO_NUMBA=0: the numpy loops) the particle-mesh force is the compiled one to
    round-off, and samplers import without dolfinx."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys, numpy as np\n"
            "from fpjko.kernels import have_numba\n"
            "from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force\n"
            "from fpjko.samplers.streams import Streams\n"
            "st = Streams(3000, 7, comm=None)\n"
            "x = np.clip(st.sample(lambda g, m: g.standard_normal((m, 2))), -3.9, 3.9)\n"
            "F = particle_mesh_force(x, st, ParticleMesh(lambda z: z * np.exp(-0.5 * np.sum(z * z, -1))[..., None], "
            "[-4, -4], [4, 4], 64))\n"
            "print(json.dumps({'numba': have_numba(), 'dolfinx': 'dolfinx' in sys.modules, 'F': F.ravel().tolist()}))\n")
    out = {}
    for flag in ("0", "1"):
        r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FPJKO_NUMBA=flag), capture_output=True,
                           text=True, timeout=300, check=True)
        out[flag] = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["0"]["numba"] is False and not out["0"]["dolfinx"]
    np.testing.assert_allclose(out["0"]["F"], out["1"]["F"], rtol=1e-12, atol=1e-15)


def test_bad_input_is_named():
    st = Streams(10, 0, comm=None)
    pm = ParticleMesh(gauss_grad, [-1, -1], [1, 1], 16)
    x = np.zeros((10, 2))
    x[3] = [1.5, 0.0]
    with pytest.raises(ValueError, match=r"particle 3 at \[1.5, 0.0\] left the particle mesh's box"):
        particle_mesh_force(x, st, pm)
    with pytest.raises(ValueError, match=r"expected this rank's particles as \(10, 2\), got \(10, 3\)"):
        particle_mesh_force(np.zeros((10, 3)), st, pm)
    with pytest.raises(ValueError, match=r"singular at 0 like \|z\|\^-3, which is not integrable in 2D"), \
            np.errstate(all="ignore"):
        ParticleMesh(lambda z: z / np.sum(z * z, axis=-1)[..., None] ** 2, [-1, -1], [1, 1], 8)
    with pytest.raises(ValueError, match=r"not finite at z = \[0.25, 0.0\] \(away from 0\)"), np.errstate(all="ignore"):
        ParticleMesh(lambda z: z / (np.abs(z[..., :1]) - 0.25), [-1, -1], [1, 1], 8)
    with pytest.raises(ValueError, match="lower < upper"):
        ParticleMesh(gauss_grad, [1, -1], [-1, 1], 8)
