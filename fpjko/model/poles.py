"""Poles of a formula inside a box: the zeros of the sub-expressions that make it infinite (the bases of negative
powers, the arguments of log), found between the points of a grid as well as on them.

A formula such as V = 1/(x - 0.123456)^2 is finite at every point of a checking grid that misses 0.123456, yet
its particles are flung out of the domain and its PDE is not the one written. `find_pole` samples each such
sub-expression f on a fine grid and reports a zero: a sign change between neighbouring points, or a local
minimum of |f| (refined by Nelder-Mead from the grid's smallest value) below 1e-9 of its scale.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

POLE_GRID = {1: 4097, 2: 257, 3: 41}       # points per direction
TOUCH = 1e-9                                # |f| below TOUCH max|f| counts as a zero


def singular_parts(expr) -> list:
    """The sub-expressions of `expr` whose zeros make it infinite: bases of negative powers, arguments of log.

    Parameters
    ----------
    expr : sympy.Expr

    Returns
    -------
    list of sympy.Expr
        Those that depend on a symbol, each once.
    """
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow) and node.exp.is_number and bool(node.exp < 0):
            out.append(node.base)
        elif isinstance(node, sp.log):
            out.append(node.args[0])
    return [e for e in dict.fromkeys(out) if e.free_symbols]


def find_pole(expr, syms, lower, upper, numpy_fn):
    """A point of the box [lower, upper] where `expr` has a pole, or None.

    Parameters
    ----------
    expr : sympy.Expr
    syms : list of sympy.Symbol
        The coordinates x0 ... x(d-1).
    lower, upper : numpy.ndarray, shape (d,)
    numpy_fn : callable
        numpy_fn(expr, syms) -> f(*columns) -> values (fpjko.model.forms.numpy_fn).

    Returns
    -------
    (numpy.ndarray of shape (d,), sympy.Expr) or None
        The point and the sub-expression that vanishes there.
    """
    from scipy.optimize import minimize

    d = len(syms)
    m = POLE_GRID[d]
    axes = [np.linspace(lower[i], upper[i], m) for i in range(d)]
    pts = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
    for part in singular_parts(expr):
        fn = numpy_fn(part, syms)

        def f(P, fn=fn):
            return np.broadcast_to(fn(*P.T), (len(P),))
        with np.errstate(all="ignore"):
            v = np.asarray(f(pts))
        if np.iscomplexobj(v) or not np.all(np.isfinite(v)):
            continue                                  # not finite on the grid: the grid check names it
        scale = float(np.max(np.abs(v)))
        if scale == 0:
            continue
        grid = v.reshape((m,) * d)
        for ax in range(d):
            g = np.moveaxis(grid, ax, 0)              # the other axes keep their order
            cross = np.argwhere(g[:-1] * g[1:] < 0)
            if len(cross):
                idx = list(cross[0][1:])
                idx.insert(ax, cross[0][0])
                lo = np.array([axes[k][idx[k]] for k in range(d)])
                hi = lo.copy()
                hi[ax] = axes[ax][idx[ax] + 1]
                return 0.5 * (lo + hi), part
        i = int(np.argmin(np.abs(v)))
        with np.errstate(all="ignore"):
            res = minimize(lambda p: float(np.abs(f(np.clip(p, lower, upper)[None, :])).ravel()[0]), pts[i],
                           method="Nelder-Mead", options={"xatol": 1e-12 * float(np.max(upper - lower)),
                                                          "fatol": 1e-14 * scale, "maxiter": 400 * d})
        x = np.clip(res.x, lower, upper)
        if float(np.abs(f(x[None, :])).ravel()[0]) <= TOUCH * scale:
            return x, part
    return None
