"""McKean-Vlasov Fokker-Planck on FE: rho_t = div(rho grad(f + W * rho) + beta^-1 grad rho).

Exact reference: f = x^T A x / 2, W = z^T K z / 2 keep Gaussians Gaussian, mean' = -A m,
S' = -(A + K) S - S (A + K)^T + 2 beta^-1 I (fpjko.references.gaussian.mckean_vlasov_law). Asserted: h-orders
2/3 (P1/P2), dt-orders 1/2/2 (backward Euler / BDF2 / Crank-Nicolson with the extrapolated field), the
three interaction paths (polynomial moments, rank-M separable, general kernel) against each other,
mass to round-off, for which dt the discrete free energy is non-increasing, the SG scheme's positivity,
checkpoint/resume, and the errors for bad input."""

import math

import dolfinx.fem
import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from conftest import fitted_slope
from fpjko.references.gaussian import gaussian_density, mckean_vlasov_law
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.core.exact import mckean_vlasov_solution_ufl, quadratic_potential
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, PolynomialInteraction, SeparableInteraction, quadratic
from fpjko.solvers.io.checkpoint import Checkpointer, resume

COMM = MPI.COMM_WORLD
A1, K1, BETA, M0, S0 = np.array([[1.0]]), np.array([[2.0]]), 2.0, [1.0], np.array([[0.2]])


def gaussian_run(h, dt, degree, scheme, W=2.0, T=0.5, **kw):
    msh = meshes.interval(COMM, -5, 5, h)
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * x[0] ** 2, beta=BETA, degree=degree, dt=dt, scheme=scheme,
                           interaction=W, **kw)
    s.set_initial(lambda x: gaussian_density(x, M0, S0))
    s.run(T)
    return s, s.l2_error(mckean_vlasov_solution_ufl(A1, K1, BETA, M0, S0, s.t))


@pytest.mark.parametrize("degree,order", [(1, 2), (2, 3)])
def test_h_order_against_exact_mckean_vlasov_gaussian(degree, order):
    hs = [0.2, 0.1, 0.05]
    errs = []
    for h in hs:
        s, e = gaussian_run(h, 1e-3 if degree == 1 else 5e-4, degree, "bdf2")
        errs.append(e)
        m = np.array(s.history["mass"])
        assert np.abs(m - m[0]).max() < 1e-12
    assert abs(fitted_slope(hs, errs) - order) < 0.15, errs


@pytest.mark.parametrize("scheme,order", [("backward_euler", 1), ("bdf2", 2), ("crank_nicolson", 2)])
def test_dt_order_with_extrapolated_field(scheme, order):
    dts = [0.05, 0.025, 0.0125]
    errs = [gaussian_run(0.02, dt, 2, scheme)[1] for dt in dts]
    assert abs(fitted_slope(dts, errs) - order) < 0.15, errs


def test_explicit_interaction_is_second_order_with_bdf2_and_refused_with_cn():
    dts = [0.05, 0.025, 0.0125]
    errs = [gaussian_run(0.02, dt, 2, "bdf2", interaction_scheme="explicit")[1] for dt in dts]
    assert abs(fitted_slope(dts, errs) - 2) < 0.2, errs
    with pytest.raises(ValueError, match="unstable for every dt"):
        gaussian_run(0.1, 0.1, 1, "crank_nicolson", interaction_scheme="explicit")


def test_anisotropic_linear_case_in_2d():
    """Non-diagonal A and K in 2D, P1: error order 2 in h (BDF2, small dt)."""
    A = np.array([[1.0, 0.3], [0.3, 1.5]])
    K = np.array([[1.0, -0.4], [-0.4, 0.5]])
    m0, S = [0.8, -0.4], 0.2 * np.eye(2)
    hs, errs = [0.4, 0.2, 0.1], []
    for h in hs:
        msh = meshes.rectangle(COMM, [-4, -4], [4, 4], h)
        s = FokkerPlanckSolver(msh, quadratic_potential(A), beta=BETA, degree=1, dt=2.5e-3, interaction=K)
        s.set_initial(lambda x: gaussian_density(x, m0, S))
        s.run(0.25)
        errs.append(s.l2_error(mckean_vlasov_solution_ufl(A, K, BETA, m0, S, s.t)))
    assert abs(fitted_slope(hs, errs) - 2) < 0.2, errs


def quadratic_as_separable(k):
    """k (x - y)^2 / 2 = sum_m w_m phi_m(x) phi_m(y) with phi in span(1, x, x^2): eigen-decomposition of
    the symmetric coefficient matrix [[0, 0, k/2], [0, -k, 0], [k/2, 0, 0]] (rank 3, indefinite)."""
    C = np.array([[0.0, 0.0, k / 2], [0.0, -k, 0.0], [k / 2, 0.0, 0.0]])
    lam, V = np.linalg.eigh(C)
    return SeparableInteraction(lambda x: np.stack([np.ones(len(x)), x[:, 0], x[:, 0] ** 2], axis=1) @ V, lam)


def test_interaction_paths_agree():
    """Polynomial moments, rank-3 separable and the general kernel path on the same W = z^2 (P2)."""
    ref, e_ref = gaussian_run(0.1, 0.01, 2, "bdf2", W=quadratic(2.0, 1))
    sep, e_sep = gaussian_run(0.1, 0.01, 2, "bdf2", W=quadratic_as_separable(2.0))
    ker, e_ker = gaussian_run(0.1, 0.01, 2, "bdf2", W=KernelInteraction(lambda z: z[..., 0] ** 2))
    scale = np.abs(ref.rho.x.array).max()
    # psi is quadratic: P2 interpolation and degree-4 moments are exact, so these agree to round-off (measured
    # 1.1e-15 and 2.7e-15)
    assert np.abs(sep.rho.x.array - ref.rho.x.array).max() < 1e-14 * scale
    assert np.abs(np.array(sep.history["energy"]) - ref.history["energy"]).max() < 2e-14
    # the kernel path sums W(x_i - y_q) rho(y_q) over quadrature points: measured 8.2e-14 of the density and
    # 1.7e-11 of the error
    assert np.abs(ker.rho.x.array - ref.rho.x.array).max() < 5e-13 * scale
    assert e_ker == pytest.approx(e_ref, rel=1e-10)


def test_interaction_energy_is_half_int_psi_rho():
    """For W = k z^2/2 and unit mass, 1/2 iint W rho rho = k/2 Var(rho): check against the exact law."""
    s, _ = gaussian_run(0.05, 0.01, 2, "bdf2", T=0.3)
    _, S = mckean_vlasov_law(A1, K1, BETA, M0, S0, s.t)
    assert s.history["interaction_energy"][-1] == pytest.approx(0.5 * 2.0 * S[0, 0], rel=1e-4)


def desai_zwanzig(dt, k, scheme="bdf2", method="galerkin", interaction_scheme="semi-implicit", T=6.0):
    msh = meshes.interval(COMM, -3, 3, 0.02)
    s = FokkerPlanckSolver(msh, lambda x: 0.25 * x[0] ** 4 - 0.5 * x[0] ** 2, beta=3.0, degree=1, dt=dt,
                           scheme=scheme, method=method, interaction=k, interaction_scheme=interaction_scheme)
    s.set_initial(lambda x: 0.5 * gaussian_density(x, [-1.0], np.array([[0.05]]))
                  + 0.5 * gaussian_density(x, [1.2], np.array([[0.1]])))
    s.run(T)
    return np.array(s.history["energy"]), np.array(s.history["min_rho"]), np.array(s.history["mass"])


def test_free_energy_decay_and_its_step_size_limit():
    """Measured (double well, beta 3, W = k z^2/2, P1, h = 0.02): backward Euler and SG dissipate F for
    every dt (up to 0.8) and every k (1, 5, 20); BDF2 with the extrapolated field only for dt k <~ 0.25;
    the explicit variant needs dt <~ 2 beta^-1 / max|grad psi|^2."""
    for k in (1.0, 20.0):
        for dt in (0.8, 0.1):
            for method in ("galerkin", "sg"):
                F, mn, m = desai_zwanzig(dt, k, "backward_euler", method)
                assert np.all(np.diff(F) < 0), (k, dt, method, np.diff(F).max())
                assert np.abs(m - m[0]).max() < 1e-12
                if method == "sg":
                    assert mn.min() >= 0.0
    F, _, _ = desai_zwanzig(0.4, 1.0)              # dt k = 0.4: still monotone for k = 1 ...
    assert np.all(np.diff(F) < 0)
    F, _, _ = desai_zwanzig(0.8, 1.0)              # ... not at dt k = 0.8
    assert np.diff(F).max() > 1e-4                 # measured 4.6e-4
    F, _, _ = desai_zwanzig(0.05, 5.0)             # dt k = 0.25
    assert np.all(np.diff(F) < 0)
    F, _, _ = desai_zwanzig(0.2, 5.0)              # dt k = 1
    assert np.diff(F).max() > 1e-2                 # measured 0.041
    F, _, _ = desai_zwanzig(0.2, 1.0, "backward_euler", interaction_scheme="explicit")
    assert np.all(np.diff(F) < 0)
    F, _, _ = desai_zwanzig(0.4, 1.0, "backward_euler", interaction_scheme="explicit")
    assert np.diff(F).max() > 1e-4


def test_sg_with_interaction_converges_and_stays_positive():
    """The lagged SG scheme on the exact Gaussian: first order in (h^2, dt) jointly, rho >= 0."""
    errs, dts = [], [0.02, 0.01, 0.005]
    for dt in dts:
        h = math.sqrt(dt) * 0.5
        msh = meshes.interval(COMM, -5, 5, h)
        s = FokkerPlanckSolver(msh, lambda x: 0.5 * x[0] ** 2, beta=BETA, dt=dt, scheme="backward_euler",
                               method="sg", interaction=2.0)
        s.set_initial(lambda x: gaussian_density(x, M0, S0))
        s.run(0.5)
        assert min(s.history["min_rho"]) >= 0.0
        errs.append(s.l2_error(mckean_vlasov_solution_ufl(A1, K1, BETA, M0, S0, s.t)))
    assert abs(fitted_slope(dts, errs) - 1) < 0.15, errs


def test_checkpoint_resume_with_interaction(tmp_path):
    """BDF2 needs rho_{n-1} and the extrapolated field: a resumed run equals an uninterrupted one."""
    def make():
        msh = meshes.interval(COMM, -3, 3, 0.05)
        s = FokkerPlanckSolver(msh, lambda x: 0.25 * x[0] ** 4 - 0.5 * x[0] ** 2, beta=3.0, degree=2, dt=0.05,
                               interaction=KernelInteraction(lambda z: -np.exp(-z[..., 0] ** 2)))
        s.set_initial(lambda x: gaussian_density(x, [0.4], np.array([[0.2]])), normalize=True)
        return s
    ref = make()
    ref.run(1.0)
    a = make()
    a.run(0.5, checkpoint=Checkpointer(tmp_path / "ck.npz", every=5))
    b = make()
    resume(b, tmp_path / "ck.npz")
    b.run(1.0)
    assert np.abs(b.rho.x.array - ref.rho.x.array).max() < 1e-12 * np.abs(ref.rho.x.array).max()
    assert b.history["interaction_energy"][-1] == pytest.approx(ref.history["interaction_energy"][-1], rel=1e-12)


def test_bad_interactions_are_named():
    msh = meshes.interval(COMM, -1, 1, 0.1)
    with pytest.raises(ValueError, match="symmetric"):
        FokkerPlanckSolver(msh, None, interaction=np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2D but the mesh is 1D"):
        FokkerPlanckSolver(msh, None, interaction=quadratic(1.0, 2))
    with pytest.raises(ValueError, match="interaction_scheme='implicit'"):
        FokkerPlanckSolver(msh, None, interaction=1.0, interaction_scheme="implicit")
    bad = SeparableInteraction(lambda x: np.ones((len(x), 3)), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"features\(x\) must return shape"):
        FokkerPlanckSolver(msh, None, interaction=bad)


def test_polynomial_moments_equal_exact_kernel_sums():
    """A non-symmetric quartic W(z) = z1^3 z2 + z2^2 - 0.5 z1 in 2D: the psi built from moments equals the kernel
    path's quadrature sums to round-off when that quadrature is exact (degree k + 4 for P2 rho)."""
    coeffs = {(3, 1): 1.0, (0, 2): 1.0, (1, 0): -0.5}
    poly = PolynomialInteraction(coeffs)
    W = lambda z: z[..., 0] ** 3 * z[..., 1] + z[..., 1] ** 2 - 0.5 * z[..., 0]                   # noqa: E731
    z = np.random.default_rng(0).standard_normal((7, 2))
    assert np.allclose(poly(z), W(z), rtol=1e-14)
    msh = meshes.rectangle(COMM, [-2, -1], [2, 1.5], 0.25)
    V = dolfinx.fem.functionspace(msh, ("Lagrange", 2))
    rho = dolfinx.fem.Function(V)
    rho.interpolate(lambda x: gaussian_density(x, [0.3, 0.1], np.diag([0.3, 0.2])))
    ker = KernelInteraction(W, quadrature_degree=6).bind(V)
    poly.bind(V)
    ker.update(rho)
    poly.update(rho)
    n = V.dofmap.index_map.size_local
    assert np.abs(poly.nodal()[:n] - ker.nodal()[:n]).max() < 1e-14 * np.abs(ker.nodal()).max()   # measured 1.3e-15


def test_bad_kernels_are_named_on_every_rank():
    msh = meshes.interval(COMM, -1, 1, 0.1)
    with pytest.raises(ValueError, match=r"must return finite values of shape \(1, 2\)"):
        FokkerPlanckSolver(msh, None, interaction=KernelInteraction(lambda z: z))             # (..., d) not (...)
    with pytest.raises(ValueError, match="W\\(z\\) failed on z of shape \\(1, 2, 1\\): KeyError"):
        FokkerPlanckSolver(msh, None, interaction=KernelInteraction(lambda z: {}["x"]))


def test_one_interaction_object_serves_two_solvers():
    """bind keeps the field and its space on the object: one KernelInteraction given to two solvers on different meshes
    was rebound by the second, and the first stepped with a field of the other mesh. Now the second binds its own
    copy: each solver, both stepping in turn, equals a solver built with its own object (to round-off)."""
    def gauss(z):
        return -np.exp(-0.5 * np.sum(z * z, axis=-1))

    def build(msh, W):
        s = FokkerPlanckSolver(msh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=2.0, dt=0.05, interaction=W)
        s.set_initial(lambda x: gaussian_density(x, [0.4, -0.2], 0.3 * np.eye(2)), normalize=True)
        return s

    m1 = meshes.rectangle(COMM, [-2, -2], [2, 2], 0.25)
    m2 = meshes.rectangle(COMM, [-3, -2], [2, 3], 0.3)
    shared = KernelInteraction(gauss)
    a, b = build(m1, shared), build(m2, shared)
    assert a.interaction is shared and b.interaction is not shared and b.interaction.V_psi.mesh is m2
    ra, rb = build(m1, KernelInteraction(gauss)), build(m2, KernelInteraction(gauss))
    for _ in range(3):
        for s in (a, b, ra, rb):
            s.step()
    for s, r in ((a, ra), (b, rb)):
        scale = np.abs(r.rho.x.array).max()
        assert np.abs(s.rho.x.array - r.rho.x.array).max() <= 1e-12 * scale
        np.testing.assert_allclose(s.history["interaction_energy"], r.history["interaction_energy"], rtol=1e-12)
    assert shared.V_psi.mesh is m1                   # the caller's object is still the first solver's
