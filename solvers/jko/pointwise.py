"""Pointwise (numpy) steps of the ALG2 JKO solver: projection onto the Hamilton-Jacobi parabola and
the proximal map of the internal/potential energy. No PETSc here."""

from __future__ import annotations

import numpy as np


def project_parabola(a: np.ndarray, b: np.ndarray, iters: int = 60):
    """Euclidean projection of (a, b) (a: (n,), b: (n, d)) onto K = {a + |b|^2/2 <= 0}.

    Outside K the projection is (a - s, b / (1 + s)) with s >= 0 the root of
    a - s + |b|^2 / (2 (1 + s)^2) = 0 (decreasing in s), found by safeguarded Newton."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    nb2 = np.sum(b * b, axis=-1)
    out = a + 0.5 * nb2 > 0
    s = np.zeros_like(a)
    if out.any():
        ao, bo = a[out], nb2[out]
        lo, hi = np.zeros_like(ao), np.maximum(ao + 0.5 * bo, 0.0) + 1e-300   # g(lo) > 0, g(hi) <= 0
        x = 0.5 * (lo + hi)
        for _ in range(iters):
            g = ao - x + bo / (2 * (1 + x) ** 2)
            lo = np.where(g > 0, x, lo)
            hi = np.where(g > 0, hi, x)
            dg = -1 - bo / (1 + x) ** 3
            xn = x - g / dg
            xn = np.where((xn > lo) & (xn < hi), xn, 0.5 * (lo + hi))
            done = np.all(np.abs(xn - x) <= 1e-15 * (1 + x))
            x = xn
            if done:
                break
        s[out] = x
    return a - s, b / (1 + s)[:, None]


def prox_energy(c: np.ndarray, f: np.ndarray, rt: float, eps: float = 0.0, m: float | None = None,
                cm: float = 1.0, iters: int = 80) -> np.ndarray:
    """rho >= 0 solving  rt * g'(rho) + rho = c  pointwise, for g(rho) = f rho + eps (rho log rho - rho)
    + cm rho^m / (m - 1): the proximal map argmin rt g(rho) + (rho - c)^2 / 2.

    eps > 0 (entropy): Newton in log rho, safeguarded by bisection; eps = 0, m = 2: closed form;
    otherwise bisection in rho."""
    c, f = np.broadcast_arrays(np.asarray(c, float), np.asarray(f, float))
    if eps > 0:
        rhs = c - rt * f
        k = rt * eps
        extra = (lambda r: rt * cm * m / (m - 1) * r ** (m - 1)) if m else (lambda r: 0.0)
        lo = np.minimum(-1.0, (rhs - 1.0) / k) - 1.0
        hi = np.maximum(np.log(np.maximum(rhs, 1.0)), rhs / k) + 1.0
        hi = np.maximum(hi, 1.0)
        x = np.clip(np.log(np.maximum(rhs, 1e-300)), lo, hi)
        for _ in range(iters):
            r = np.exp(x)
            g = r + k * x + extra(r) - rhs
            lo = np.where(g < 0, x, lo)
            hi = np.where(g < 0, hi, x)
            dg = r + k + (rt * cm * m * r ** (m - 1) if m else 0.0)
            xn = x - g / dg
            xn = np.where((xn > lo) & (xn < hi), xn, 0.5 * (lo + hi))
            done = np.all(np.abs(xn - x) <= 1e-15 * (1 + np.abs(x)))
            x = xn
            if done:
                break
        return np.exp(x)
    if m is None:
        raise ValueError("an energy needs entropy (eps > 0) or a porous-medium term (m > 1)")
    if m == 2:
        return np.maximum(c - rt * f, 0.0) / (1 + 2 * rt * cm)
    rhs = c - rt * f
    lo, hi = np.zeros_like(rhs), np.maximum(rhs, 0.0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        g = mid + rt * cm * m / (m - 1) * mid ** (m - 1) - rhs
        lo, hi = np.where(g < 0, mid, lo), np.where(g < 0, hi, mid)
    return np.where(rhs > 0, 0.5 * (lo + hi), 0.0)
