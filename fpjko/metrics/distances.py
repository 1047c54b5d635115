"""Wasserstein distances between weighted point clouds (numpy; POT optional for exact 2D OT).

An FE density enters as a weighted cloud (its quadrature points and rho * weights, see
fpjko.solvers.particles.empirical.density_as_measure), so the same functions compare particles with the PDE.
- wasserstein_1d: exact W_p between weighted discrete measures on the line (quantile functions).
- wasserstein_ot: exact W_p in any dimension by the network-simplex LP of POT (small clouds).
- sliced_wasserstein: Monte-Carlo average of 1D W_p^p over random directions (large clouds).
- gaussian_w2: closed-form W2 between Gaussians (Bures), a reference for tests.
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks


def _weights(x: np.ndarray, w, what: str) -> np.ndarray:
    n = len(x)
    if n == 0:
        raise ValueError(f"{what}: empty point cloud")
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=float).ravel()
    if w.shape != (n,):
        raise ValueError(f"{what}: {n} points but {w.size} weights")
    if not np.all(np.isfinite(w)) or w.min() < 0:
        i = int(np.argmin(np.where(np.isfinite(w), w, -np.inf)))
        raise ValueError(f"{what}: weights must be finite and >= 0, got w[{i}]={w[i]}")
    s = w.sum()
    if not s > 0:
        raise ValueError(f"{what}: weights sum to {s}")
    return w / s


def _points(x, what) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: points contain NaN or inf")
    return x


def _order(p) -> float:
    """The order p of W_p: a finite number >= 1 (W_p is a distance only for p >= 1)."""
    p = checks.number("p", p)
    if p < 1:
        raise ValueError(f"W_p needs p >= 1, got p={p!r}")
    return p


def _line(x, what) -> np.ndarray:
    x = _points(x, what)
    if x.ndim > 2 or (x.ndim == 2 and x.shape[1] != 1):
        raise ValueError(f"{what}: points on the line must have shape (n,) or (n, 1), got {x.shape}; "
                         "use sliced_wasserstein or wasserstein_ot in several dimensions")
    return x.ravel()


def _sorted_cdf(x: np.ndarray, w: np.ndarray):
    """Sorted atoms and their cumulative weights (the last set to exactly 1)."""
    ix = np.argsort(x, kind="stable")
    c = np.cumsum(w[ix])
    c[-1] = 1.0
    return x[ix], c


def wasserstein_1d(x, y, p: float = 1.0, wx=None, wy=None) -> float:
    """Exact W_p between sum_i wx_i delta_{x_i} and sum_j wy_j delta_{y_j} on the real line (quantile functions).

    Parameters
    ----------
    x : array_like, shape (n,) or (n, 1)
    y : array_like, shape (m,) or (m, 1)
    p : float
        The order, >= 1.
    wx : array_like, shape (n,), optional
        Non-negative weights of x (normalised; None: uniform).
    wy : array_like, shape (m,), optional
        Non-negative weights of y (normalised; None: uniform).

    Returns
    -------
    float
    """
    x, y, p = _line(x, "x"), _line(y, "y"), _order(p)
    wx, wy = _weights(x, wx, "x"), _weights(y, wy, "y")
    xs, cx = _sorted_cdf(x, wx)
    ys, cy = _sorted_cdf(y, wy)
    u = np.unique(np.concatenate([[0.0], cx, cy]))
    du, um = np.diff(u), 0.5 * (u[1:] + u[:-1])
    qx = xs[np.minimum(np.searchsorted(cx, um), len(xs) - 1)]
    qy = ys[np.minimum(np.searchsorted(cy, um), len(ys) - 1)]
    return float(np.sum(du * np.abs(qx - qy) ** p) ** (1.0 / p))


def wasserstein_ot(x, y, p: float = 2.0, wx=None, wy=None, max_points: int = 6000) -> float:
    """Exact W_p by linear programming (POT's emd2); O(n m) memory, so limited to max_points.

    Parameters
    ----------
    x : array_like, shape (n, d)
    y : array_like, shape (m, d)
    p : float
        The order, >= 1.
    wx : array_like, shape (n,), optional
        Non-negative weights of x (normalised; None: uniform).
    wy : array_like, shape (m,), optional
        Non-negative weights of y (normalised; None: uniform).
    max_points : int
        The largest n or m accepted.

    Returns
    -------
    float
    """
    try:
        import ot
    except ImportError as e:  # pragma: no cover
        raise ImportError("wasserstein_ot needs POT (python3-pot); use sliced_wasserstein instead") from e
    x, y, p = _points(x, "x"), _points(y, "y"), _order(p)
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: x is {x.shape[1]}D, y is {y.shape[1]}D")
    if max(len(x), len(y)) > max_points:
        raise ValueError(f"wasserstein_ot: {len(x)} x {len(y)} points exceed max_points={max_points}; "
                         "use sliced_wasserstein for large clouds")
    wx, wy = _weights(x, wx, "x"), _weights(y, wy, "y")
    M = ot.dist(x, y, metric="euclidean") ** p if p != 2 else ot.dist(x, y)
    return float(ot.emd2(wx, wy, M, numItermax=10**7) ** (1.0 / p))


def directions(d: int, n_projections: int, seed: int = 0) -> np.ndarray:
    """Uniform random unit vectors.

    Parameters
    ----------
    d : int
        The dimension.
    n_projections : int
    seed : int

    Returns
    -------
    numpy.ndarray, shape (n_projections, d)
    """
    th = np.random.default_rng(seed).standard_normal((n_projections, d))
    return th / np.linalg.norm(th, axis=1, keepdims=True)


def sliced_wasserstein(x, y, p: float = 2.0, wx=None, wy=None, n_projections: int = 200, seed: int = 0) -> float:
    """(E_theta W_p^p(theta#mu, theta#nu))^(1/p) over uniform directions theta, Monte Carlo.

    For a translation by v, SW_2 = |v| / sqrt(d).

    Parameters
    ----------
    x : array_like, shape (n, d)
    y : array_like, shape (m, d)
    p : float
        The order, >= 1.
    wx : array_like, shape (n,), optional
        Non-negative weights of x (normalised; None: uniform).
    wy : array_like, shape (m,), optional
        Non-negative weights of y (normalised; None: uniform).
    n_projections : int
        Directions averaged over.
    seed : int
        Seed of the directions.

    Returns
    -------
    float
    """
    x, y, p = _points(x, "x"), _points(y, "y"), _order(p)
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: x is {x.shape[1]}D, y is {y.shape[1]}D")
    n_projections = checks.integer("n_projections", n_projections, 1)
    acc = 0.0
    dirs = directions(x.shape[1], n_projections, seed)
    for th in dirs:
        acc += wasserstein_1d(x @ th, y @ th, p, wx, wy) ** p
    return float((acc / len(dirs)) ** (1.0 / p))


def _sqrtm_spd(C):
    w, V = np.linalg.eigh(C)
    return (V * np.sqrt(np.maximum(w, 0))) @ V.T


def gaussian_w2(m1, C1, m2, C2) -> float:
    """W2(N(m1, C1), N(m2, C2)) = sqrt(|m1-m2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)).

    Parameters
    ----------
    m1 : array_like, shape (d,)
    C1 : array_like, shape (d, d)
    m2 : array_like, shape (d,)
    C2 : array_like, shape (d, d)

    Returns
    -------
    float
    """
    m1, m2 = np.atleast_1d(np.asarray(m1, float)), np.atleast_1d(np.asarray(m2, float))
    C1, C2 = np.atleast_2d(np.asarray(C1, float)), np.atleast_2d(np.asarray(C2, float))
    d = len(m1)
    for name, m in (("m2", m2), ("C1", C1), ("C2", C2)):
        want = (d,) if name == "m2" else (d, d)
        if m.shape != want:
            raise ValueError(f"gaussian_w2: {name} has shape {m.shape}, expected {want} (m1 has {d} entries)")
    for name, m in (("m1", m1), ("m2", m2), ("C1", C1), ("C2", C2)):
        if not np.all(np.isfinite(m)):
            raise ValueError(f"gaussian_w2: {name} = {m.tolist()} is not finite")
    for name, C in (("C1", C1), ("C2", C2)):
        scale = max(float(np.abs(C).max()), 1e-300)
        if not np.allclose(C, C.T, rtol=0, atol=1e-12 * scale):
            raise ValueError(f"gaussian_w2: {name} = {C.tolist()} is not symmetric (a covariance is)")
        low = float(np.linalg.eigvalsh(C).min())
        if low < -1e-12 * scale:
            raise ValueError(f"gaussian_w2: {name} = {C.tolist()} is not positive semi-definite "
                             f"(eigenvalue {low:.4g})")
    r = _sqrtm_spd(C1)
    b = np.trace(C1 + C2 - 2 * _sqrtm_spd(r @ C2 @ r))
    return float(np.sqrt(np.sum((m1 - m2) ** 2) + max(b, 0.0)))


def wasserstein_1d_cdf(x, grid, cdf, p: float = 1.0, wx=None) -> float:
    """Exact W_p (p = 1 or 2) between a weighted sample on the line and a piecewise-uniform density.

    The density's CDF is the piecewise-linear interpolant of cdf on grid (an FE density's CDF sampled finely, see
    fpjko.solvers.particles.empirical.cdf_1d, is within O(h^2) of it).

    Parameters
    ----------
    x : array_like, shape (n,)
        The sample.
    grid : array_like, shape (k,)
        Strictly increasing, k >= 2.
    cdf : array_like, shape (k,)
        Nondecreasing from 0 to 1.
    p : {1, 2}
    wx : array_like, shape (n,), optional
        Non-negative weights of x (normalised; None: uniform).

    Returns
    -------
    float
    """
    if p not in (1, 2):
        raise ValueError(f"wasserstein_1d_cdf supports p = 1 or 2, got p={p}")
    x = _points(x, "x").ravel()
    wx = _weights(x, wx, "x")
    grid, cdf = np.asarray(grid, float).ravel(), np.asarray(cdf, float).ravel()
    if grid.shape != cdf.shape or len(grid) < 2:
        raise ValueError("grid and cdf must be 1D arrays of the same length >= 2")
    if np.any(np.diff(grid) <= 0) or np.any(np.diff(cdf) < 0):
        raise ValueError("grid must increase strictly and cdf must be nondecreasing")
    if abs(cdf[0]) > 1e-12 or abs(cdf[-1] - 1) > 1e-9:
        raise ValueError(f"cdf must run from 0 to 1, got {cdf[0]} .. {cdf[-1]}")
    cdf = cdf / cdf[-1]
    xs, cx = _sorted_cdf(x, wx)
    u = np.unique(np.concatenate([[0.0], cx, cdf]))
    u0, u1 = u[:-1], u[1:]
    um = 0.5 * (u0 + u1)
    c = xs[np.minimum(np.searchsorted(cx, um), len(xs) - 1)]          # sample quantile, constant
    k = np.clip(np.searchsorted(cdf, um) - 1, 0, len(grid) - 2)      # grid cell of the density quantile
    slope = (grid[k + 1] - grid[k]) / np.maximum(cdf[k + 1] - cdf[k], 1e-300)
    g0 = grid[k] + slope * (u0 - cdf[k]) - c
    g1 = grid[k] + slope * (u1 - cdf[k]) - c
    du = u1 - u0
    if p == 2:
        return float(np.sqrt(np.sum(du * (g0 * g0 + g0 * g1 + g1 * g1) / 3.0)))
    same = g0 * g1 >= 0
    tot = np.sum(du[same] * np.abs(g0[same] + g1[same]) / 2)
    a, b = np.abs(g0[~same]), np.abs(g1[~same])                        # linear through zero
    tot += np.sum(du[~same] * (a * a + b * b) / (2 * (a + b)))
    return float(tot)
