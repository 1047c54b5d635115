"""Reference computations of the local entropy and its beta -> infinity limit (numpy only).

Conventions as in fpjko.solvers.hamilton_jacobi: for a loss f, scale gamma and inverse temperature beta,

    f_gamma(x) = -beta^-1 log int exp(-beta f(y) - beta |x - y|^2 / (2 gamma)) dy,
    grad f_gamma(x) = (x - <y>_x) / gamma,  <y>_x the mean of rho_x(y) ~ exp(-beta (f(y) + |x - y|^2 / (2 gamma))),

and the Hopf–Lax (Moreau) envelope u(x, t) = min_y f(y) + |x - y|^2 / (2 t), the solution of u_t + |grad u|^2 / 2 = 0.

f is a numpy callable on points y of shape (d, N) returning (N,) (the same callables the FE solvers interpolate).
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks


def _gauss_grid(lower, upper, panels: int, order: int):
    """Composite Gauss–Legendre nodes and weights per axis."""
    g, w = np.polynomial.legendre.leggauss(order)
    axes = []
    for a, b in zip(lower, upper):
        edges = np.linspace(a, b, panels + 1)
        half = 0.5 * np.diff(edges)
        mid = 0.5 * (edges[1:] + edges[:-1])
        axes.append(((mid[:, None] + half[:, None] * g[None, :]).ravel(), (half[:, None] * w[None, :]).ravel()))
    return axes


def _local_entropy_on(f, x: np.ndarray, gamma: float, beta: float, axes, chunk: int):
    d = len(axes)
    y = np.stack([m.ravel() for m in np.meshgrid(*[a[0] for a in axes], indexing="ij")])      # (d, M)
    logw = sum(np.log(w.ravel()) for w in np.meshgrid(*[a[1] for a in axes], indexing="ij"))
    base = -beta * np.asarray(f(y), dtype=float) + logw                      # (M,)
    vals, grads = np.empty(len(x)), np.empty((len(x), d))
    for s in range(0, len(x), chunk):
        xs = x[s: s + chunk]                                                  # (c, d)
        sq = ((xs[:, :, None] - y[None, :, :]) ** 2).sum(axis=1)             # (c, M)
        z = base[None, :] - beta * sq / (2.0 * gamma)
        top = z.max(axis=1, keepdims=True)
        p = np.exp(z - top)
        mass = p.sum(axis=1)
        vals[s: s + chunk] = -(top[:, 0] + np.log(mass)) / beta
        mean = (p @ y.T) / mass[:, None]                                      # <y>_x
        grads[s: s + chunk] = (xs - mean) / gamma
    return vals, grads


def local_entropy_quadrature(f, x, gamma: float, beta: float, lower, upper, panels: int = 64, order: int = 8,
                             rtol: float = 1e-12, max_panels: int = 1 << 14, chunk: int = 256):
    """f_gamma and grad f_gamma at points x (N, d) by Gauss–Legendre quadrature over the box [lower, upper].

    The sum is done in log-sum-exp form, so beta up to 1e3 and beyond is safe. In 1D the number of panels is
    doubled until f_gamma changes by less than rtol (1 + |f_gamma|) at every point (adaptive in the panel
    count); in 2D the tensor rule with `panels` per axis is used as given. Returns (values (N,), gradients (N, d)).
    """
    gamma = checks.positive_number("gamma", gamma)
    beta = checks.positive_number("beta", beta)
    lower, upper = np.atleast_1d(np.asarray(lower, float)), np.atleast_1d(np.asarray(upper, float))
    x = np.asarray(x, dtype=float).reshape(len(x), -1) if np.ndim(x) > 1 else np.asarray(x, float)[:, None]
    if x.shape[1] != len(lower):
        raise ValueError(f"points have dimension {x.shape[1]}, the box {len(lower)}")
    vals, grads = _local_entropy_on(f, x, gamma, beta, _gauss_grid(lower, upper, panels, order), chunk)
    if len(lower) > 1:
        return vals, grads
    while panels < max_panels:
        panels *= 2
        v2, g2 = _local_entropy_on(f, x, gamma, beta, _gauss_grid(lower, upper, panels, order), chunk)
        done = np.all(np.abs(v2 - vals) <= rtol * (1.0 + np.abs(v2)))
        vals, grads = v2, g2
        if done:
            return vals, grads
    raise RuntimeError(f"local entropy quadrature did not reach rtol={rtol:g} with {panels} panels")


def hopf_lax(f, x, t: float, lower, upper, h: float, chunk_entries: int = 2 ** 24):
    """u(x, t) = min_y f(y) + |x - y|^2 / (2 t) over the grid of spacing <= h on [lower, upper] (vectorised,
    chunked over x). The grid minimum is within O(h^2) of the true one where the minimiser is inside the box.
    x: (N, d) or (N,); returns (values (N,), minimisers (N, d))."""
    t = checks.positive_number("t", t)
    h = checks.positive_number("h", h)
    lower, upper = np.atleast_1d(np.asarray(lower, float)), np.atleast_1d(np.asarray(upper, float))
    x = np.asarray(x, float)
    x = x[:, None] if x.ndim == 1 else x
    axes = [np.linspace(a, b, int(np.ceil((b - a) / h)) + 1) for a, b in zip(lower, upper)]
    y = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")])     # (d, M)
    fy = np.asarray(f(y), dtype=float)
    vals, arg = np.empty(len(x)), np.empty((len(x), len(lower)))
    step = max(1, chunk_entries // y.shape[1])
    for s in range(0, len(x), step):
        xs = x[s: s + step]
        cost = fy[None, :] + ((xs[:, :, None] - y[None, :, :]) ** 2).sum(axis=1) / (2.0 * t)
        k = np.argmin(cost, axis=1)
        vals[s: s + step] = cost[np.arange(len(xs)), k]
        arg[s: s + step] = y[:, k].T
    return vals, arg
