"""Kernel sums at scale (fpjko.kernels) and their use on both sides: orders in the grid spacing against the direct
sum (smooth kernels) and against an exact potential (log|z|), the FE field W * rho by FFT against the direct
quadrature sum (P1, P2; Gaussian and Morse), the solvers on the grid against the direct path (the Random Batch
Method: tests/test_random_batch.py), the numpy fallback against the compiled loops, and bad input."""

import time
import tracemalloc

import dolfinx
import numpy as np
import pytest
from mpi4py import MPI
from scipy.special import exp1

from fpjko.kernels import GridConvolution, have_numba, transfer
from fpjko.metrics.study import fitted_slope
from fpjko.solvers import FokkerPlanckSolver, NewtonJKO
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, kernel_sum
from fpjko.solvers.fokker_planck.stationary import mean_field_stationary


def gauss(z):
    return np.exp(-np.sum(z * z, axis=-1) / 0.5)


def morse(z):
    """Attraction-repulsion with a cusp at 0 (|z| is not smooth there)."""
    r = np.sqrt(np.sum(z * z, axis=-1))
    return -np.exp(-r / 0.5) + 0.6 * np.exp(-r / 0.1)


def log_kernel(z):
    with np.errstate(divide="ignore"):
        return 0.5 * np.log(np.sum(z * z, axis=-1))


@pytest.mark.parametrize("order,expected", [(2, 2.0), (4, 4.0)])
def test_grid_sum_converges_at_the_transfer_order(order, expected):
    """Scattered sources and targets, a Gaussian W: the max error against the direct sum falls like h^order
    (measured 2.0 and 4.0: the chain interpolates W(x - y) in both variables)."""
    rng = np.random.default_rng(0)
    s, m, t = rng.uniform(-1, 1, (3000, 2)), rng.uniform(0, 1, 3000), rng.uniform(-1, 1, (200, 2))
    ref = kernel_sum(t, s, m, gauss)
    hs = [0.1, 0.05, 0.025]
    errs = [np.max(np.abs(GridConvolution(gauss, [-1, -1], [1, 1], h, order=order).apply(t, s, m) - ref))
            / np.max(np.abs(ref)) for h in hs]
    rate = fitted_slope(hs, errs)
    assert abs(rate - expected) < 0.3, (errs, rate)
    if order == 4:
        assert errs[-1] < 5e-7          # measured 2.1e-7 at h = 0.025


def test_log_kernel_is_second_order_against_the_exact_potential():
    """W = log|z| in 2D, rho a centred Gaussian of variance s^2: W * rho = log r + E1(r^2 / 2s^2) / 2 exactly.
    The sources are a fine Gauss quadrature of rho; W(0) is replaced by the cell average of log|z| (computed to
    round-off on graded boxes). Measured order 2.0 (errors 7.1e-4, 1.8e-4, 4.4e-5)."""
    sig, L = 0.3, 2.0
    xg, wg = np.polynomial.legendre.leggauss(3)
    edges = np.linspace(-L, L, 301)
    c, hc = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    p1, w1 = (c[:, None] + hc / 2 * xg[None, :]).ravel(), np.tile(wg * hc / 2, len(c))
    Y = np.stack(np.meshgrid(p1, p1, indexing="ij"), -1).reshape(-1, 2)
    M = np.outer(w1, w1).ravel() * np.exp(-np.sum(Y ** 2, 1) / (2 * sig ** 2)) / (2 * np.pi * sig ** 2)
    t = np.random.default_rng(1).uniform(-0.5, 0.5, (200, 2))
    r = np.linalg.norm(t, axis=1)
    exact = np.log(r) + 0.5 * exp1(r ** 2 / (2 * sig ** 2))
    hs = [0.04, 0.02, 0.01]
    grids = [GridConvolution(log_kernel, [-L, -L], [L, L], h) for h in hs]
    assert all(g.singular for g in grids)
    errs = [np.max(np.abs(g.apply(t, Y, M) - exact)) for g in grids]
    rate = fitted_slope(hs, errs)
    assert 1.8 < rate < 2.3 and errs[-1] < 1e-4, (errs, rate)


def test_power_law_kernels_take_the_zeta_corrected_weight():
    """W = |z|^-1 in 2D and |z|^-1/2 in 1D: the weight at 0 is the corrected trapezoidal rule's (the lattice zeta
    function); with sources on the grid (a Gaussian's values times h^d) the field at nodes converges at order d - s + 2:
    measured 3.0 (2D, exact e^-u I0(u) sqrt(pi/2)/s, u = r^2/4s^2) and 2.5 (1D, at 0: (2s^2)^(1/4) Gamma(1/4) /
    (sqrt(2 pi) s))."""
    from math import gamma, pi, sqrt

    from scipy.special import i0e

    sig = 0.3

    def inv(z):
        with np.errstate(divide="ignore"):
            return 1.0 / np.sqrt(np.sum(z * z, axis=-1))

    def inv_sqrt(z):
        with np.errstate(divide="ignore"):
            return np.abs(z[..., 0]) ** -0.5

    t2 = np.array([[0.0, 0.0], [0.2, 0.1], [0.4, -0.2]])
    r = np.linalg.norm(t2, axis=1)
    exact2 = np.sqrt(np.pi / 2) / sig * i0e(r ** 2 / (4 * sig ** 2))
    errs2, errs1 = [], []
    for n in (100, 200, 400):
        h = 4.0 / n
        g1 = np.linspace(-2, 2, n + 1)
        Y = np.stack(np.meshgrid(g1, g1, indexing="ij"), -1).reshape(-1, 2)
        M = h * h * np.exp(-np.sum(Y ** 2, 1) / (2 * sig ** 2)) / (2 * np.pi * sig ** 2)
        errs2.append(np.max(np.abs(GridConvolution(inv, [-2, -2], [2, 2], h).apply(t2, Y, M) - exact2)))
        h1 = 6.0 / (2 * n)
        y = np.linspace(-3, 3, 2 * n + 1)[:, None]
        m = h1 * np.exp(-y[:, 0] ** 2 / (2 * sig ** 2)) / (sqrt(2 * pi) * sig)
        ex1 = (2 * sig ** 2) ** 0.25 * gamma(0.25) / (sqrt(2 * pi) * sig)
        errs1.append(abs(GridConvolution(inv_sqrt, [-3], [3], h1).apply(np.zeros((1, 1)), y, m)[0] - ex1))
    r2, r1 = -fitted_slope([1, 2, 4], errs2), -fitted_slope([1, 2, 4], errs1)
    assert 2.7 < r2 < 3.3 and errs2[-1] < 1e-5, (errs2, r2)
    assert 2.3 < r1 < 2.7, (errs1, r1)


def test_singular_cell_average_is_exact():
    """The cell average of log|z| over [-a, a]^2 is log a + log 2 / 2 + pi / 4 - 3 / 2 (closed form)."""
    from fpjko.kernels import singular_cell_average

    a = 0.05
    exact = np.log(a) + 0.5 * np.log(2.0) + np.pi / 4 - 1.5
    assert abs(singular_cell_average(log_kernel, [2 * a, 2 * a]) - exact) < 1e-12


def test_numpy_fallback_gives_the_compiled_transfer():
    """The numpy path (no numba) deposits and interpolates the same numbers; the fixed-point deposit is bitwise
    the same (integer sums). numba is in the environment (python3-numba): without it this fails, not skips."""
    assert have_numba(), "numba is not installed (docker/packages.txt has python3-numba): no compiled path to compare"
    rng = np.random.default_rng(2)
    for d, order in ((1, 4), (2, 2), (2, 4), (3, 2)):
        x, m = rng.uniform(0, 1, (5000, d)), rng.uniform(0, 1, 5000)
        shape, h, o = (12,) * d, np.full(d, 0.1), np.full(d, -0.1)
        q = transfer.deposit(x, m, o, h, shape, order)
        q_np = np.zeros_like(q)
        transfer._numpy_deposit(x, m, o, h, shape, order, q_np)
        np.testing.assert_allclose(q_np, q, rtol=1e-13, atol=1e-13)
        qi = transfer.deposit_exact(x, m / m.sum(), o, h, shape, order)
        qi_np = np.zeros_like(qi)
        transfer._numpy_deposit(x, m / m.sum(), o, h, shape, order, qi_np, 2.0 ** 52)
        assert np.array_equal(qi, qi_np)
        F = rng.standard_normal((int(np.prod(shape)), 3))
        np.testing.assert_allclose(transfer._numpy_interpolate(F, x, o, h, shape, order),
                                   transfer.interpolate(F, x, o, h, shape, order), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("degree,n", [(1, 64), (2, 32)])
def test_fe_field_by_fft_against_the_direct_quadrature_sum(degree, n):
    """W * rho at the dofs by the grid (the default) against the O(N^2) sum over the same quadrature points:
    relative error <= 2e-9 for a Gaussian and <= 1e-6 for a Morse kernel at the default grid (measured 3.8e-10 and
    2.3e-7 / 2.8e-7 for P1 / P2)."""
    mesh = dolfinx.mesh.create_unit_square(MPI.COMM_WORLD, n, n)
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
    rho = dolfinx.fem.Function(V)
    rho.interpolate(lambda x: 1 + 0.5 * np.sin(3 * x[0]) * np.cos(2 * x[1]))
    for W, tol in ((gauss, 2e-9), (morse, 1e-6)):
        fast = KernelInteraction(W).bind(V)
        assert fast.grid is not None and fast.grid.shape[0] >= 256
        a, b = fast.state(rho), KernelInteraction(W, method="direct").bind(V).state(rho)
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)), (W.__name__, np.max(np.abs(a - b)))


def test_fe_field_on_a_disk_and_in_3d():
    """Any mesh: an unstructured disk (P1) and a 3D box (P1); the grid covers the bounding box. Relative error
    against the direct sum: measured 2.2e-9 (disk, asserted < 1e-8) and 1.8e-7 (3D, 64 cells per side by default,
    asserted < 1e-6)."""
    from fpjko import meshes

    cases = [(meshes.disk(MPI.COMM_WORLD, 1.0, 0.06), lambda x: 1 + x[0] * x[1], 1e-8),
             (dolfinx.mesh.create_unit_cube(MPI.COMM_WORLD, 8, 8, 8), lambda x: 1 + x[0] * x[1] * x[2], 1e-6)]
    for mesh, f, tol in cases:
        V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        rho = dolfinx.fem.Function(V)
        rho.interpolate(f)
        a = KernelInteraction(gauss).bind(V).state(rho)
        b = KernelInteraction(gauss, method="direct").bind(V).state(rho)
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)), (mesh.geometry.dim, np.max(np.abs(a - b)))


def test_fe_log_kernel_field_against_the_exact_potential():
    """The FE path with log|z| (P1, rho the interpolated Gaussian): second order in the mesh (the FE interpolation
    of rho and the grid's cell average are both O(h^2)); measured 2.0."""
    sig = 0.3
    errs, hs = [], []
    for n in (32, 64, 128):
        mesh = dolfinx.mesh.create_rectangle(MPI.COMM_WORLD, [[-2, -2], [2, 2]], [n, n])
        V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        rho = dolfinx.fem.Function(V)
        rho.interpolate(lambda x: np.exp(-(x[0] ** 2 + x[1] ** 2) / (2 * sig ** 2)) / (2 * np.pi * sig ** 2))
        ki = KernelInteraction(log_kernel, quadrature_degree=4, h=4.0 / n).bind(V)
        psi = ki.state(rho)
        r = np.linalg.norm(ki._targets, axis=1)
        near = (r > 0.05) & (r < 1.0)
        exact = np.log(r[near]) + 0.5 * exp1(r[near] ** 2 / (2 * sig ** 2))
        errs.append(np.max(np.abs(psi[near] - exact)))
        hs.append(4.0 / n)
    rate = fitted_slope(hs, errs)
    assert 1.8 < rate < 2.4, (errs, rate)


@pytest.mark.parametrize("scheme", ["semi-implicit", "explicit"])
def test_fokker_planck_on_the_grid_equals_the_direct_path(scheme):
    """Ten McKean-Vlasov steps with a Gaussian kernel: the FFT field and the direct sum give the same density and
    interaction energy to 1e-7 relative (measured 1.6e-8; the linear solves' tolerance)."""
    mesh = dolfinx.mesh.create_rectangle(MPI.COMM_WORLD, [[-3, -3], [3, 3]], [24, 24])
    out = []
    for method in ("fft", "direct"):
        s = FokkerPlanckSolver(mesh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=2.0, dt=0.02,
                               interaction=KernelInteraction(lambda z: -np.exp(-0.5 * np.sum(z * z, -1)), method=method),
                               interaction_scheme=scheme)
        s.set_initial(lambda x: np.exp(-((x[0] - 0.5) ** 2 + x[1] ** 2) / 0.6), normalize=True)
        s.run(0.2)
        out.append((s.rho.x.array.copy(), s.history["interaction_energy"][-1]))
        s.close()
    assert np.max(np.abs(out[0][0] - out[1][0])) < 1e-7 * np.max(out[1][0])       # measured 1.6e-8
    assert abs(out[0][1] - out[1][1]) < 1e-7 * abs(out[1][1])


def test_mean_field_stationary_and_newton_jko_on_the_grid():
    """The self-consistent stationary state and two NewtonJKO steps with a kernel: the grid path gives the direct
    path's densities to 1e-7; NewtonJKO's steps converge by its own test (no dense block is built)."""
    mesh = dolfinx.mesh.create_rectangle(MPI.COMM_WORLD, [[-3, -3], [3, 3]], [20, 20])
    W = lambda z: -np.exp(-0.5 * np.sum(z * z, axis=-1))                                  # noqa: E731
    rhos = []
    for method in ("fft", "direct"):
        s = FokkerPlanckSolver(mesh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=2.0, dt=0.05,
                               interaction=KernelInteraction(W, method=method))
        res = mean_field_stationary(s, guess=lambda x: np.exp(-(x[0] ** 2 + x[1] ** 2)), tol=1e-10)
        assert res.converged, res.residuals[-3:]
        rhos.append(res.rho.x.array.copy())
        s.close()
    assert np.max(np.abs(rhos[0] - rhos[1])) < 1e-7 * np.max(rhos[1])
    out = []
    for method in ("fft", "direct"):
        j = NewtonJKO(mesh, 0.05, potential=lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=2.0,
                      interaction=KernelInteraction(W, method=method))
        j.set_initial(lambda x: np.exp(-((x[0] - 0.5) ** 2 + x[1] ** 2) / 0.6), normalize=True)
        recs = [j.step() for _ in range(2)]
        assert all(r["converged"] for r in recs), recs
        assert (j.energy.grid is not None) == (method == "fft")
        out.append(j.rho.x.array.copy())
        j.close()
    assert np.max(np.abs(out[0] - out[1])) < 1e-7 * np.max(out[1])


def test_bad_kernels_and_grids_are_refused():
    """Not finite away from 0, a singularity that is not integrable in this dimension, an odd kernel (FP), and a
    grid too large for its memory limit, refused with its size before anything is allocated."""
    with pytest.raises(ValueError, match=r"not finite at z = \[0.5, 0.0\] \(away from 0\)"), np.errstate(all="ignore"):
        GridConvolution(lambda z: 1.0 / (np.abs(z[..., 0]) - 0.5), [0, 0], [1, 1], 0.25)
    with pytest.raises(ValueError, match=r"singular at 0 like \|z\|\^-2, which is not integrable in 2D"), \
            np.errstate(all="ignore"):
        GridConvolution(lambda z: 1.0 / np.sum(z * z, axis=-1), [0, 0], [1, 1], 0.1)
    GridConvolution(lambda z: np.sum(z * z, axis=-1) ** -0.9, [0, 0], [1, 1], 0.1)            # |z|^-1.8: fine in 2D
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"convolution grid 100003 x 100003 \(FFT 20\d+ x 20\d+\) needs [\d.]+ GiB, "
                                         r"over the limit of 1.00 GiB"):
        GridConvolution(gauss, [0, 0], [1, 1], 1e-5, memory_limit=2 ** 30)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 ** 20 and time.perf_counter() - t0 < 1.0
    mesh = dolfinx.mesh.create_unit_square(MPI.COMM_WORLD, 8, 8)
    with pytest.raises(ValueError, match="the interaction kernel must be even"):
        FokkerPlanckSolver(mesh, lambda x: x[0] ** 2, interaction=KernelInteraction(lambda z: np.exp(z[..., 0])))
    with pytest.raises(ValueError, match="method must be 'fft' or 'direct'"):
        KernelInteraction(gauss, method="fmm")
