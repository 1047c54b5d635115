"""The Desai-Zwanzig phase transition (f = x^4/4 - x^2/2, W = k z^2/2): beta_c from beta k Var_0 = 1
(closed form through Gamma functions for k = 1), the self-consistent magnetisation m*(beta) by 1D
quadrature, and both the FE solvers and the particles finding it."""

import math

import dolfinx.fem
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from fpjko import meshes
from conftest import fitted_slope
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.interacting import mckean_vlasov
from fpjko.samplers.streams import Streams
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.fokker_planck.stationary import mean_field_stationary
from fpjko.references import desai_zwanzig as dz

COMM = MPI.COMM_WORLD


def solver(beta, h=0.05, degree=1, method="galerkin", dt=0.05, scheme="bdf2"):
    msh = meshes.interval(COMM, -4, 4, h)
    return FokkerPlanckSolver(msh, lambda x: 0.25 * x[0] ** 4 - 0.5 * x[0] ** 2, beta=beta, degree=degree, dt=dt,
                              scheme="backward_euler" if method == "sg" else scheme, method=method, interaction=1.0)


def mean(s, rho):
    return COMM.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(s.x[0] * rho * ufl.dx)))


def start(c, var=0.3):
    return lambda x: gaussian_density(x, [c], np.array([[var]]))


def test_critical_beta_and_magnetisation():
    bc = dz.critical_beta(1.0)
    assert bc == pytest.approx(2.188439615, abs=1e-9)                               # measured 2.3e-10 (the digits)
    assert bc * dz.variance_at_zero(bc, 1.0) == pytest.approx(1.0, abs=1e-15)      # closed form = quadrature: 1e-16
    b2 = dz.critical_beta(2.0)                                                       # root finding, k != 1
    assert b2 * 2.0 * dz.variance_at_zero(b2, 2.0) == pytest.approx(1.0, abs=1e-13) and b2 < bc   # measured 0
    assert dz.magnetisation(0.95 * bc) == 0.0
    for beta in (2.5, 3.0, 5.0):
        m = dz.magnetisation(beta)
        assert m > 0.3 and dz.mean_map(m, beta, 1.0) == pytest.approx(m, abs=1e-14)   # measured 1.1e-16
    # supercritical pitchfork: m*^2 grows linearly in beta - beta_c just above it
    eps = np.array([0.01, 0.02, 0.04])
    m2 = np.array([dz.magnetisation(bc + e) ** 2 for e in eps])
    assert fitted_slope(eps, m2) == pytest.approx(1.0, abs=0.05)


def test_stationary_solver_finds_both_branches_above_beta_c():
    beta, ms = 3.0, dz.magnetisation(3.0)
    s = solver(beta, degree=2)
    res = {c: mean_field_stationary(s, guess=start(c)) for c in (0.7, -0.7, 0.0)}
    for c, r in res.items():
        assert r.converged and r.iterations < 60 and r.residuals[-1] <= 1e-10       # its own stopping test
    # the nodal fixed point is a spectrally accurate quadrature: measured 8.2e-12 on both branches
    assert mean(s, res[0.7].rho) == pytest.approx(ms, abs=5e-11)
    assert mean(s, res[-0.7].rho) == pytest.approx(-ms, abs=5e-11)
    assert abs(mean(s, res[0.0].rho)) < 3e-15                                        # the unstable branch: 3e-16
    assert res[0.7].free_energy < res[0.0].free_energy                                # ... has higher F
    assert res[0.7].free_energy == pytest.approx(res[-0.7].free_energy, rel=5e-15)  # measured 4.4e-16
    s15 = solver(1.5)
    below = mean_field_stationary(s15, guess=start(0.7))
    assert below.converged and abs(mean(s15, below.rho)) < 1e-14                     # measured 1.6e-15


def test_magnetisation_converges_in_h():
    """m*(beta = 3) against the self-consistency quadrature. The nodal fixed point exp(-beta (f + psi)) is
    a trapezoidal rule on a uniform mesh, spectrally accurate: 1e-9 already at h = 0.2. The Galerkin
    flow's own steady state (P1, backward Euler to t = 60, where the time error has decayed) converges at
    order 2 in h."""
    ms, hs, errs = dz.magnetisation(3.0), [0.2, 0.1, 0.05], []
    for h in hs:
        s = solver(3.0, h=h, dt=0.1, scheme="backward_euler")
        r = mean_field_stationary(s, guess=start(0.7))
        assert abs(mean(s, r.rho) - ms) < 1e-9
        s.set_initial(start(0.5, 0.1))
        s.run(60.0)
        errs.append(abs(mean(s, s.rho) - ms))
    assert abs(fitted_slope(hs, errs) - 2) < 0.2, errs


def test_non_convergence_warns_and_says_so():
    s = solver(3.0)
    with pytest.warns(RuntimeWarning, match="did not converge in 2 iterations"):
        r = mean_field_stationary(s, guess=start(0.7), max_iter=2)
    assert not r.converged and r.residuals[-1] > 1e-10


@pytest.mark.parametrize("method", ["galerkin", "sg"])
def test_time_dependent_solution_picks_the_branch(method):
    """Started off centre, the McKean-Vlasov flow converges to +-m* above beta_c and to 0 below."""
    ms = dz.magnetisation(3.0)
    for c in (0.5, -0.5):
        s = solver(3.0, method=method, h=0.02)
        s.set_initial(start(c, 0.1))
        s.run(30.0)
        # measured 5.5e-5 (Galerkin P1) and 1.9e-5 (SG) at h = 0.02, t = 30
        assert mean(s, s.rho) == pytest.approx(math.copysign(ms, c), abs=3e-4 if method == "galerkin" else 1e-4)
        assert np.all(np.diff(s.history["energy"]) < 0)
    s = solver(1.5, method=method, h=0.02)
    s.set_initial(start(0.5, 0.1))
    s.run(30.0)
    assert abs(mean(s, s.rho)) < 5e-3                                               # measured 1.4e-3, 1.9e-3


def test_particles_see_the_transition():
    """n = 10^4 interacting particles (quadratic W, O(n) per step), started at N(0.5, 0.1) like the PDE."""
    ms = dz.magnetisation(3.0)
    for beta, target in ((3.0, ms), (1.5, 0.0)):
        st = Streams(10000, 3, comm=None)
        x0 = st.sample(lambda g, m: 0.5 + math.sqrt(0.1) * g.standard_normal((m, 1)))
        x = mckean_vlasov(x0, st, beta, 0.01, 2000, grad_V=dz.grad_f, quadratic_W=1.0)
        # measured 0.004 (beta = 3) and 0.0053 (beta = 1.5); one seed, the mean's standard error about 0.01 (0.018
        # at beta = 1.5, near beta_c), so the margin stays at about 3 standard errors
        assert float(st.mean(x)[0]) == pytest.approx(target, abs=0.06), beta
