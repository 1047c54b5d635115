"""What a model's formulas are: pure functions of its sympy forms (no numpy forms, no solvers).

    interaction(W, ...)      W(z) as sympy, checked even, and its kind: 'quadratic' (k|z|^2/2: the O(n) force and
                             exact moments), 'polynomial' (exact moments on the FE side) or 'kernel'
    diffusion(D, ...)        D(x) as a symmetric matrix, positive definite where it can be checked; constant or not
    isotropic_scale(D)       c for a constant D = c I (compared as numbers: 2.0 and 2 are the same), else None
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from fpjko.model.expressions import field

MAX_POLYNOMIAL_DEGREE = 64      # a polynomial W of higher degree is treated as a kernel
MAX_EXPANDED_TERMS = 500        # W is expanded only where the expansion is bounded ((1 + z**2)**3000 would take 28 s)


def _even_problem(expr, zs) -> str | None:
    """W(z) = W(-z) decided at 16 fixed probe points (sympy's simplify can take seconds on a large W), in mpmath at
    30 digits (no overflow, every function), to 1e-12 relative to max(1, |W(z)|, |W(-z)|)."""
    import math

    import mpmath

    from fpjko.model.expressions import excerpt

    d = len(zs)
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-2, 2, (8, d)), rng.uniform(-0.25, 0.25, (8, d))])
    f = sp.lambdify(zs, expr, "mpmath")

    def value(p):
        try:
            return mpmath.mpmathify(f(*(mpmath.mpf(float(c)) for c in p)))
        except (ArithmeticError, ValueError, TypeError):
            return mpmath.nan

    def gap(a, c):
        if a == c or mpmath.isnan(a) and mpmath.isnan(c):
            return 0.0
        if not (mpmath.isfinite(a) and mpmath.isfinite(c)):
            return math.inf
        return 0.0 if abs(a - c) <= 1e-12 * max(1, abs(a), abs(c)) else float(abs(a - c))

    with mpmath.workdps(30):
        vals = [(p, value(p), value(-p)) for p in pts]
        worst, p, a, c = max(((gap(a, c), p, a, c) for p, a, c in vals), key=lambda v: v[0])
    if worst > 0:
        num = (lambda v: float(mpmath.re(v)) if mpmath.im(v) == 0 else complex(v))
        return (f"W must be even, W(z) = W(-z): W({np.round(p, 4).tolist()}) = {num(a):.6g} but "
                f"W(-z) = {num(c):.6g} (W = {excerpt(str(expr), 200)})")
    return None


def interaction(W, zs, zsym: dict):
    """W(z) as sympy, checked even, with its kind.

    Parameters
    ----------
    W : None, number, (d, d) array, formula or sympy expression
        A number k means k|z|^2/2, a matrix K means z^T K z / 2.
    zs : tuple of sympy.Symbol
        z0, ..., z_{d-1}.
    zsym : dict of str to sympy.Symbol
        The names a formula may use.

    Returns
    -------
    expr : sympy.Expr or None
    kind : {None, 'quadratic', 'polynomial', 'kernel'}
    k : float or None
        k of W = k|z|^2/2.
    """
    if W is None:
        return None, None, None
    d = len(zs)
    z = sp.Matrix(zs)
    if isinstance(W, (int, float, np.number)) and not isinstance(W, (bool, np.bool_)) or np.ndim(W) == 2:
        try:
            K = np.atleast_2d(np.asarray(W, float)) * (np.eye(d) if np.ndim(W) == 0 else 1.0)
        except (TypeError, ValueError):
            raise ValueError(f"W as a matrix must be a finite ({d}, {d}) matrix of numbers, got {W!r}") from None
        if K.shape != (d, d) or not np.all(np.isfinite(K)):
            raise ValueError(f"W as a matrix must be a finite ({d}, {d}) matrix, got {W!r}")
        expr = sp.expand((z.T * sp.Matrix(0.5 * (K + K.T)) * z)[0, 0] / 2)
        expanded = True
    else:
        from fpjko.model.expressions import expanded_size

        expr = field(W, zsym, "W")
        if not expr.free_symbols:
            raise ValueError(f"W = {expr} is a constant: no force (a number k given as a number, not as a formula, "
                             "means k|z|^2/2)")
        # a polynomial is expanded to read its moments (where the expansion is bounded); any other kernel is kept as
        # written: expanding exp(-(z^2 - 4)^2) gives exp(-16) exp(8 z^2) exp(-z^4), which is inf * 0 for |z| > 9.4
        expanded = expr.is_polynomial(*zs) and expanded_size(expr, MAX_EXPANDED_TERMS) <= MAX_EXPANDED_TERMS
        if expanded:
            expr = sp.expand(expr)
    why = _even_problem(expr, zs)
    if why:
        raise ValueError(why)
    kind, k = "kernel", None
    if expanded and expr.is_polynomial(*zs):
        poly = sp.Poly(expr, *zs)
        if poly.total_degree() <= MAX_POLYNOMIAL_DEGREE:
            kind = "polynomial"
            terms = dict(poly.terms())
            sq = [tuple(2 if j == i else 0 for j in range(d)) for i in range(d)]
            c0 = terms.get(sq[0])
            if c0 is not None and set(terms) <= set(sq) | {(0,) * d} and all(terms.get(s) == c0 for s in sq):
                kind, k = "quadratic", 2 * float(c0)
    return expr, kind, k


def diffusion(D, d: int, xsym: dict, values=None):
    """D(x) as a symmetric sympy matrix, positive definite (checked where it can be).

    Parameters
    ----------
    D : None, number, (d, d) array or (d, d) formulas
        None: the identity; a number c: c I.
    d : int
    xsym : dict of str to sympy.Symbol
    values : callable, optional
        values(M) -> (points (m, d), D at them (m, d, d)): D on a grid of the domain, for an x-dependent D.

    Returns
    -------
    sympy.Matrix or None
    """
    if D is None:
        return None
    if isinstance(D, (int, float, np.number)) and not isinstance(D, (bool, np.bool_)):
        D = (float(D) * np.eye(d)).tolist()
    M = field(np.asarray(D, dtype=object).tolist() if not isinstance(D, str) else D, xsym, "D", (d, d))
    if not M.free_symbols:
        A = np.asarray(M.tolist(), float)
        if not np.allclose(A, A.T, rtol=1e-14, atol=0):
            raise ValueError(f"D must be symmetric, got D = {A.tolist()}")
        ev = np.linalg.eigvalsh(A)
        if ev.min() <= 0:
            raise ValueError(f"D must be positive definite: eigenvalue {ev.min():.4g} of D = {A.tolist()}")
        return M
    if any(sp.expand(M[i, j] - M[j, i]) != 0 for i in range(d) for j in range(i + 1, d)):
        raise ValueError(f"D must be symmetric, got D = {M.tolist()}")
    if values is not None:
        pts, Ds = values(M)
        ok = np.all(np.isfinite(Ds.reshape(len(Ds), -1)), axis=1)
        ev = np.full(len(Ds), -np.inf)
        ev[ok] = np.linalg.eigvalsh(Ds[ok])[:, 0]
        i = int(np.argmin(ev))
        if ev[i] <= 0:
            raise ValueError(f"D must be positive definite on the domain: at x = {np.round(pts[i], 6).tolist()} "
                             f"D = {np.round(Ds[i], 6).tolist()}" + (f" has eigenvalue {ev[i]:.4g}" if ok[i] else
                                                                      " is not finite"))
    return M


def isotropic_scale(M) -> float | None:
    """c for a constant D = c I (None: D = I), else None; compared as numbers, so 2.0 and 2 agree.

    Parameters
    ----------
    M : sympy.Matrix or None

    Returns
    -------
    float or None
    """
    if M is None or M.free_symbols:
        return None
    A = np.asarray(M.tolist(), float)
    return float(A[0, 0]) if np.array_equal(A, A[0, 0] * np.eye(len(A))) else None
