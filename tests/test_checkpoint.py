"""Checkpoint/resume reproduces an uninterrupted run; mismatches are refused."""

import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.io.checkpoint import Checkpointer, resume


def make(dt=0.05, h=0.25):
    msh = meshes.rectangle(MPI.COMM_WORLD, [-4, -4], [4, 4], h)
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * x[0] ** 2 + x[1] ** 2, beta=1.5, degree=2, dt=dt, scheme="bdf2")
    return s


def init(s):
    s.set_initial(lambda x: gaussian_density(x, [1.0, 0.5], 0.3 * np.eye(2)))


def test_resume_matches_uninterrupted(tmp_path):
    ref = make()
    init(ref)
    ref.run(1.0)
    path = str(tmp_path / "ck.npz")
    a = make()
    init(a)
    a.run(0.5, checkpoint=Checkpointer(path, every=4))
    b = make()
    resume(b, path)
    assert b.steps == 10 and abs(b.t - 0.5) < 1e-12
    b.run(1.0)
    np.testing.assert_allclose(b.rho.x.array, ref.rho.x.array, rtol=0, atol=1e-13)
    for k in ("t", "mass", "energy"):
        np.testing.assert_allclose(b.history[k], ref.history[k], rtol=1e-13)


def test_mismatch_refused(tmp_path):
    path = str(tmp_path / "ck.npz")
    a = make()
    init(a)
    Checkpointer(path).save(a)
    with pytest.raises(ValueError, match="dt=0.05 vs 0.1"):
        resume(make(dt=0.1), path)
    with pytest.raises(ValueError, match="num_dofs"):
        resume(make(h=0.5), path)
    with pytest.raises(FileNotFoundError):
        resume(make(), str(tmp_path / "none.npz"))
