"""Anisotropic D(x) and non-gradient drifts: stationary states, Phi != f, probability currents."""

import math

import dolfinx.fem
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density, lyapunov
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.core.exact import gaussian_ufl
from fpjko.solvers.fokker_planck.stationary import stationary_density

COMM = MPI.COMM_WORLD
Q = {"quadrature_degree": 8}


def integrate(expr):
    return COMM.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(expr * ufl.dx(metadata=Q))))


def l2(e):
    return math.sqrt(integrate(ufl.inner(e, e)))


def linear_solver(A, D, beta, h, degree, L=4.0, **kw):
    """Drift -A x (A = S + W: f = x^T S x / 2 and b = -W x) with constant D."""
    S, W = 0.5 * (A + A.T), 0.5 * (A - A.T)
    msh = meshes.rectangle(COMM, [-L, -L], [L, L], h)
    return FokkerPlanckSolver(
        msh, lambda x: 0.5 * sum(S[i, j] * x[i] * x[j] for i in range(2) for j in range(2)), beta=beta,
        degree=degree, diffusion=D, drift=lambda x: ufl.as_vector([-(W[i, 0] * x[0] + W[i, 1] * x[1]) for i in range(2)]),
        **kw)


A_NS = np.array([[1.0, 0.5], [-0.3, 1.5]])
D_AN = np.array([[1.0, 0.4], [0.4, 0.5]])


@pytest.mark.parametrize("A,D,circulates", [(A_NS, D_AN, True), (np.array([[1.0, 0.3], [0.3, 2.0]]), np.eye(2), False)])
def test_linear_drift_lyapunov_covariance_and_current(A, D, circulates, slope):
    beta = 2.0
    Sig = lyapunov(A, 2 / beta * D)
    C = D @ np.linalg.inv(Sig) / beta - A                  # exact J = C x rho
    assert (np.abs(C).max() > 0.1) == circulates == (np.abs(A @ D - D @ A).max() > 1e-12)
    hs, e_rho, e_J = [0.4, 0.2, 0.1], [], []
    for h in hs:
        s = linear_solver(A, D, beta, h, 1)
        st = stationary_density(s)
        x, ex = s.x, gaussian_ufl([0, 0], Sig)
        Jex = ufl.as_vector([(C[i, 0] * x[0] + C[i, 1] * x[1]) * ex(x) for i in range(2)])
        e_rho.append(l2(st.rho - ex(x)))
        e_J.append(l2(st.current - Jex))
        assert abs(st.mass - 1) < 1e-13 and st.residual < 1e-14                    # measured 1.5e-14 and 2e-18
    assert 1.9 < slope(hs, e_rho) < 2.2, e_rho
    cov = np.array([[integrate(x[i] * x[j] * st.rho) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(cov, Sig, atol=2e-8 if circulates else 1e-6)   # measured 4.0e-9 and 3.9e-7
    if circulates:
        assert 1.8 < slope(hs, e_J) < 2.3, e_J
        assert e_J[-1] < 0.05 * st.current_norm
        # angular momentum int (x J_y - y J_x) against E[x^T M x] for the exact current
        ang = integrate(x[0] * st.current[1] - x[1] * st.current[0])
        exact = C[1, 0] * Sig[0, 0] + (C[1, 1] - C[0, 0]) * Sig[0, 1] - C[0, 1] * Sig[1, 1]
        assert abs(exact) > 0.05 and abs(ang - exact) < 3e-8 * abs(exact)       # measured 5.2e-9
        # Phi != f: the stationary density is not exp(-beta f)/Z
        gibbs = np.linalg.inv(0.5 * (A + A.T)) / beta
        assert np.abs(Sig - gibbs).max() > 0.05
    else:                          # A D = D A: a gradient flow; the discrete current vanishes with h
        assert 1.8 < slope(hs, e_J) < 2.3 and st.current_norm < 5e-3, e_J


def test_p2_stationary_order_three(slope):
    Sig = lyapunov(A_NS, D_AN)
    hs = [0.4, 0.2, 0.1]
    errs = []
    for h in hs:
        st = stationary_density(linear_solver(A_NS, D_AN, 2.0, h, 2))
        errs.append(l2(st.rho - gaussian_ufl([0, 0], Sig)(ufl.SpatialCoordinate(st.rho.function_space.mesh))))
    assert 2.85 < slope(hs, errs) < 3.3, errs


@pytest.mark.parametrize("lam", [0.0, 2.0])
def test_rotating_double_well(lam, slope):
    """rho = exp(-Phi) is stationary for every lam; the current is lam exp(-r^4/4) (-y, x) / Z.
    On a disk the exact current is tangential, so the no-flux condition holds. P2: the disk mesh is
    unstructured, so P1 gradients (hence currents) would converge at first order only."""
    def phi(x):
        return (x[0] ** 2 - 1) ** 2 / 4 + x[1] ** 2 / 2

    hs, e_rho, e_J = [0.2, 0.1, 0.05], [], []
    for h in hs:
        msh = meshes.disk(COMM, 2.5, h)
        r4 = lambda x: (x[0] ** 2 + x[1] ** 2) ** 2 / 4          # noqa: E731
        s = FokkerPlanckSolver(msh, phi, beta=1.0, degree=2,
                               drift=lambda x: lam * ufl.exp(phi(x) - r4(x)) * ufl.as_vector([-x[1], x[0]]))
        st = stationary_density(s)
        x, Z = s.x, math.exp(s.functionals.logZ)
        e_rho.append(l2(st.rho - ufl.exp(-phi(x)) / Z))
        e_J.append(l2(st.current - lam * ufl.exp(-r4(x)) * ufl.as_vector([-x[1], x[0]]) / Z))
    assert slope(hs, e_rho) > 2.7, e_rho
    assert slope(hs, e_J) > 1.8, e_J
    if lam:
        assert st.current_norm > 0.1 and e_J[-1] < 1e-3 * st.current_norm
    else:
        assert st.current_norm < 1e-3          # = e_J[-1]: discretisation error only


def mms(h, degree, dt, T=0.5, scheme="bdf2"):
    """Manufactured rho(x, t) with D(x) varying in space, f a quadratic, on [-1, 1]^2."""
    msh = meshes.rectangle(COMM, [-1, -1], [1, 1], h)
    beta = 1.5
    n = ufl.FacetNormal(msh)

    def D(x):
        return ufl.as_matrix([[1 + x[0] ** 2 / 2, 0.3 * ufl.sin(x[0] * x[1])],
                              [0.3 * ufl.sin(x[0] * x[1]), 1 + x[1] ** 2 / 2]])

    def f(x):
        return 0.5 * x[0] ** 2 + 0.25 * x[0] * x[1] + x[1] ** 2

    def rho(x, t):
        return (1 + 0.5 * ufl.exp(-t) * ufl.cos(math.pi * x[0]) * ufl.cos(math.pi * x[1]) + 0.3 * x[0] * t) / 4

    def rho_t(x, t):
        return (-0.5 * ufl.exp(-t) * ufl.cos(math.pi * x[0]) * ufl.cos(math.pi * x[1]) + 0.3 * x[0]) / 4

    def flux(x, t):     # -J, written out independently of the solver
        r = rho(x, t)
        return r * ufl.grad(f(x)) + (ufl.dot(D(x), ufl.grad(r)) + r * ufl.div(D(x))) / beta

    s = FokkerPlanckSolver(msh, f, beta=beta, degree=degree, dt=dt, scheme=scheme, diffusion=D,
                           source=lambda x, t: rho_t(x, t) - ufl.div(flux(x, t)),
                           boundary_flux=lambda x, t: -ufl.dot(flux(x, t), n))
    s.set_initial(rho(s.x, 0.0))
    s.run(T)
    return s, l2(s.rho - rho(s.x, s.t))


@pytest.mark.parametrize("degree,hs,order", [(1, [0.2, 0.1, 0.05], 2.0), (2, [0.4, 0.2, 0.1], 3.0)])
def test_manufactured_space_varying_D_space_order(degree, hs, order, slope):
    errs = [mms(h, degree, 2e-3)[1] for h in hs]
    assert order - 0.15 < slope(hs, errs) < order + 0.3, errs


def test_manufactured_space_varying_D_time_order(slope):
    dts = [0.2, 0.1, 0.05]
    errs = [mms(0.025, 2, dt, T=1.0)[1] for dt in dts]
    assert 1.85 < slope(dts, errs) < 2.2, errs


def test_relative_entropy_to_stationary_is_monotone():
    s = linear_solver(A_NS, D_AN, 2.0, 0.2, 1, dt=0.05, scheme="backward_euler")
    st = stationary_density(s)
    s.set_reference(st.rho)
    s.set_initial(lambda x: gaussian_density(x, [1.5, -1.0], 0.1 * np.eye(2)))
    s.run(3.0)
    kl = np.array(s.history["kl_reference"])
    assert kl[0] > 1.0 and kl[-1] < 2e-4 * kl[0]                                 # measured 2.6e-5
    assert np.all(np.diff(kl) < 0), np.diff(kl).max()


@pytest.mark.parametrize("D,msg", [
    (np.array([[1.0, 2.0], [2.0, 1.0]]), r"not positive definite at x=\(.*eigenvalues \(-1, 3\)"),
    (np.array([[1.0, 0.5], [0.0, 1.0]]), "not symmetric"),
    (lambda x: ufl.as_matrix([[1.0, x[0]], [x[0], 1.0]]), r"not positive definite at x=\((-)?1\.[0-9]"),
    (lambda x: ufl.as_matrix([[1.0, 0.0], [0.0, ufl.ln(x[0] + 1.5)]]), "not (finite|positive definite)"),
    (np.eye(3), r"shape \(2, 2\)"),
])
def test_bad_diffusion(D, msg):
    msh = meshes.rectangle(COMM, [-2, -2], [2, 2], 0.5)
    with pytest.raises(ValueError, match=msg):
        FokkerPlanckSolver(msh, lambda x: x[0] ** 2, diffusion=D)


def test_sg_rejects_anisotropy():
    msh = meshes.rectangle(COMM, [-2, -2], [2, 2], 0.5)
    with pytest.raises(ValueError, match="method='sg' is for D = I"):
        FokkerPlanckSolver(msh, lambda x: x[0] ** 2, method="sg", scheme="backward_euler", diffusion=D_AN)
