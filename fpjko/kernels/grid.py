"""Kernel sums sum_q W(x - y_q) m_q in O(n + G log G) on a uniform grid: deposit, FFT convolution, interpolation.

A `GridConvolution` covers a box [lower, upper] with a uniform grid of spacing about h (plus the stencil's extra
nodes outside the box), samples W at every grid difference once and keeps its spectrum; `apply` then deposits the
masses on the grid (fpjko.kernels.transfer, order 2 or 4), convolves by zero-padded FFTs (a linear, not periodic,
convolution: the padded length is at least 2 nodes - 1 per axis) and interpolates the field at the targets.

Error: the deposit-convolve-interpolate chain interpolates W(x - y) in both variables, so for a smooth W it is
O(h^order) (order 4 by default; measured in tests/test_kernels.py).

Kernels singular at 0 but integrable (log|z|, |z|^-s with s < d): W(0) is not finite, and the grid value at offset 0
is replaced by a corrected weight:
- a power law W = A |z|^-s + B + o(1) (s estimated from W at 1e-8, 1e-6 and 1e-4 h and the same over both decades),
  in 1D or on a square 2D lattice: the corrected trapezoidal rule's weight -A h^-s Z(s) + B, Z the lattice's zeta
  function (2 zeta(s) on Z, 4 zeta(s/2) beta(s/2) on Z^2; Marin, Runborg and Tornberg 2014). Measured on grid
  sources of a Gaussian: third order for |z|^-1 in 2D, order 2.5 for |z|^-1/2 in 1D (d - s + 2);
- otherwise (log|z|, 3D, unequal spacings): the cell average of W, (1/|C|) int_C W over C = [-h/2, h/2]^d,
  integrated by a tensor Gauss rule on geometrically graded boxes around the singular corner of each orthant (50
  levels: exact to round-off for any integrable power or log singularity). Second order for log|z| in 2D (measured
  against the exact log potential of a Gaussian, also through the FE path), first order for |z|^-1 in 2D.
A kernel whose singularity is not integrable (W ~ |z|^-s with s >= d) is refused, as is one that is not finite at a
nonzero grid difference. The treatment corrects the kernel's sum over the grid; how well the grid values represent
the sources (the FE quadrature points) limits the total error like any quadrature of a singular integrand.

Memory: the spectrum (k components) and the FFT work arrays of the padded grid; a grid over `memory_limit` bytes
(default: half the machine's memory) is refused with its size before anything is allocated.
"""

from __future__ import annotations

import math
import os

import numpy as np

from fpjko.common.sizes import memory_limit as _memory_limit
from fpjko.kernels import transfer

try:                                     # scipy's FFT is faster and has next_fast_len; numpy's is the fallback
    from scipy import fft as _fft

    def _fast_len(n: int) -> int:
        return int(_fft.next_fast_len(n, real=True))
except ImportError:                      # pragma: no cover  (scipy is in the project's packages)
    _fft = np.fft

    def _fast_len(n: int) -> int:
        m = 1
        while m < n:
            m *= 2
        return m


def _gauss_box(W, lo, hi, npts: int = 8):
    """int W over the box [lo, hi] (arrays of shape (B, d): B boxes) by a tensor Gauss-Legendre rule, shape (B,)."""
    t, w = np.polynomial.legendre.leggauss(npts)
    d = lo.shape[1]
    grids = np.meshgrid(*([t] * d), indexing="ij")
    T = np.stack([g.ravel() for g in grids], axis=1)                        # (P, d) in [-1, 1]^d
    Wt = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0).ravel()   # (P,)
    mid, half = (hi + lo) / 2, (hi - lo) / 2                                # (B, d)
    z = mid[:, None, :] + half[:, None, :] * T[None, :, :]
    vals = np.asarray(W(z), float)
    if vals.ndim == 3:                                                        # a vector kernel (B, P, k)
        return np.einsum("bpk,p->bk", vals, Wt) * np.prod(half, axis=1)[:, None]
    return vals @ Wt * np.prod(half, axis=1)


def singular_cell_average(W, h, levels: int = 50):
    """(1/|C|) int_C W over C = [-h/2, h/2]^d for W singular (integrably) at 0.

    Each orthant of C is a box with the singularity at a corner; it is the union of the shells between the boxes
    scaled by 2^-j and 2^-(j+1), j < levels, each shell 2^d - 1 boxes integrated by an 8-point Gauss rule per axis.

    Parameters
    ----------
    W : callable
        W(z), z of shape (..., d) -> (...) or (..., k).
    h : array_like, shape (d,)
        The cell's sides.
    levels : int
        Shells per orthant (the box left at the corner, of side 2^-levels h / 2, is dropped).

    Returns
    -------
    float or numpy.ndarray, shape (k,)
    """
    h = np.asarray(h, float)
    d = len(h)
    lo, hi = [], []
    corners = [c for c in np.ndindex(*(2,) * d) if any(c)]
    for sign in np.ndindex(*(2,) * d):
        a = np.where(np.array(sign) == 1, 1.0, -1.0) * h / 2                   # the orthant's far corner
        for j in range(levels):
            s = a * 2.0 ** -(j + 1)
            for c in corners:
                p, q = np.array(c) * s, (np.array(c) + 1) * s
                lo.append(np.minimum(p, q))
                hi.append(np.maximum(p, q))
    tot = _gauss_box(W, np.array(lo), np.array(hi)).sum(axis=0)
    return tot / np.prod(h)


def singularity_exponent(W, d: int, scale: float) -> float:
    """s in W(z) ~ |z|^-s near 0, from W at 1e-6 and 1e-8 scale along (1, ..., 1) (about 0 for log|z|).

    Parameters
    ----------
    W : callable
    d : int
    scale : float
        A length (the grid spacing).

    Returns
    -------
    float
        nan if W is not finite there.
    """
    e = np.ones(d) / math.sqrt(d)
    r1, r2 = 1e-6 * scale, 1e-8 * scale
    v = np.asarray(W(np.stack([r1 * e, r2 * e])), float).reshape(2, -1)
    a, b = np.max(np.abs(v[0])), np.max(np.abs(v[1]))
    if not (np.isfinite(a) and np.isfinite(b)) or a == 0.0:
        return float("nan")
    return float(math.log(max(b, 1e-300) / a) / math.log(r1 / r2))


class SingularKernelError(ValueError):
    """A kernel whose singularity at 0 is not integrable in the grid's dimension (the grid cannot convolve it)."""


class GridConvolution:
    """The grid, the kernel's spectrum and the transfer order for kernel sums over a box.

    Parameters
    ----------
    W : callable
        W(z), z of shape (..., d) -> (...) (a scalar kernel) or (..., k) (k components, e.g. grad W).
    lower, upper : array_like, shape (d,)
        The box holding every source and target.
    h : float or array_like, shape (d,)
        The wanted spacing (rounded down so that whole cells fill the box).
    order : {2, 4}
        The transfer weights: cloud-in-cell or cubic Lagrange (fpjko.kernels.transfer).
    memory_limit : float, optional
        Bytes the grid may take (default: half the machine's memory).

    Attributes
    ----------
    shape : tuple of int
        Nodes per axis.
    padded : tuple of int
        The FFT lengths.
    singular : bool
        Whether W(0) was replaced by its cell average.
    nbytes : int
        The estimated memory of the spectrum and the FFT work arrays.
    """

    def __init__(self, W, lower, upper, h, order: int = 4, memory_limit: float | None = None):
        self.lower = np.atleast_1d(np.asarray(lower, float))
        self.upper = np.atleast_1d(np.asarray(upper, float))
        d = self.d = len(self.lower)
        if self.upper.shape != (d,) or not np.all(self.upper > self.lower) or not 1 <= d <= 3:
            raise ValueError(f"the box must be lower < upper of one length d <= 3, got {lower!r}, {upper!r}")
        if order not in (2, 4):
            raise ValueError(f"order must be 2 (cloud-in-cell) or 4 (cubic), got {order!r}")
        hh = np.broadcast_to(np.asarray(h, float), (d,))
        if not np.all(np.isfinite(hh)) or np.any(hh <= 0):
            raise ValueError(f"the grid spacing h must be positive and finite, got {h!r}")
        self.order = int(order)
        cells = np.maximum(1, np.ceil((self.upper - self.lower) / hh - 1e-9)).astype(np.int64)
        self.h = (self.upper - self.lower) / cells
        ext = self.order // 2 - 1
        self.origin = self.lower - ext * self.h
        self.shape = tuple(int(c + 1 + 2 * ext) for c in cells)
        self.padded = tuple(_fast_len(2 * n - 1) for n in self.shape)
        # size check before any grid is allocated: the kernel samples (k components), the spectrum, FFT work
        z = np.zeros((1,) * d + (d,))
        probe = np.asarray(W(z + 0.25 * self.h), float)
        k = int(np.prod(probe.shape[d:])) if probe.ndim > d else 1
        P = math.prod(self.padded)
        half = math.prod(self.padded[:-1]) * (self.padded[-1] // 2 + 1)
        self.nbytes = int(8 * P * (d + 2) + 16 * half * (k + 1))
        limit = _memory_limit() if memory_limit is None else float(memory_limit)
        if limit and self.nbytes > limit:
            raise ValueError(f"the convolution grid {' x '.join(map(str, self.shape))} (FFT "
                             f"{' x '.join(map(str, self.padded))}) needs {self.nbytes / 2**30:.2f} GiB, over the "
                             f"limit of {limit / 2**30:.2f} GiB: take a larger spacing h (now "
                             f"{np.round(self.h, 6).tolist()}) or raise memory_limit")
        self.k = k
        self._vector = probe.ndim > d
        self._spectrum = self._kernel_spectrum(W)

    def _kernel_spectrum(self, W):
        d, axes = self.d, tuple(range(self.d))
        offs = []
        for n, L in zip(self.shape, self.padded):
            a = np.arange(L)
            a = np.where(a >= L - (n - 1), a - L, a)       # FFT order: offsets 0 .. n-1, then -(n-1) .. -1
            a[(a >= n)] = 0                                 # unused entries (their value is never read)
            offs.append(a)
        used = np.ones(self.padded, bool)
        for ax, (n, L) in enumerate(zip(self.shape, self.padded)):
            a = np.arange(L)
            u = (a < n) | (a >= L - (n - 1))
            used &= u.reshape([-1 if i == ax else 1 for i in range(d)])
        z = np.stack(np.meshgrid(*[o * hh for o, hh in zip(offs, self.h)], indexing="ij"), axis=-1)
        with np.errstate(all="ignore"):
            vals = np.asarray(W(z), float).reshape(self.padded + (self.k,))
        del z
        zero = (0,) * d
        self.singular = not np.all(np.isfinite(vals[zero]))
        if self.singular:
            s = singularity_exponent(W, d, float(np.min(self.h)))
            if not (s < d - 1e-3):
                raise SingularKernelError(f"the kernel is singular at 0 like |z|^-{s:.3g}, which is not integrable in "
                                          f"{d}D (an integrable singularity needs |z|^-s with s < {d}, or log|z|)")
            vals[zero] = self._zeta_weight(W, s) if self._power_law(W, s) else singular_cell_average(W, self.h)
        vals[~used] = 0.0
        bad = used & ~np.all(np.isfinite(vals), axis=-1)
        if np.any(bad):
            i = np.argwhere(bad)[0]
            zi = [float(offs[a][i[a]] * self.h[a]) for a in range(d)]
            raise ValueError(f"the kernel is not finite at z = {np.round(zi, 6).tolist()} (away from 0): W must be "
                             "finite everywhere but at 0")
        return [_fft.rfftn(vals[..., c], self.padded, axes=axes) for c in range(self.k)]

    def _power_law(self, W, s: float) -> bool:
        """W ~ A |z|^-s near 0 with the same s over two decades (a log|z| kernel drifts), on a square lattice in
        1D or 2D, where the lattice's zeta function is known in closed form."""
        if self.d > 2 or s < 0.05 or self.k != 1 or (self.d == 2 and abs(self.h[0] - self.h[1]) > 1e-12 * self.h[0]):
            return False
        try:                                    # the zeta functions (mpmath comes with sympy); else the cell average
            import mpmath  # noqa: F401
        except ImportError:                     # pragma: no cover
            return False
        e = np.ones(self.d) / math.sqrt(self.d)
        hm = float(np.min(self.h))
        v = np.abs(np.asarray(W(np.stack([1e-4 * hm * e, 1e-6 * hm * e])), float).reshape(2))
        s2 = math.log(v[1] / v[0]) / math.log(100.0) if np.all(v > 0) and np.all(np.isfinite(v)) else float("nan")
        return abs(s2 - s) < 1e-3

    def _zeta_weight(self, W, s: float) -> float:
        """The corrected trapezoidal rule's weight at 0 for W = A |z|^-s + B + o(1): the punctured lattice sum
        misses A h^-s Z(s), Z the lattice's zeta function (analytically continued: 2 zeta(s) on Z, 4 zeta(s/2)
        beta(s/2) on Z^2), so the weight at 0 is -A h^-s Z(s) + B (Marin, Runborg and Tornberg 2014: the error of
        the punctured rule drops from O(h^(d-s)) to O(h^(d - s + 2)) for a smooth density)."""
        import mpmath

        h = float(self.h[0])
        e = np.ones(self.d) / math.sqrt(self.d)
        r = 1e-6 * h
        A = float(np.asarray(W((r * e)[None, :]), float).ravel()[0]) * r ** s
        rb = 1e-3 * h
        B = float(np.asarray(W((rb * e)[None, :]), float).ravel()[0]) - A * rb ** -s
        Z = (2 * mpmath.zeta(s) if self.d == 1 else
             4 * mpmath.zeta(s / 2) * mpmath.dirichlet(s / 2, [0, 1, 0, -1]))
        return -A * h ** -s * float(Z) + B

    def deposit(self, x: np.ndarray, m: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Spread masses at points on the grid (see fpjko.kernels.transfer.deposit).

        Parameters
        ----------
        x : numpy.ndarray, shape (m, d)
        m : numpy.ndarray, shape (m,) or scalar
        out : numpy.ndarray, shape (prod(shape),), optional

        Returns
        -------
        numpy.ndarray, shape (prod(shape),)
        """
        return transfer.deposit(x, m, self.origin, self.h, self.shape, self.order, out)

    def convolve(self, q: np.ndarray) -> np.ndarray:
        """F_i = sum_j K(x_i - x_j) q_j at every node (K = W, with the cell average at 0 for a singular W).

        Parameters
        ----------
        q : numpy.ndarray, shape (prod(shape),)

        Returns
        -------
        numpy.ndarray, shape (prod(shape), k)
        """
        axes = tuple(range(self.d))
        Q = _fft.rfftn(q.reshape(self.shape), self.padded, axes=axes)
        sl = tuple(slice(0, n) for n in self.shape)
        out = np.empty((int(np.prod(self.shape)), self.k))
        for c, S in enumerate(self._spectrum):
            out[:, c] = _fft.irfftn(Q * S, self.padded, axes=axes)[sl].ravel()
        return out

    def interpolate(self, F: np.ndarray, x: np.ndarray) -> np.ndarray:
        """A grid field at points (see fpjko.kernels.transfer.interpolate).

        Parameters
        ----------
        F : numpy.ndarray, shape (prod(shape), k)
        x : numpy.ndarray, shape (m, d)

        Returns
        -------
        numpy.ndarray, shape (m, k)
        """
        return transfer.interpolate(F, x, self.origin, self.h, self.shape, self.order)

    def outside(self, x: np.ndarray) -> int:
        """The index of the first point outside the box, or -1.

        Parameters
        ----------
        x : numpy.ndarray, shape (m, d)

        Returns
        -------
        int
        """
        tol = 1e-12 * (self.upper - self.lower)
        bad = np.any((x < self.lower - tol) | (x > self.upper + tol), axis=1)
        return int(np.flatnonzero(bad)[0]) if np.any(bad) else -1

    def apply(self, targets: np.ndarray, sources: np.ndarray, masses: np.ndarray, comm=None) -> np.ndarray:
        """sum over every rank's sources of W(target - source) mass, at this rank's targets.

        Collective when comm is given: the deposits are summed over ranks (MPI Allreduce, so a different rank count
        changes the result by round-off only), every rank convolves the whole grid.

        Parameters
        ----------
        targets : numpy.ndarray, shape (n, d)
        sources : numpy.ndarray, shape (m, d)
        masses : numpy.ndarray, shape (m,)
        comm : mpi4py.MPI.Comm, optional

        Returns
        -------
        numpy.ndarray, shape (n,) for a scalar kernel, (n, k) for k components
        """
        q = self.deposit(sources, masses)
        if comm is not None and comm.size > 1:
            from mpi4py import MPI
            comm.Allreduce(MPI.IN_PLACE, q, op=MPI.SUM)
        out = self.interpolate(self.convolve(q), targets)
        return out if self._vector else out[:, 0]
