"""Interacting particles (McKean-Vlasov), split across MPI ranks by fpjko.samplers.streams.Streams.

dX_i = [-grad V(X_i) - (1/n) sum_j grad W(X_i - X_j)] dt + sqrt(2/beta D(X_i)) dW_i

As n -> infinity the empirical measure converges to the solution of
rho_t = div(rho (grad V + grad W * rho)) + beta^-1 sum_ij d_i d_j (D_ij rho).
Quadratic W(z) = k |z|^2 / 2 costs O(n) (the force is -k (X_i - mean)); a general W is summed in
fixed blocks of partners, O(n^2) work, O(chunk) memory. Either way the force on a particle does not
depend on the number of ranks (reductions in block order), so runs are rank-count independent.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fpjko.samplers.sde import euler_maruyama
from fpjko.samplers.streams import Streams


def direct_sum(targets: np.ndarray, allx: np.ndarray, grad_W: Callable, block: int, n: int,
               target_index: np.ndarray | None = None, chunk_bytes: int = 2**25) -> np.ndarray:
    """-(1/n) sum_j grad W(t_i - x_j) over every particle x_j, summed in partner blocks of fixed order (the same
    bits on any rank count), O(chunk_bytes) memory; a target's own pair (its global index in target_index) is
    left out, so a kernel singular at 0 (log|z|) needs no value there.

    Parameters
    ----------
    targets : numpy.ndarray, shape (m, d)
    allx : numpy.ndarray, shape (N, d)
        Every partner, in global order.
    grad_W : callable
        grad W(z), z of shape (k, b, d) -> (k, b, d).
    block : int
        Partners per block (the streams' block).
    n : int
        The normalisation 1/n.
    target_index : numpy.ndarray of int, shape (m,), optional
        The targets' indices in allx (left out of their own sums).
    chunk_bytes : int

    Returns
    -------
    numpy.ndarray, shape (m, d)
    """
    N, d = allx.shape
    rows = max(1, int(chunk_bytes // (8 * d * max(1, min(block, N)))))
    out = np.zeros((len(targets), d))
    for i0 in range(0, len(targets), rows):
        ti = targets[i0:i0 + rows, None, :]
        acc = np.zeros((ti.shape[0], d))
        own = None if target_index is None else target_index[i0:i0 + rows]
        for j0 in range(0, N, block):
            with np.errstate(divide="ignore", invalid="ignore"):
                g = np.asarray(grad_W(ti - allx[None, j0:j0 + block, :]), float)
            if own is not None:
                r = np.flatnonzero((own >= j0) & (own < j0 + block))
                if len(r):
                    g[r, own[r] - j0] = 0.0                # no self-interaction (grad W(0) = 0 for an even W)
            acc += g.sum(axis=1)
        out[i0:i0 + rows] = -acc / n
    return out


def interaction_force(x: np.ndarray, streams: Streams, grad_W: Callable | None = None,
                      quadratic: float | None = None, chunk_bytes: int = 2**25) -> np.ndarray:
    """The mean-field force -(1/n) sum_j grad W(x_i - x_j) on this rank's particles, summed over every rank's.

    Parameters
    ----------
    x : numpy.ndarray, shape (n_local, d)
        This rank's particles.
    streams : Streams
        The particles' split over ranks (n, the communicator, block order).
    grad_W : callable, optional
        grad W(z), z of shape (k, d) -> (k, d): the direct sum, in blocks of at most chunk_bytes; the pair (i, i)
        is left out.
    quadratic : float, optional
        k of W = k |z|^2 / 2: the force -k (x_i - mean), O(n).
    chunk_bytes : int
        Memory of one block of pair differences.

    Returns
    -------
    numpy.ndarray, shape (n_local, d)
    """
    x = np.asarray(x, dtype=float)
    if quadratic is not None:
        return -quadratic * (x - streams.mean(x))
    if grad_W is None:
        raise ValueError("give grad_W (vectorised over (..., d)) or quadratic=k")
    allx = streams.allgather(x)
    return direct_sum(x, allx, grad_W, streams.block, len(allx), streams.lo + np.arange(len(x)), chunk_bytes)


def mckean_vlasov(x0: np.ndarray, streams: Streams, beta: float, dt: float, steps: int,
                  grad_V: Callable | None = None, grad_W: Callable | None = None,
                  quadratic_W: float | None = None, diffusion=None, **kw):
    """Euler-Maruyama for dX_i = -grad V(X_i) dt - (1/n) sum_j grad W(X_i - X_j) dt + sqrt(2/beta D) dB_i.

    Every particle has its own Brownian motion (independent noise), the system whose empirical measure converges
    to the McKean-Vlasov equation.

    Parameters
    ----------
    x0 : numpy.ndarray, shape (streams.n_local, d)
        This rank's particles.
    streams : Streams
        The particles' random streams (and their split over ranks).
    beta : float
    dt : float
    steps : int
    grad_V : callable, optional
        grad V(x), x of shape (k, d) -> (k, d).
    grad_W : callable, optional
        grad W(z), z of shape (k, d) -> (k, d).
    quadratic_W : float, optional
        k of W = k |z|^2 / 2 (the O(n) force).
    diffusion : None, array_like (d, d) or callable
        D, as for euler_maruyama.
    **kw
        Passed to euler_maruyama (record_every, callback, ...).

    Returns
    -------
    numpy.ndarray, shape (n_local, d)
        The final particles (and the snapshots, shape (k, n_local, d), with record_every > 0).
    """
    def drift(x, t):
        b = interaction_force(x, streams, grad_W=grad_W, quadratic=quadratic_W) if (
            grad_W is not None or quadratic_W is not None) else np.zeros_like(x)
        return b - grad_V(x) if grad_V is not None else b
    return euler_maruyama(x0, drift, beta, dt, steps, streams, diffusion=diffusion, **kw)


def mean_reverting_variance(n: int, t: float, s0: float, dt: float | None = None) -> float:
    """Var X_i(t) for dX_i = -(X_i - mean) dt + dB_i, X_i(0) iid N(m0, s0^2) (per coordinate).

    Exact: s0^2/n + t/n + (1 - 1/n) [e^{-2t} s0^2 + (1 - e^{-2t})/2]. With dt, the exact variance of the
    Euler-Maruyama chain after t/dt steps (the mean is a random walk; deviations contract by 1-dt).

    Parameters
    ----------
    n : int
        Particles.
    t : float
    s0 : float
        The initial standard deviation.
    dt : float, optional
        The Euler-Maruyama step (None: the continuous-time process).

    Returns
    -------
    float
    """
    if dt is None:
        e = np.exp(-2.0 * t)
        return s0**2 / n + t / n + (1 - 1 / n) * (e * s0**2 + (1 - e) / 2)
    k = int(round(t / dt))
    q = (1 - dt) ** 2
    return s0**2 / n + t / n + (1 - 1 / n) * (q**k * s0**2 + dt * (1 - q**k) / (1 - q))
