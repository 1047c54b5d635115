"""SGD on large symmetric matrices and its graphon limits (numpy only).

A symmetric n x n matrix W with entries in a box [a, b] is the step graphon W(u, v) = W_ij on
[(i-1)/n, i/n) x [(j-1)/n, j/n). With that identification the graphon integrals become matrix products:

    t(K2, W) = int W = sum_ij W_ij / n^2,      t(K3, W) = tr(W^3) / n^3,      t(C_k, W) = tr(W^k) / n^k,
    (W o W)(u, v) = int W(u, z) W(z, v) dz = (W @ W)_ij / n,

and the graphon (L2) derivative of R is DR(W) = n^2 dR/dW_ij: DR t(K2) = 1, DR t(K3) = 3 W o W,
DR t(C_k) = k W^(k-1) / n^(k-2), DR of 1/2 ||W - W*||^2 = W - W*. Gradient descent with step tau,

    W_{k+1} = P(W_k - tau DR(W_k) + sigma tau^(1/2) Z_k),   Z_k symmetric with N(0, 1) entries,

is the projected Euler scheme of the graphon gradient flow W_t = -DR(W) (sigma = 0), and of the reflected
SDE dX = -DR dt + sigma dB per entry (sigma > 0, noisy SGD), whose n -> infinity limit is the graphon
McKean-Vlasov equation (fpjko.solvers.graphon). P clips to the box. n x n products use BLAS: n up to several
thousand. The noise comes from one seeded numpy Generator; the run is one process, so its result does not
depend on any rank count.

Mantel's theorem: a triangle-free graph has edge density <= 1/2; R = t(K3) - t(K2) >= 2 t(K2)^2 - 2 t(K2)
>= -1/2 (Goodman), with equality only for the balanced complete bipartite graphon, which gradient descent
on R finds (tests/test_graphon.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fpjko.common import checks


@dataclass
class GraphonObjective:
    """R(W) = edges t(K2) + triangles t(K3) + sum_k cycles[k] t(C_k) + least_squares / 2 ||W - target||^2.

    target: an (n, n) matrix, or a callable target(u, v) of the vertex positions u_i = (i + 1/2) / n."""

    edges: float = 0.0
    triangles: float = 0.0
    cycles: dict = field(default_factory=dict)
    least_squares: float = 0.0
    target: object = None

    def __post_init__(self):
        for k in self.cycles:
            if int(k) != k or k < 3:
                raise ValueError(f"cycle lengths must be integers >= 3, got {k!r}")
        if self.least_squares and self.target is None:
            raise ValueError("a least-squares term needs a target W*")

    def target_matrix(self, n: int) -> np.ndarray:
        """W* at the cell centres (i + 1/2) / n, or the given (n, n) matrix."""
        if callable(self.target):
            u = (np.arange(n) + 0.5) / n
            T = np.asarray(self.target(u[:, None], u[None, :]), float) * np.ones((n, n))
        else:
            T = np.asarray(self.target, float)
        if T.shape != (n, n):
            raise ValueError(f"target W* has shape {T.shape}, the matrix is {n} x {n}")
        if not np.all(np.isfinite(T)):
            i, j = np.argwhere(~np.isfinite(T))[0]
            raise ValueError(f"target W* is not finite: W*[{i}, {j}] = {T[i, j]}")
        return T

    def value(self, W: np.ndarray, weights=None, target=None) -> float:
        """R(W). weights: quadrature weights w_z of the points the rows stand for (default 1/n each: the
        step graphon of the matrix), so that int dz -> sum_z w_z; target: W* there (default target_matrix(n))."""
        n = W.shape[0]
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, float)
        Ww = W * w[None, :]
        out = self.edges * float(w @ W @ w) + self.triangles * float(np.einsum("ij,jk,ki->", Ww, Ww, Ww))
        for k, c in self.cycles.items():
            out += c * float(np.trace(np.linalg.matrix_power(Ww, int(k))))
        if self.least_squares:
            T = self.target_matrix(n) if target is None else target
            out += 0.5 * self.least_squares * float(w @ ((W - T) ** 2) @ w)
        return float(out)

    def nonlocal_gradient(self, W: np.ndarray, weights=None) -> np.ndarray:
        """The part of DR(W)(u, v) that depends on W only through integrals over other entries (which
        concentrate as n grows): edges, triangles, cycles. weights as in value (stacks (..., n, n) too)."""
        n = W.shape[-1]
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, float)
        G = np.full(W.shape, float(self.edges))
        if self.triangles or self.cycles:
            Ww = W * w
        if self.triangles:
            G += 3.0 * self.triangles * (Ww @ W)
        for k, c in self.cycles.items():
            P = W.copy()
            for _ in range(int(k) - 2):
                P = Ww @ P
            G += int(k) * c * P
        return G

    def gradient(self, W: np.ndarray, weights=None, target=None) -> np.ndarray:
        """DR(W) = n^2 dR/dW_ij, an (n, n) symmetric matrix (or a stack (..., n, n)); with weights, the graphon
        derivative at the points (int dz -> sum_z w_z)."""
        G = self.nonlocal_gradient(W, weights)
        if self.least_squares:
            G += self.least_squares * (W - (self.target_matrix(W.shape[-1]) if target is None else target))
        return G


def edge_density(W: np.ndarray) -> float:
    return float(np.mean(W))


def triangle_density(W: np.ndarray) -> float:
    n = W.shape[0]
    return float(np.einsum("ij,ji->", W @ W, W)) / n ** 3


def cycle_density(W: np.ndarray, k: int) -> float:
    n = W.shape[0]
    return float(np.trace(np.linalg.matrix_power(W, k))) / n ** k


def symmetric_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A symmetric matrix with independent N(0, 1) entries on and above the diagonal."""
    Z = rng.standard_normal((n, n))
    return np.triu(Z) + np.triu(Z, 1).T


def random_symmetric(n: int, low: float = 0.0, high: float = 1.0, seed: int = 0) -> np.ndarray:
    """A symmetric matrix with independent uniform entries in [low, high] on and above the diagonal."""
    U = np.random.default_rng(seed).uniform(low, high, (n, n))
    return np.triu(U) + np.triu(U, 1).T


def sample_graphon(W, n: int, seed: int = 0, latent=None) -> tuple[np.ndarray, np.ndarray]:
    """(matrix W(U_i, U_j), U) for U_i iid uniform (exchangeable labels), or the given latent positions."""
    U = np.sort(np.random.default_rng(seed).uniform(size=n)) if latent is None else np.asarray(latent, float)
    return np.asarray(W(U[:, None], U[None, :]), float) * np.ones((n, n)), U


def check_matrix(W, box) -> np.ndarray:
    W = np.array(W, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"W must be a square matrix, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        i, j = np.argwhere(~np.isfinite(W))[0]
        raise ValueError(f"W is not finite: W[{i}, {j}] = {W[i, j]}")
    if not np.allclose(W, W.T, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(W - W.T)), W.shape)
        raise ValueError(f"W must be symmetric: W[{i}, {j}] = {W[i, j]} but W[{j}, {i}] = {W[j, i]}")
    lo, hi = box
    if W.min() < lo - 1e-12 or W.max() > hi + 1e-12:
        raise ValueError(f"W has entries outside the box [{lo}, {hi}]: min {W.min():.6g}, max {W.max():.6g}")
    return 0.5 * (W + W.T)


def gradient_descent(W0, objective: GraphonObjective, tau: float, t_end: float, box=(0.0, 1.0),
                     sigma: float = 0.0, seed: int = 0, record_every: int = 1, callback=None) -> dict:
    """Projected (noisy) gradient descent W <- P(W - tau DR(W) + sigma tau^(1/2) Z) up to t_end.

    Parameters
    ----------
    W0 : (n, n) symmetric array in the box.
    objective : GraphonObjective.
    tau, t_end : the step (graphon time per step) and the final time; steps = round(t_end / tau).
    box : (a, b), the projection interval.
    sigma : noise level (0: gradient descent).
    record_every : steps between entries of the returned history; callback(k, t, W) then too.

    Returns
    -------
    dict with W (n, n), t, history {t, edge_density, triangle_density, objective} (lists).
    """
    tau = checks.positive_number("tau", tau)
    t_end = checks.number("t_end", t_end, nonnegative=True)
    sigma = checks.number("sigma", sigma, nonnegative=True)
    lo, hi = (checks.number("box[0]", box[0]), checks.number("box[1]", box[1]))
    if not lo < hi:
        raise ValueError(f"box must be an interval a < b, got {box}")
    W = check_matrix(W0, (lo, hi))
    steps = int(round(t_end / tau))
    rng = np.random.default_rng(seed)
    hist = {"t": [], "edge_density": [], "triangle_density": [], "objective": []}

    def record(k):
        t = k * tau
        hist["t"].append(t)
        hist["edge_density"].append(edge_density(W))
        hist["triangle_density"].append(triangle_density(W))
        hist["objective"].append(objective.value(W))
        if callback is not None:
            callback(k, t, W)

    record(0)
    sq = math.sqrt(tau) * sigma
    for k in range(1, steps + 1):
        W = W - tau * objective.gradient(W)
        if sigma:
            W += sq * symmetric_normal(rng, W.shape[0])
        np.clip(W, lo, hi, out=W)
        if not np.all(np.isfinite(W)):
            raise FloatingPointError(f"graphon gradient descent blew up at step {k} (tau={tau}): reduce tau")
        if k % record_every == 0 or k == steps:
            record(k)
    return {"W": W, "t": steps * tau, "history": hist}


def degree_order(W: np.ndarray) -> np.ndarray:
    """Vertices sorted by degree (the canonical relabelling for comparing with a graphon)."""
    return np.argsort(W.sum(axis=1), kind="stable")


def bipartition(W: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(class A, class B) of a near-bipartite W: B = the neighbours (W > threshold) of the vertex of largest
    degree, A = the rest."""
    v = int(np.argmax(W.sum(axis=1)))
    B = np.flatnonzero(W[v] > threshold)
    A = np.setdiff1d(np.arange(W.shape[0]), B)
    return A, B


def chi2_independence(x, y, bins: int = 4) -> tuple[float, float]:
    """Pearson's chi-square test of independence of paired samples on a bins x bins table of quantile bins:
    (statistic, p-value) with (bins - 1)^2 degrees of freedom."""
    from math import lgamma

    x, y = np.asarray(x, float), np.asarray(y, float)
    qx = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    qy = np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1])
    ix, iy = np.searchsorted(qx, x, side="right"), np.searchsorted(qy, y, side="right")
    table = np.zeros((bins, bins))
    np.add.at(table, (ix, iy), 1.0)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    ok = expected > 0
    stat = float(np.sum((table[ok] - expected[ok]) ** 2 / expected[ok]))
    dof = (bins - 1) ** 2
    # upper tail of chi-square(dof): regularised upper incomplete gamma Q(dof/2, stat/2), by its series
    s, xh = dof / 2.0, stat / 2.0
    if xh <= 0:
        return stat, 1.0
    term = total = 1.0 / s
    a = s
    for _ in range(10000):
        a += 1
        term *= xh / a
        total += term
        if term < 1e-16 * total:
            break
    lower = math.exp(-xh + s * math.log(xh) - lgamma(s)) * total
    return stat, float(min(max(1.0 - lower, 0.0), 1.0))


def noisy_gd_replicas(W0, objective: GraphonObjective, tau: float, t_end: float, sigma: float, replicas: int,
                      box=(0.0, 1.0), seed: int = 0) -> np.ndarray:
    """`replicas` independent noisy gradient-descent runs from the same W0 at once (batched matrix products):
    (replicas, n, n). For statistics over runs of small matrices (propagation of chaos)."""
    tau, sigma = checks.positive_number("tau", tau), checks.number("sigma", sigma, nonnegative=True)
    replicas = checks.integer("replicas", replicas, 1)
    lo, hi = box
    W = np.repeat(check_matrix(W0, box)[None], replicas, axis=0)
    rng = np.random.default_rng(seed)
    sq = math.sqrt(tau) * sigma
    for _ in range(int(round(checks.number("t_end", t_end, nonnegative=True) / tau))):
        W = W - tau * objective.gradient(W)
        if sigma:
            Z = rng.standard_normal(W.shape)
            W += sq * (np.triu(Z) + np.swapaxes(np.triu(Z, 1), -1, -2))
        np.clip(W, lo, hi, out=W)
    return W
