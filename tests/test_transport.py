"""The continuity equation (DG upwind + SSP-RK3): orders against exact Gaussians transported by linear
velocities (also the McKean-Vlasov case W = z^T K z / 2 without noise), mass to round-off, the
positivity limiter, the energy int f rho + 1/2 iint W rho rho decaying, and the CFL error."""

import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from conftest import fitted_slope
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers.core.exact import mckean_vlasov_solution_ufl, quadratic_potential
from fpjko.solvers.transport.continuity import ContinuityEquation

COMM = MPI.COMM_WORLD


@pytest.mark.parametrize("degree,order", [(0, 1), (1, 2)])
def test_dg_order_for_a_contracting_gaussian(degree, order):
    """u = -x: rho(t) = N(m0 e^-t, s0^2 e^-2t) exactly."""
    A, m0, S0 = np.array([[1.0]]), [1.0], np.array([[0.3]])
    hs, errs = [0.1, 0.05, 0.025], []
    for h in hs:
        s = ContinuityEquation(meshes.interval(COMM, -4, 4, h), lambda x: 0.5 * x[0] ** 2, degree=degree, cfl=0.1)
        s.set_initial(lambda x: gaussian_density(x, m0, S0))
        s.run(0.5)
        assert s.t == pytest.approx(0.5, abs=1e-14)
        errs.append(s.l2_error(mckean_vlasov_solution_ufl(A, 0 * A, np.inf, m0, S0, s.t)))
        m = np.array(s.history["mass"])
        assert np.abs(m - m[0]).max() < 1e-13 and min(s.history["min_rho"]) > -1e-15
        assert np.all(np.diff(s.history["energy"]) < 0)            # int f rho decreases along the flow
    assert abs(fitted_slope(hs, errs) - order) < 0.15, errs


def test_mean_field_transport_in_2d():
    """u = -A x - K (x - mean): Gaussian with mean' = -A m, S' = -(A + K) S - S (A + K)^T (beta = inf)."""
    A = np.array([[1.0, 0.3], [0.3, 1.5]])
    K = np.array([[1.0, -0.4], [-0.4, 0.5]])
    m0, S0 = [0.8, -0.4], 0.3 * np.eye(2)
    errs = []
    for h in (0.2, 0.1):
        s = ContinuityEquation(meshes.rectangle(COMM, [-3, -3], [3, 3], h), quadratic_potential(A), interaction=K,
                               degree=1, cfl=0.1)
        s.set_initial(lambda x: gaussian_density(x, m0, S0))
        s.run(0.3)
        errs.append(s.l2_error(mckean_vlasov_solution_ufl(A, K, np.inf, m0, S0, s.t)))
        assert np.ptp(s.history["mass"]) < 1e-13 and np.all(np.diff(s.history["energy"]) < 0)
        assert s.history["boundary_rho"][-1] < 1e-15      # measured 0: an inflow boundary, nothing comes in
    assert errs[0] / errs[1] > 3.3, errs                              # measured 3.7 (order 1.9)


def test_limiter_keeps_rho_nonnegative_and_mass():
    """A box profile transported by u = 1: DG1 undershoots without the limiter, not with it."""
    box = lambda x: ((x[0] > -1.5) & (x[0] < -0.5)).astype(float)        # noqa: E731
    mins = {}
    for lim in (False, True):
        s = ContinuityEquation(meshes.interval(COMM, -3, 3, 0.05), lambda x: -x[0], degree=1, limiter=lim, cfl=0.2)
        s.set_initial(box, normalize=True)
        s.run(1.0)
        mins[lim] = min(s.history["min_rho"])
        assert np.ptp(s.history["mass"]) < 1e-13
    assert mins[False] < -0.05 and mins[True] >= 0.0, mins            # measured -0.18 without the limiter


def test_unstable_step_is_refused():
    s = ContinuityEquation(meshes.interval(COMM, -3, 3, 0.1), lambda x: 0.5 * x[0] ** 2, degree=1, dt=0.5)
    s.set_initial(lambda x: gaussian_density(x, [0.0], np.array([[0.3]])))
    with pytest.raises(FloatingPointError, match=r"dt=0.5 with max\|u\|=3 .* CFL 15 > 1"):
        s.step()
    with pytest.raises(ValueError, match="degree 0 or 1"):
        ContinuityEquation(meshes.interval(COMM, -3, 3, 0.1), None, degree=2)
