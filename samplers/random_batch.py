"""The Random Batch Method (Jin, Li and Liu 2020) for interacting particles: O(n p) per step for any kernel.

The package's n-particle force is F_i = -(1/n) sum_j grad W(x_i - x_j) (fpjko.samplers.interacting
.interaction_force; grad W(0) = 0 for an even smooth W, so the term j = i is zero). At every step the n particles are
split at random into batches of about p, and each feels only its own batch B:

    F_i = -((n - 1) / n) (1 / (|B| - 1)) sum_{j in B, j != i} grad W(x_i - x_j),   i in B.

The batches: one uniformly random permutation of 0..n-1 per step, drawn from a stream every rank shares
(SeedSequence(seed, spawn_key=(2**31, TAG)), apart from the per-block noise streams and from Streams.shared), cut
into nb = min(ceil(n / p), floor(n / 2)) consecutive batches whose sizes differ by at most one. So every batch has
at least two particles (n >= 2; a single particle feels no force) and at most p, except for p = 2 and an odd n,
where one batch has three (ceil(n / 2) batches would leave one particle alone).

Unbiased for every n: the batch sizes are fixed and the permutation is uniform. Condition on the place of particle i
in the permutation: it fixes i's batch and that batch's size s, and the other n - 1 particles fill the other n - 1
places in uniformly random order, so i's s - 1 partners are a uniformly random (s - 1)-subset of the other n - 1
particles and each j != i is among them with probability (s - 1) / (n - 1). Then

    E[F_i | |B| = s] = -((n - 1) / n) (1 / (s - 1)) ((s - 1) / (n - 1)) sum_{j != i} grad W(x_i - x_j)
                     = -(1 / n) sum_{j != i} grad W(x_i - x_j),

the same for every place of i, so E[F_i] is the n-particle force exactly (Jin, Li and Liu's 1 / (p - 1) alone is
unbiased for -(1/(n-1)) sum_{j != i}; the factor (n - 1) / n turns it into this package's 1/n). With p >= n (one
batch) F_i is that force itself, up to round-off. Over many steps each particle meets the others at random, so the
dynamics approach the mean-field limit as dt -> 0 for fixed p; the bias is a function of dt and p (measured against
the limit PDE in benchmarks/kernels.py and demos/aggregation.py).

Batches cross the blocks and ranks of fpjko.samplers.streams: every rank draws the permutation and gathers all
positions (O(n) work and memory per rank, as the direct sum's gather) and computes the force on its own particles
only, O(n_local p). A particle's arithmetic does not depend on who computes it (the particle in place a of a batch
meets those in places a + 1, a + 2, ... cyclically, the sum in that order), so the forces are bitwise the same on any
number of ranks, also with a rank that holds no particles.
Input is checked on every rank together: a wrong count of local particles or a particle that is not finite raises
the same ValueError on every rank (the verdict travels with the allgather of the positions: no extra collective).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import allgather_checked, collectively, same_everywhere
from fpjko.samplers.streams import Streams

TAG = 0x5242                     # spawn-key tag of the permutation stream (apart from the noise streams)


def batch_sizes(n: int, p: int) -> tuple[int, int, int]:
    """The batches of n particles for batch size p: (nb, r, small).

    nb = min(ceil(n / p), floor(n / 2)) batches (one for n < 4); the first r have small + 1 particles, the other
    nb - r have small, in the order of the permutation.

    Parameters
    ----------
    n : int
        The number of particles (>= 1).
    p : int
        The batch size (>= 2).

    Returns
    -------
    nb, r, small : int
    """
    nb = max(1, min(-(-n // p), n // 2))
    small = n // nb
    return nb, n - nb * small, small


class RandomBatch:
    """The permutation stream and the batch size of a Random Batch force.

    Parameters
    ----------
    streams : Streams
        The particles' split over ranks (n, seed, the communicator).
    grad_W : callable
        grad W(z), z of shape (..., d) -> (..., d), elementwise in the leading axes.
    p : int
        The batch size (>= 2).
    """

    def __init__(self, streams: Streams, grad_W: Callable, p: int):
        self.streams, self.grad_W = streams, grad_W
        self.p = checks.integer("batch size p", p, 2)
        self._gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(streams.seed,
                                                                               spawn_key=(2**31, TAG))))

    def permutation(self) -> np.ndarray:
        """The next permutation of 0..n-1 from the shared stream (the same on every rank; force draws one per call).

        Returns
        -------
        numpy.ndarray of int, shape (n,)
            The batches are its consecutive runs of the sizes given by batch_sizes(n, p).
        """
        return self._gen.permutation(self.streams.n)

    def _gather(self, x: np.ndarray) -> np.ndarray:
        """All positions (n, d) on every rank, or the first rank's objection raised on every rank."""
        st = self.streams
        problem = None
        if x.ndim == 2 and x.shape[0] != st.n_local:
            problem = f"RandomBatch.force: expected this rank's {st.n_local} particles, got {x.shape[0]}"
        elif x.ndim != 2 and not (x.size == 0 and st.n_local == 0):       # a rank without particles may pass (0,)
            problem = (f"RandomBatch.force: expected this rank's {st.n_local} particles as an (n_local, d) array, "
                       f"got shape {x.shape}")
        elif x.ndim == 2:
            if not np.isfinite(x).all():
                i = int(np.argmax(~np.isfinite(x).all(axis=1)))
                problem = f"RandomBatch.force: particle {st.lo + i} is not finite: x={x[i].tolist()}"
        parts = [q for q in allgather_checked(st.comm, x, problem) if len(q)]
        dims = sorted({q.shape[1] for q in parts})
        if len(dims) > 1:                          # every rank sees the same parts: the same verdict everywhere
            raise ValueError(f"RandomBatch.force: the particles' dimension differs across ranks: {dims}")
        return np.ascontiguousarray(parts[0]) if len(parts) == 1 else np.concatenate(parts, axis=0)

    def force(self, x: np.ndarray) -> np.ndarray:
        """The random batch force on this rank's particles (collective: draws one permutation of all n).

        Parameters
        ----------
        x : numpy.ndarray, shape (n_local, d)

        Returns
        -------
        numpy.ndarray, shape (n_local, d)

        Raises
        ------
        ValueError
            On every rank, if a rank passed a wrong number of particles or a particle that is not finite (named by
            its global index and position).
        """
        st = self.streams
        if not getattr(self, "_agreed", False):    # the batch size and the kernel, compared once across ranks
            same_everywhere(st.comm, "RandomBatch", {"p": self.p, "grad_W": self.grad_W})
            self._agreed = True
        x = np.asarray(x, float)
        allx = self._gather(x)
        perm = self.permutation()                  # drawn on every rank, also one without particles
        # the user's grad_W runs on each rank's own batches: a failure on one rank is every rank's
        return collectively(st.comm, self._batch_forces, allx, perm)

    def _batch_forces(self, allx: np.ndarray, perm: np.ndarray) -> np.ndarray:
        st = self.streams
        n, d = st.n, allx.shape[1]
        out = np.zeros((st.n_local, d))
        if n < 2 or st.n_local == 0:
            return out
        lo, hi = st.lo, st.hi
        rows, out_rows = _rows(allx), _rows(out)
        nb, r, small = batch_sizes(n, self.p)
        start = 0
        for size, count in ((small + 1, r), (small, nb - r)):
            if count == 0:
                continue
            idx = perm[start:start + size * count].reshape(count, size)          # the batches, in permutation order
            start += size * count
            coef = -(n - 1) / (n * (size - 1))
            if lo == 0 and hi == n:                # every particle here: whole batches, partners by slicing
                xs = rows[idx].view(float).reshape(count, size, d)
                acc, z = np.zeros_like(xs), np.empty_like(xs)
                for k in range(1, size):           # particle a of a batch meets a + k (cyclic), k = 1, 2, ... in turn
                    np.subtract(xs[:, :size - k], xs[:, k:], out=z[:, :size - k])
                    np.subtract(xs[:, size - k:], xs[:, :k], out=z[:, size - k:])
                    acc += np.asarray(self.grad_W(z), float)
                out_rows[idx.ravel()] = _rows((coef * acc).reshape(-1, d))
                continue
            flat = idx.ravel()
            places = np.flatnonzero((flat >= lo) & (flat < hi))                    # this rank's places in the batches
            if not len(places):
                continue
            slot = places % size
            mine, base = flat[places], places - slot
            xi = rows[mine].view(float).reshape(-1, d)
            acc = np.zeros_like(xi)
            for k in range(1, size):               # the same partners in the same order, so the same bits
                xj = rows[flat[base + (slot + k) % size]].view(float).reshape(-1, d)
                acc += np.asarray(self.grad_W(xi - xj), float)
            out_rows[mine - lo] = _rows(coef * acc)
        return out


def _rows(a: np.ndarray) -> np.ndarray:
    """A view of the C-contiguous (m, d) float array a as m opaque rows (fast gathers and scatters of whole rows)."""
    return a.view(np.dtype((np.void, a.itemsize * a.shape[1]))).reshape(a.shape[0])
