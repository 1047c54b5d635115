"""Transfer between scattered points and a uniform grid: tensor-product Lagrange weights of order 2 or 4.

order 2 is cloud-in-cell (multilinear, 2^d nodes per point); order 4 is cubic Lagrange interpolation on the 4^d
nodes around the point's cell. `deposit` spreads point masses with these weights (the transpose of interpolation,
"anterpolation"); `interpolate` evaluates a grid field at points. A kernel sum approximated by deposit -> grid
convolution -> interpolate interpolates W(x - y) in x and in y, so its error is O(h^order) for a smooth W.

With numba (python3-numba) the loops are compiled; without it (or with FPJKO_NUMBA=0) numpy does the same sums
corner by corner (np.bincount, in chunks of points), in the same order of the points, so both give the same deposit up
to the order of additions within a node. Points are summed in their given order on either path.
"""

from __future__ import annotations

import math
import os

import numpy as np

try:                                             # optional: samplers and kernels run without it
    if os.environ.get("FPJKO_NUMBA", "1") == "0":
        raise ImportError("disabled by FPJKO_NUMBA=0")
    import numba
except ImportError:                              # pragma: no cover  (depends on the environment)
    numba = None

CHUNK = 1 << 18                                  # points per numpy chunk (memory O(CHUNK order^d))


def have_numba() -> bool:
    """Whether the compiled loops are in use.

    Returns
    -------
    bool
    """
    return numba is not None


def weights_1d(f: np.ndarray, order: int) -> np.ndarray:
    """The 1D Lagrange weights of a point at fraction f of its cell.

    Parameters
    ----------
    f : numpy.ndarray, shape (m,)
        Fractions in [0, 1].
    order : {2, 4}
        Linear (nodes i, i+1) or cubic (nodes i-1 ... i+2).

    Returns
    -------
    numpy.ndarray, shape (order, m)
    """
    if order == 2:
        return np.stack([1.0 - f, f])
    return np.stack([-f * (f - 1.0) * (f - 2.0) / 6.0, (f + 1.0) * (f - 1.0) * (f - 2.0) / 2.0,
                     -(f + 1.0) * f * (f - 2.0) / 2.0, (f + 1.0) * f * (f - 1.0) / 6.0])


def _cells(x, origin, h, shape, order):
    """The first stencil node per axis (m, d) and the fractions (m, d)."""
    t = (x - origin) / h
    lo = order // 2 - 1                           # stencil nodes i - lo ... i - lo + order - 1
    i = np.clip(np.floor(t).astype(np.int64), lo, np.asarray(shape) - order + lo)
    return i - lo, t - i


def _numpy_deposit(x, m, origin, h, shape, order, out, scale=0.0):
    d = x.shape[1]
    for c0 in range(0, len(x), CHUNK):
        xc, mc = x[c0:c0 + CHUNK], m[c0:c0 + CHUNK]
        base, f = _cells(xc, origin, h, shape, order)
        w = [weights_1d(f[:, k], order) for k in range(d)]
        for corner in np.ndindex(*(order,) * d):
            idx = np.ravel_multi_index(tuple(base[:, k] + corner[k] for k in range(d)), shape)
            wt = mc
            for k in range(d):
                wt = wt * w[k][corner[k]]
            if scale:
                np.add.at(out, idx, np.rint(wt * scale).astype(np.int64))
            else:
                out += np.bincount(idx, weights=wt, minlength=out.size)


def _numpy_interpolate(F, x, origin, h, shape, order):
    d = x.shape[1]
    res = np.zeros((len(x), F.shape[1]))
    for c0 in range(0, len(x), CHUNK):
        xc = x[c0:c0 + CHUNK]
        base, f = _cells(xc, origin, h, shape, order)
        w = [weights_1d(f[:, k], order) for k in range(d)]
        acc = res[c0:c0 + CHUNK]
        for corner in np.ndindex(*(order,) * d):
            idx = np.ravel_multi_index(tuple(base[:, k] + corner[k] for k in range(d)), shape)
            acc += math.prod(w[k][corner[k]] for k in range(d))[:, None] * F[idx]
    return res


if numba is not None:
    _jit = numba.njit(cache=True, fastmath=False, nogil=True)

    @_jit
    def _w(t, order, lo, hi, w):
        i = int(math.floor(t))
        if i < lo:
            i = lo
        if i > hi:
            i = hi
        f = t - i
        if order == 2:
            w[0] = 1.0 - f
            w[1] = f
            return i
        w[0] = -f * (f - 1.0) * (f - 2.0) / 6.0
        w[1] = (f + 1.0) * (f - 1.0) * (f - 2.0) / 2.0
        w[2] = -(f + 1.0) * f * (f - 2.0) / 2.0
        w[3] = (f + 1.0) * f * (f - 1.0) / 6.0
        return i - 1

    @_jit
    def _nb_transfer(x, m, F, origin, h, shape, order, out, deposit, outi, scale):
        """deposit: out (N, 1) += m_p w (or outi (N,) += rint(m_p w scale), exact); else out (n, k) = sum w F."""
        n, d = x.shape
        lo = order // 2 - 1
        w = np.empty((3, 4))
        base = np.zeros(3, np.int64)
        strides = np.ones(3, np.int64)
        for k in range(d - 2, -1, -1):
            strides[k] = strides[k + 1] * shape[k + 1]
        nk = F.shape[1]
        fixed = scale != 0.0
        for p in range(n):
            for k in range(d):
                base[k] = _w((x[p, k] - origin[k]) / h[k], order, lo, shape[k] - order + lo, w[k])
            for a in range(order):
                for b in range(order if d > 1 else 1):
                    for e in range(order if d > 2 else 1):
                        node = (base[0] + a) * strides[0]
                        wt = w[0, a]
                        if d > 1:
                            node += (base[1] + b) * strides[1]
                            wt = wt * w[1, b]
                        if d > 2:
                            node += base[2] + e
                            wt = wt * w[2, e]
                        if deposit:
                            v = m[p] * w[0, a]
                            if d > 1:
                                v = v * w[1, b]
                            if d > 2:
                                v = v * w[2, e]
                            if fixed:
                                outi[node] += np.int64(np.rint(v * scale))
                            else:
                                out[node, 0] += v
                        else:
                            for c in range(nk):
                                out[p, c] += wt * F[node, c]


    @_jit
    def _nb_deposit2(x, m, origin, h, shape, order, out, outi, scale):
        """The 2D deposit (the hot case), loops specialised: out (N,) += m w, or outi (N,) += rint(m w scale)."""
        lo = order // 2 - 1
        n0, n1 = shape[0], shape[1]
        w0, w1 = np.empty(4), np.empty(4)
        for p in range(x.shape[0]):
            b0 = _w((x[p, 0] - origin[0]) / h[0], order, lo, n0 - order + lo, w0)
            b1 = _w((x[p, 1] - origin[1]) / h[1], order, lo, n1 - order + lo, w1)
            for a in range(order):
                row = (b0 + a) * n1 + b1
                va = m[p] * w0[a]
                if scale != 0.0:
                    for b in range(order):
                        outi[row + b] += np.int64(np.rint(va * w1[b] * scale))
                else:
                    for b in range(order):
                        out[row + b] += va * w1[b]

    @_jit
    def _nb_interpolate2(F, x, origin, h, shape, order, out):
        """The 2D interpolation, loops specialised: out (n, k) = sum w F[node]."""
        lo = order // 2 - 1
        n0, n1 = shape[0], shape[1]
        nk = F.shape[1]
        w0, w1 = np.empty(4), np.empty(4)
        for p in range(x.shape[0]):
            b0 = _w((x[p, 0] - origin[0]) / h[0], order, lo, n0 - order + lo, w0)
            b1 = _w((x[p, 1] - origin[1]) / h[1], order, lo, n1 - order + lo, w1)
            for a in range(order):
                row = (b0 + a) * n1 + b1
                for b in range(order):
                    wt = w0[a] * w1[b]
                    for c in range(nk):
                        out[p, c] += wt * F[row + b, c]


if numba is not None:
    @_jit
    def _nb_bounds(x, lo, hi):
        for p in range(x.shape[0]):
            for k in range(x.shape[1]):
                v = x[p, k]
                if v < lo[k] or not v == v:        # NaN counts as below
                    lo[k] = v if v == v else -np.inf
                if v > hi[k]:
                    hi[k] = v


def bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest coordinate per axis in one pass (NaN gives -inf), for a box check of many points.

    Parameters
    ----------
    x : numpy.ndarray, shape (m, d), m >= 1

    Returns
    -------
    lo, hi : numpy.ndarray, shape (d,)
    """
    x = np.ascontiguousarray(x, dtype=float)
    if numba is None:
        lo = np.where(np.any(np.isnan(x), axis=0), -np.inf, np.min(x, axis=0))
        return lo, np.max(x, axis=0)
    lo, hi = np.full(x.shape[1], np.inf), np.full(x.shape[1], -np.inf)
    _nb_bounds(x, lo, hi)
    return lo, hi


def _args(x, origin, h, shape):
    x = np.ascontiguousarray(x, dtype=float)
    return (x, np.ascontiguousarray(origin, dtype=float), np.ascontiguousarray(h, dtype=float),
            np.asarray(shape, dtype=np.int64))


def deposit(x: np.ndarray, m: np.ndarray, origin, h, shape, order: int = 2, out: np.ndarray | None = None) -> np.ndarray:
    """Spread point masses on the grid nodes origin + i h by the order's weights (added to `out`).

    Parameters
    ----------
    x : numpy.ndarray, shape (m, d)
        Points inside the grid's stencil range.
    m : numpy.ndarray, shape (m,)
        Their masses.
    origin : array_like, shape (d,)
        The grid's first node.
    h : array_like, shape (d,)
        The spacing.
    shape : tuple of int, length d
        Nodes per axis.
    order : {2, 4}
        Cloud-in-cell or cubic Lagrange.
    out : numpy.ndarray, shape (prod(shape),), optional
        Accumulated into (default a new zero array).

    Returns
    -------
    numpy.ndarray, shape (prod(shape),)
    """
    size = int(np.prod(shape))
    if out is None:
        out = np.zeros(size)
    if not len(x):
        return out
    x, origin, h, sh = _args(x, origin, h, shape)
    m = np.ascontiguousarray(np.broadcast_to(np.asarray(m, float), (len(x),)))
    if numba is not None and x.shape[1] == 2:
        _nb_deposit2(x, m, origin, h, sh, int(order), out, np.zeros(1, np.int64), 0.0)
    elif numba is not None:
        _nb_transfer(x, m, np.zeros((1, 1)), origin, h, sh, int(order), out.reshape(size, 1), True,
                     np.zeros(1, np.int64), 0.0)
    else:
        _numpy_deposit(x, m, origin, h, tuple(shape), int(order), out)
    return out


def deposit_exact(x: np.ndarray, m: np.ndarray, origin, h, shape, order: int = 2, scale: float = 2.0**52,
                  out: np.ndarray | None = None) -> np.ndarray:
    """The deposit in fixed point: each contribution m w rounded to an integer multiple of 1/scale (int64).

    Integer sums do not depend on their order, so deposits of any split of the points, reduced in any order (an MPI
    Allreduce over any number of ranks), give the same bits. With scale = 2^52 / total mass every contribution is
    exact to 2^-53 of the total mass (double precision's round-off) and no sum can overflow.

    Parameters
    ----------
    x : numpy.ndarray, shape (m, d)
    m : numpy.ndarray, shape (m,)
    origin, h : array_like, shape (d,)
    shape : tuple of int
    order : {2, 4}
    scale : float
        The fixed point's unit is 1 / scale.
    out : numpy.ndarray of int64, shape (prod(shape),), optional

    Returns
    -------
    numpy.ndarray of int64, shape (prod(shape),)
    """
    size = int(np.prod(shape))
    if out is None:
        out = np.zeros(size, np.int64)
    if not len(x):
        return out
    x, origin, h, sh = _args(x, origin, h, shape)
    m = np.ascontiguousarray(np.broadcast_to(np.asarray(m, float), (len(x),)))
    if numba is not None and x.shape[1] == 2:
        _nb_deposit2(x, m, origin, h, sh, int(order), np.zeros(1), out, float(scale))
    elif numba is not None:
        _nb_transfer(x, m, np.zeros((1, 1)), origin, h, sh, int(order), np.zeros((1, 1)), True, out, float(scale))
    else:
        _numpy_deposit(x, m, origin, h, tuple(shape), int(order), out, float(scale))
    return out


def interpolate(F: np.ndarray, x: np.ndarray, origin, h, shape, order: int = 2) -> np.ndarray:
    """A grid field (k components) at points, by the order's weights.

    Parameters
    ----------
    F : numpy.ndarray, shape (prod(shape), k)
    x : numpy.ndarray, shape (m, d)
    origin, h : array_like, shape (d,)
    shape : tuple of int
    order : {2, 4}

    Returns
    -------
    numpy.ndarray, shape (m, k)
    """
    F = np.ascontiguousarray(F, dtype=float)
    if not len(x):
        return np.zeros((0, F.shape[1]))
    x, origin, h, sh = _args(x, origin, h, shape)
    if numba is not None:
        out = np.zeros((len(x), F.shape[1]))
        if x.shape[1] == 2:
            _nb_interpolate2(F, x, origin, h, sh, int(order), out)
        else:
            _nb_transfer(x, np.zeros(1), F, origin, h, sh, int(order), out, False, np.zeros(1, np.int64), 0.0)
        return out
    return _numpy_interpolate(F, x, origin, h, tuple(shape), int(order))
