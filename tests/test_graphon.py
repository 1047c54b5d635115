"""Graphons: SGD on symmetric matrices (samplers/graphon.py), the graphon gradient flow and the graphon
McKean-Vlasov equation (solvers/graphon/), Mantel's theorem by gradient flow, propagation of chaos.

Exact references. Mantel/Goodman: R = t(K3) - t(K2) >= 2 t(K2)^2 - 2 t(K2) >= -1/2, with equality only at the
balanced complete bipartite graphon (t(K2) = 1/2, t(K3) = 0). Least squares R = 1/2 ||W - W*||^2 with noise
sigma: each entry is the reflected OU process dX = -(X - W*) dt + sigma dB on [a, b], whose stationary density
is exp(-(x - W*)^2 / sigma^2) / Z with Z = sigma sqrt(pi)/2 (erf((b - W*)/sigma) - erf((a - W*)/sigma)) (the
zero-flux solution of 0 = d_x((x - W*) rho + sigma^2/2 d_x rho)).
"""

import math

import numpy as np
import pytest
from mpi4py import MPI

from conftest import fitted_slope, run_mpi
from fpjko.metrics.study import convergence_in_n
from fpjko import meshes
from fpjko.references import reflected_ou
from fpjko.samplers import graphon as G
from fpjko.solvers.graphon.flow import GraphonFlow
from fpjko.solvers.graphon.mckean_vlasov import GraphonMcKeanVlasov

COMM = MPI.COMM_WORLD
MANTEL = G.GraphonObjective(edges=-1.0, triangles=1.0)


def test_densities_and_graphon_derivatives():
    """Homomorphism densities against brute-force sums; DR = n^2 dR/dW_ij against finite differences."""
    rng = np.random.default_rng(1)
    n = 7
    W = G.random_symmetric(n, seed=2)
    tri = sum(W[i, j] * W[j, k] * W[k, i] for i in range(n) for j in range(n) for k in range(n)) / n ** 3
    c4 = sum(W[i, j] * W[j, k] * W[k, l] * W[l, i] for i in range(n) for j in range(n) for k in range(n)
             for l in range(n)) / n ** 4
    assert G.edge_density(W) == pytest.approx(W.sum() / n ** 2, rel=1e-14)
    assert G.triangle_density(W) == pytest.approx(tri, rel=1e-13)
    assert G.cycle_density(W, 4) == pytest.approx(c4, rel=1e-13)
    R = G.GraphonObjective(edges=0.7, triangles=-1.3, cycles={4: 0.4}, least_squares=2.0,
                           target=lambda u, v: u * v)
    D = R.gradient(W)
    assert np.allclose(D, D.T, atol=1e-14)
    for _ in range(5):
        i, j = rng.integers(0, n, 2)
        E = np.zeros((n, n))
        E[i, j] = E[j, i] = 1.0
        h = 1e-6
        fd = (R.value(W + h * E) - R.value(W - h * E)) / (2 * h)
        assert n ** 2 * fd == pytest.approx(D[i, j] * (1 if i == j else 2), rel=1e-8)   # measured 2.2e-9 at most


@pytest.mark.parametrize("n, seed", [(100, 0), (100, 1), (200, 2), (400, 3)])
def test_mantel_by_gradient_descent(n, seed):
    """GD on t(K3) - t(K2) from a random symmetric matrix ends at a balanced complete bipartite graph:
    edge density 1/2 +- 1e-2 (measured 2 |A| |B| / n^2 exactly, |A| - n/2 = -2, -3, -4, 0), the two classes found,
    empty inside and complete across exactly (the projection onto the box [0, 1] ends at 0 and 1: measured triangle
    density 0, entries 0 and 1, objective to 3e-16)."""
    out = G.gradient_descent(G.random_symmetric(n, seed=seed), MANTEL, tau=0.2, t_end=100.0, record_every=50)
    W = out["W"]
    assert abs(G.edge_density(W) - 0.5) < 1e-2 and G.triangle_density(W) < 1e-12
    A, B = G.bipartition(W)
    assert abs(len(A) - n / 2) < 0.1 * n
    assert W[np.ix_(A, A)].max() < 1e-12 and W[np.ix_(B, B)].max() < 1e-12 and W[np.ix_(A, B)].min() > 1 - 1e-12
    assert out["history"]["objective"][-1] == pytest.approx(-2 * len(A) * len(B) / n ** 2, abs=1e-14)
    assert all(np.diff(out["history"]["objective"]) <= 1e-12)                 # a gradient flow


@pytest.mark.parametrize("degree", [0, 1])
def test_graphon_flow_finds_mantel_from_a_smooth_graphon(degree):
    """The graphon flow (DG0 and Q1 on a 64 x 64 mesh) from W0 = 1/2 - cos(pi u) cos(pi v) / 5 reaches the
    bipartite graphon 1{(u < 1/2) != (v < 1/2)}: edge density 1/2 +- 1e-3 (measured 0 for DG0, -1.2e-4 for Q1: its
    nodes on u = 1/2), triangle density and the blocks exactly 0 and 1 (the box projection; measured exactly)."""
    F = GraphonFlow(meshes.unit_square(COMM, 64), MANTEL, tau=0.2, degree=degree, record_every=10)
    F.set_initial(lambda u, v: 0.5 - 0.2 * np.cos(np.pi * u) * np.cos(np.pi * v))
    F.run(60.0)
    e, t = F.history["edge_density"][-1], F.history["triangle_density"][-1]
    assert abs(e - 0.5) < 1e-3 and t < 1e-12, (e, t)
    A = F.matrix()
    half = A.shape[0] // 2
    assert A[:half - 1, :half - 1].max() < 1e-12 and A[:half - 1, half + 1:].min() > 1 - 1e-12
    assert all(np.diff(F.history["energy"]) <= 1e-12)


def test_dg0_flow_is_the_matrix_gradient_descent():
    W0 = G.random_symmetric(40, seed=5)
    F = GraphonFlow(meshes.unit_square(COMM, 40), MANTEL, tau=0.1, degree=0)
    F.set_initial(W0)
    F.run(3.0)
    out = G.gradient_descent(W0, MANTEL, 0.1, 3.0)
    assert np.abs(F.matrix() - out["W"]).max() < 1e-13


def _flow_reference(W0, T, n=256):
    """The graphon flow (Q1, n x n mesh) at time T: (nodal array, grid, t(K2), t(K3))."""
    F = GraphonFlow(meshes.unit_square(COMM, n), MANTEL, tau=0.05, degree=1)
    F.set_initial(W0)
    F.run(T)
    ref = F.matrix()
    return ref, np.linspace(0, 1, n + 1), *F.densities(ref)


def _at(ref, grid, p):
    """Bilinear interpolation of the nodal array at the points (p_i, p_j)."""
    k = np.clip(np.searchsorted(grid, p) - 1, 0, len(grid) - 2)
    f = (p - grid[k]) / (grid[1] - grid[0])
    R0 = ref[np.ix_(k, k)] * (1 - f)[None, :] + ref[np.ix_(k, k + 1)] * f[None, :]
    R1 = ref[np.ix_(k + 1, k)] * (1 - f)[None, :] + ref[np.ix_(k + 1, k + 1)] * f[None, :]
    return R0 * (1 - f)[:, None] + R1 * f[:, None]


W0_SMOOTH = lambda u, v: 0.2 + 0.5 * u * v + 0.1 * (u + v)                               # noqa: E731


def test_matrix_gradient_descent_converges_to_the_graphon_flow():
    """n x n GD against the graphon flow at t = 1 (same tau = 0.05, projected Euler), vertices at the cell
    centres (i + 1/2)/n: the step graphon's kernel integral is the midpoint rule, so the L2 distance and the
    errors of t(K2), t(K3) fall like n^-2 (reference: Q1 on 480 x 480; fitted slopes measured -1.945, -1.947,
    -1.947, asserted within (-2.2, -1.8))."""
    ref, grid, e_ref, t_ref = _flow_reference(W0_SMOOTH, 1.0, 480)
    ns, errs = [15, 30, 60, 120], []
    for n in ns:
        A, _ = G.sample_graphon(W0_SMOOTH, n, latent=(np.arange(n) + 0.5) / n)
        W = G.gradient_descent(A, MANTEL, 0.05, 1.0, record_every=100)["W"]
        p = (np.arange(n) + 0.5) / n
        errs.append((math.sqrt(np.mean((W - _at(ref, grid, p)) ** 2)), abs(G.edge_density(W) - e_ref),
                     abs(G.triangle_density(W) - t_ref)))
    errs = np.array(errs)
    s = [fitted_slope(ns, errs[:, c]) for c in range(3)]
    print("grid latent: slopes (L2, t(K2), t(K3))", s, "errors", errs.tolist())
    assert all(np.all(np.diff(errs[:, c]) < 0) for c in range(3)) and all(-2.2 < x < -1.8 for x in s), (s, errs)


def test_exchangeable_sampled_matrices_converge_to_the_graphon_flow():
    """W_ij = W0(U_i, U_j) with iid uniform U (exchangeable labels), GD to t = 1, vertices sorted by degree
    (W0's degree increases with u), against the flow at (i + 1/2)/n: the L2 distance falls with n at the
    Monte-Carlo rate (fitted slope about -0.4; measured 0.0053, 0.0035, 0.0031, 0.0023 for n = 50 ... 400). Not yet
    the -1/2 that the latent order statistics suggest: with convergence_in_n, 16 seeds give -0.39 [-0.49, -0.28]
    (n = 50 ... 400) and -0.39 [-0.52, -0.27] (n = 100 ... 800), so only the band is asserted."""
    ref, grid, _, _ = _flow_reference(W0_SMOOTH, 1.0)
    ns, l2 = [50, 100, 200, 400], []
    for n in ns:
        d = []
        for seed in range(3):
            A, _ = G.sample_graphon(W0_SMOOTH, n, seed=seed)
            W = G.gradient_descent(A, MANTEL, 0.05, 1.0, record_every=100)["W"]
            o = G.degree_order(W)
            d.append(math.sqrt(np.mean((W[np.ix_(o, o)] - _at(ref, grid, (np.arange(n) + 0.5) / n)) ** 2)))
        l2.append(np.mean(d))
    s = fitted_slope(ns, l2)
    print("exchangeable: L2 after degree sorting", l2, "slope", s)
    assert l2[0] > l2[-1] and -0.8 < s < -0.25, (l2, s)


def _block_w1(W, i, j, blocks, law_cdf):
    b = W.shape[0] // blocks
    vals = np.sort(W[i * b:(i + 1) * b, j * b:(j + 1) * b].ravel())
    grid = np.linspace(0, 1, 4001)
    emp = np.searchsorted(vals, grid, side="right") / len(vals)
    return float(np.trapezoid(np.abs(emp - law_cdf(grid)), grid))


def test_least_squares_noisy_sgd_and_its_mckean_vlasov_limit():
    """R = 1/2 ||W - W*||^2 with W* constant on a 4 x 4 block partition, sigma = 1, box [0, 1]:
    (1) the graphon McKean-Vlasov solver reaches the exact reflected-OU stationary law in every cell (L1 < 1e-5)
        and keeps each cell's mass to 1e-11;
    (2) noisy SGD entries of each block against that law: W1 falls with n (n = 32, 64, 128, three seeds): measured
        slope -0.79 (8 seeds: -0.88 [-1.08, -0.67]), not the -1 of m = (n/4)^2 samples: the projected Euler step
        onto the box biases the law near the walls by O(sqrt(tau)) (tau = 1e-3; t = 8 gives the same, tau = 2e-3 is
        flatter), a floor of about 0.01 against 0.015 at n = 128;
    (3) noisy SGD entries against the solver's law at t = 0.3 (not yet stationary, tau = 2.5e-4): W1 of the
        (n/4)^2 entries of a block falls like n^-1: -1 lies in the interval convergence_in_n returns (8 seeds;
        measured -1.010 [-1.200, -0.820])."""
    Wstar = lambda u, v: 0.2 + 0.6 * np.floor(4 * u) * np.floor(4 * v) / 9              # noqa: E731
    R = G.GraphonObjective(least_squares=1.0, target=Wstar)
    M = GraphonMcKeanVlasov(meshes.unit_square(COMM, 4), R, dt=0.002, nx=201, sigma=1.0)
    M.set_initial(lambda u, v: 0.5 + 0 * u)
    M.run(0.3)
    mid = {(i, j): M.cell_law(i, j)[1].copy() for i in range(4) for j in range(4)}
    M.dt = 0.01
    M.run(5.0)
    assert max(M.history["mass_error"]) < 1e-11
    for i in range(4):
        for j in range(4):
            x, r = M.cell_law(i, j)
            exact = reflected_ou.reflected_ou_density(x, Wstar((i + 0.5) / 4, (j + 0.5) / 4))
            assert float(M.mx @ np.abs(r - exact)) < 1e-5
    blocks = [(0, 0), (1, 2), (3, 3)]
    ns, w_stat = [32, 64, 128], []
    for n in ns:
        ws = []
        for seed in range(3):
            Ws = G.gradient_descent(np.full((n, n), 0.5), R, 1e-3, 4.0, sigma=1.0, seed=seed, record_every=10**9)["W"]
            for (i, j) in blocks:
                c = Wstar((i + 0.5) / 4, (j + 0.5) / 4)
                ws.append(_block_w1(Ws, i, j, 4, lambda g: reflected_ou.reflected_ou_cdf(g, c)))
        w_stat.append(np.mean(ws))
    s1 = fitted_slope(ns, w_stat)
    cdfs = {b: np.concatenate([[0.0], np.cumsum(0.5 * (mid[b][1:] + mid[b][:-1]) * M.hx)]) for b in blocks}
    res = convergence_in_n(
        lambda n, seed: G.gradient_descent(np.full((n, n), 0.5), R, 2.5e-4, 0.3, sigma=1.0, seed=seed,
                                           record_every=10**9)["W"],
        lambda W: np.mean([_block_w1(W, i, j, 4, lambda g: np.interp(g, M.x, cdfs[i, j])) for (i, j) in blocks]),
        ns, repeats=8, echo=False)
    w_mid = res["mean"]
    print("W1 per block, stationary:", w_stat, "slope", s1, "| t = 0.3:", w_mid, "slope", res["slope"], res["interval"])
    assert w_stat[0] > w_stat[1] > w_stat[2] and s1 < -0.5, (w_stat, s1)
    lo, hi = res["interval"]
    assert lo <= -1.0 <= hi and (hi - lo) / 2 < 0.25, (w_mid, res["slope"], res["interval"])
    assert w_mid[0] > w_mid[1] > w_mid[2] and -1.4 < res["slope"] < -0.7, (w_mid, res["slope"])


def test_propagation_of_chaos():
    """Noisy SGD on t(K3) weighted 3 minus t(K2), sigma = 0.3, to t = 1 from W = 1/2, 4000 independent runs:
    the entries W_01 and W_02 (a 2 x 2 submatrix's row) are dependent for small n and become independent as n
    grows: the chi-square statistic (4 x 4 quantile bins) falls and the p-value rises with n."""
    R = G.GraphonObjective(edges=-1.0, triangles=3.0)
    stats, ps = [], []
    for n in (4, 8, 16, 32):
        W = G.noisy_gd_replicas(np.full((n, n), 0.5), R, 0.01, 1.0, 0.3, 4000, seed=n)
        st, p = G.chi2_independence(W[:, 0, 1], W[:, 0, 2], bins=4)
        stats.append(st)
        ps.append(p)
    print("chi-square:", stats, "p:", ps)
    assert stats[0] > stats[1] > stats[2] and ps[0] < 1e-6 and ps[1] < 1e-3 and ps[3] > 1e-3, (stats, ps)


def test_bad_input():
    with pytest.raises(ValueError, match=r"symmetric: W\[0, 1\]"):
        G.gradient_descent(np.array([[0.5, 0.2], [0.3, 0.5]]), MANTEL, 0.1, 1.0)
    with pytest.raises(ValueError, match="outside the box"):
        G.gradient_descent(np.full((3, 3), 1.5), MANTEL, 0.1, 1.0)
    with pytest.raises(ValueError, match=r"not finite: W\[1, 1\]"):
        G.gradient_descent(np.where(np.eye(3) * [0, 1, 0] > 0, np.nan, 0.5), MANTEL, 0.1, 1.0)
    with pytest.raises(ValueError, match="cycle lengths must be integers >= 3"):
        G.GraphonObjective(cycles={2: 1.0})
    with pytest.raises(ValueError, match="needs a target"):
        G.GraphonObjective(least_squares=1.0)
    with pytest.raises(ValueError, match=r"target W\* is not finite: W\*\[0, 0\] = nan"):
        G.gradient_descent(np.full((2, 2), 0.5), G.GraphonObjective(least_squares=1.0, target=lambda u, v: np.nan + 0 * u * v),
                           0.1, 1.0)
    with pytest.raises(ValueError, match="tau must be positive"):
        G.gradient_descent(np.full((2, 2), 0.5), MANTEL, -0.1, 1.0)
    F = GraphonFlow(meshes.unit_square(COMM, 8), MANTEL, tau=0.1, degree=1)
    with pytest.raises(ValueError, match=r"shape \(8, 8\), this mesh needs \(9, 9\)"):
        F.set_initial(np.full((8, 8), 0.5))


def test_serial_and_two_ranks_agree():
    r1, r2 = run_mpi(1, "mpi_graphon.py"), run_mpi(2, "mpi_graphon.py")
    assert r2["size"] == 2
    assert np.abs(np.array(r1["flow"]) - np.array(r2["flow"])).max() < 1e-14
    assert np.abs(np.array(r1["gamma"]) - np.array(r2["gamma"])).max() < 1e-14
    assert np.abs(np.array(r1["law"]) - np.array(r2["law"])).max() < 1e-12
    assert r2["mass_error"] < 1e-12
    # a bad initial law on the cells of one rank ends every rank with the same error
    assert len(set(r2["faults"])) == 1 and "initial laws must be finite and non-negative" in r2["faults"][0]
    # one cell on two ranks: the rank without a cell follows, and Gamma is the serial one
    assert sorted(r2["tiny"]["cells"]) == [0, 1]
    assert np.abs(np.array(r1["tiny"]["gamma"]) - np.array(r2["tiny"]["gamma"])).max() < 1e-14
    assert r2["tiny"]["mass_error"] < 1e-12
