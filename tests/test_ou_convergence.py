"""Ornstein-Uhlenbeck in 1D and 2D against the exact Gaussian: orders in h and dt, mass, energy.

f = x^T A x / 2 (2D: anisotropic, non-diagonal A), beta = 2, rho_0 = N(m0, S0) on a box wide enough
that the truncation to no-flux walls is below 1e-8.
"""

import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.core.exact import ou_solution_ufl, quadratic_potential

BETA = 2.0
CASES = {
    1: (np.array([[1.0]]), [1.0], [[0.2]]),
    2: (np.array([[1.0, 0.6], [0.6, 2.0]]), [1.0, -0.5], 0.2 * np.eye(2)),
}


def ou_run(dim, h, degree, dt, scheme, T=0.5, method="galerkin", **kw):
    A, m0, S0 = CASES[dim]
    comm = MPI.COMM_WORLD
    msh = meshes.interval(comm, -5, 5, h) if dim == 1 else meshes.rectangle(comm, [-5, -5], [5, 5], h)
    s = FokkerPlanckSolver(msh, quadratic_potential(A), beta=BETA, degree=degree, dt=dt, scheme=scheme,
                           method=method, **kw)
    s.set_initial(lambda x: gaussian_density(x, m0, S0))
    s.run(T)
    exact = ou_solution_ufl(A, BETA, m0, S0, s.t)
    return s, s.l2_error(exact) / s.l2_norm(exact)


def assert_conserves_and_dissipates(s):
    m = np.array(s.history["mass"])
    assert np.max(np.abs(m - m[0])) / m[0] < 1e-12
    F = np.array(s.history["energy"])
    assert np.all(np.diff(F) <= 1e-12 * abs(F[0])), np.diff(F).max()
    kl = np.array(s.history["relative_entropy"])
    assert kl[-1] < kl[0]


@pytest.mark.parametrize("dim,degree,hs,order", [
    (1, 1, [0.2, 0.1, 0.05, 0.025], 2.0),
    (1, 2, [0.4, 0.2, 0.1, 0.05], 3.0),
    (2, 1, [0.2, 0.1, 0.05], 2.0),
    (2, 2, [0.4, 0.2, 0.1], 3.0),
])
def test_space_order(dim, degree, hs, order, slope):
    dt = 5e-4 if dim == 1 else 2.5e-3          # BDF2 time error well below the finest space error
    errors = []
    for h in hs:
        s, e = ou_run(dim, h, degree, dt, "bdf2", T=0.25)
        assert_conserves_and_dissipates(s)
        errors.append(e)
    p = slope(hs, errors)
    assert order - 0.15 < p < order + 0.35, (errors, p)
    assert errors[-1] < {1: 5e-3, 2: 2e-4}[degree] * (1 if dim == 2 else 0.5)


@pytest.mark.parametrize("scheme,order", [("backward_euler", 1.0), ("bdf2", 2.0), ("crank_nicolson", 2.0)])
def test_time_order_1d_exact(scheme, order, slope):
    dts = [0.1, 0.05, 0.025, 0.0125]
    errors = []
    for dt in dts:
        s, e = ou_run(1, 0.02, 2, dt, scheme, T=0.5)
        m = np.array(s.history["mass"])
        assert np.max(np.abs(m - m[0])) / m[0] < 1e-12
        errors.append(e)
    p = slope(dts, errors)
    assert order - 0.1 < p < order + 0.15, (errors, p)


@pytest.mark.parametrize("scheme,order", [("backward_euler", 1.0), ("bdf2", 2.0)])
def test_time_order_2d(scheme, order, slope):
    """2D: the time error against the exact solution on a P2 mesh fine enough (h = 0.125: space error
    ~7e-5) for the time error to dominate."""
    dts = [0.2, 0.1, 0.05] if scheme == "bdf2" else [0.1, 0.05, 0.025]
    errors = [ou_run(2, 0.125, 2, dt, scheme, T=1.0)[1] for dt in dts]
    p = slope(dts, errors)
    assert order - 0.15 < p < order + 0.2, (errors, p)


@pytest.mark.parametrize("degree,hs,order", [(1, [0.2, 0.1, 0.05], 2.0), (2, [0.4, 0.2, 0.1], 3.0)])
def test_amg_path_has_the_orders_of_lu(degree, hs, order, slope):
    """solver='iterative' (FGMRES + BoomerAMG on the true residual, stopped at 1e-3 of the extrapolated guess's
    residual, the large-problem default) on the 2D anisotropic OU: the same errors as LU to 1e-4 relative (the
    solve error is
    far below the discretisation's), the same order in h, F non-increasing, mass conserved to round-off by the
    restoration after each solve, and every solve converged by its own test in a few iterations once the
    predictor has three solutions (measured 2-4)."""
    errs = []
    for h in hs:
        s, e = ou_run(2, h, degree, 2.5e-3, "bdf2", T=0.25, solver="iterative")
        s_lu, e_lu = ou_run(2, h, degree, 2.5e-3, "bdf2", T=0.25, solver="direct")
        assert "FGMRES + hypre" in s.linear_solver and "LU" in s_lu.linear_solver
        # the solve stops at 1e-3 of the predictor's residual, the local time error estimate: measured <= 4e-5
        assert abs(e - e_lu) < 1e-4 * e_lu, (e, e_lu)
        m, F = np.array(s.history["mass"]), np.array(s.history["energy"])
        # round-off of the restoration's sums: measured 2.5e-13 (P1) and 1.1e-12 (P2) over 100 steps
        assert np.abs(m - m[0]).max() < 1e-11 and np.all(np.diff(F) <= 1e-10 * abs(F[0]))
        its = s.history["iterations"][4:]
        assert max(its) <= 5, its
        assert_conserves_and_dissipates(s_lu)
        errs.append(e)
    p = slope(hs, errs)
    assert order - 0.15 < p < order + 0.35, (errs, p)


def test_amg_iterations_do_not_grow_with_the_mesh():
    """The Krylov path stops relative to its predictor's residual (the BDF2 predictor-corrector difference), so
    once the predictor has three solutions the steps take no more iterations as h is halved twice (measured 5,
    4, 3-4: a test relative to |b| tightens like dt/h^2 instead, 3 -> 4 iterations from 1.44M to 2.0M dofs in
    benchmarks/fp_scaling.py). Each solve meets its own stopping test (solve() raises otherwise), and the
    error to the exact Gaussian is LU's to 1e-3 of itself."""
    counts = []
    for h in (0.1, 0.05, 0.025):
        s, e = ou_run(2, h, 1, 0.01, "bdf2", T=0.2, solver="iterative")
        counts.append(s.history["iterations"][4:])
    assert max(map(max, counts)) <= 5, counts
    assert max(counts[2]) <= max(counts[1]) <= max(counts[0]), counts
    s_lu, e_lu = ou_run(2, 0.025, 1, 0.01, "bdf2", T=0.2, solver="direct")
    assert abs(e - e_lu) < 1e-3 * e_lu, (e, e_lu)


def test_amg_path_at_equilibrium():
    """Started at the discrete stationary density the predictor becomes exact to round-off, where the relative
    test alone could never fire: each solve polishes the predictor's residual by 1e-3 until the floor
    ROUNDOFF_RTOL |b| ends the solves in 1-2 iterations, every one converged (solve() raises otherwise), and
    the density stays put to 1e-8 of its maximum (the first solve, without a predictor, stops at 1e-8 |b|;
    measured 1.4e-9)."""
    from fpjko.solvers.fokker_planck.stationary import stationary_density

    A = CASES[2][0]
    msh = meshes.rectangle(MPI.COMM_WORLD, [-5, -5], [5, 5], 0.1)
    s = FokkerPlanckSolver(msh, quadratic_potential(A), beta=BETA, dt=0.01, scheme="bdf2", solver="iterative")
    rho_ss = stationary_density(s).rho
    rho_ss.x.array[:] = np.maximum(rho_ss.x.array, 0.0)       # -6e-11 in the far tails: the LU solve's round-off
    s.set_initial(rho_ss)
    s.run(0.3)
    its = s.history["iterations"]                           # measured: 15 (no guess), then 5, 5, ..., 2, 1, 1, ...
    assert max(its[2:]) <= 5 and max(its[-10:]) <= 2, its
    top = rho_ss.x.array.max()
    assert np.abs(s.rho.x.array - rho_ss.x.array).max() < 1e-8 * top


def test_amg_path_keeps_a_given_rtol():
    """A ksp_rtol in petsc_options is PETSc's usual test against |b|: the predictor-relative test is off and
    every solve ends below that relative residual."""
    s, _ = ou_run(2, 0.1, 1, 0.01, "bdf2", T=0.05, solver="iterative", petsc_options={"ksp_rtol": 1e-11})
    assert not any(map(s.linear.predictor_relative, s.linear)) and 0.0 < s.linear.last_residual <= 1e-11, \
        s.linear.last_residual
    d, _ = ou_run(2, 0.1, 1, 0.01, "bdf2", T=0.05, solver="iterative")
    assert all(map(d.linear.predictor_relative, d.linear)) and d.linear.last_residual > 1e-11, d.linear.last_residual


def test_amg_path_sg_bdf2():
    """method='sg' on the Krylov path (CG + BoomerAMG, stopped on the unpreconditioned residual): the same
    density as LU to 1e-6 of its maximum, mass to round-off, rho >= 0, every solve converged in <= 4 iterations."""
    s, e = ou_run(2, 0.1, 1, 0.01, "bdf2", T=0.3, method="sg", solver="iterative")
    s_lu, e_lu = ou_run(2, 0.1, 1, 0.01, "bdf2", T=0.3, method="sg", solver="direct")
    assert s.linear_solver.startswith("CG + hypre")
    top = np.abs(s_lu.rho.x.array).max()
    assert np.abs(s.rho.x.array - s_lu.rho.x.array).max() < 1e-6 * top
    m = np.array(s.history["mass"])
    assert np.abs(m - m[0]).max() < 1e-12 and min(s.history["min_rho"]) >= 0.0
    assert max(s.history["iterations"][4:]) <= 4, s.history["iterations"]


def test_auto_solver_and_sparse_history(monkeypatch):
    """solver='auto' switches to Krylov + AMG at AUTO_ITERATIVE_DOFS (lowered here); record_every=5 records every
    fifth step and the last, with the same values as recording every step."""
    import fpjko.solvers.core.linear as st

    monkeypatch.setattr(st, "AUTO_ITERATIVE_DOFS", 1000)
    s, _ = ou_run(2, 0.2, 1, 0.01, "bdf2", T=0.13)
    assert s.linear_solver.startswith("FGMRES + hypre") and "auto" in s.linear_solver
    sparse, _ = ou_run(2, 0.2, 1, 0.01, "bdf2", T=0.13, record_every=5)
    assert np.allclose(sparse.history["t"], [0.0, 0.05, 0.10, 0.13])
    for k, t in enumerate(sparse.history["t"]):
        i = int(round(t / 0.01))
        assert sparse.history["energy"][k] == pytest.approx(s.history["energy"][i], rel=1e-12)
    monkeypatch.setattr(st, "AUTO_ITERATIVE_DOFS", 10**9)
    small, _ = ou_run(2, 0.2, 1, 0.01, "bdf2", T=0.02)
    assert small.linear_solver.startswith("direct (LU)")
    with pytest.raises(ValueError, match="solver='magic' is not one of"):
        ou_run(2, 0.2, 1, 0.01, "bdf2", T=0.02, solver="magic")
