"""The Random Batch Method (Jin, Li and Liu 2020) for interacting particles: O(n p) per step for any kernel.

At every step the particles are split at random into batches of about p, and each feels only its own batch:

    F_i = -(1 / (|B| - 1)) sum_{j in B, j != i} grad W(x_i - x_j),   i in B.

The force is unbiased for the n-particle force, and over many steps each particle meets the others at random, so
the dynamics approach the mean-field limit as dt -> 0 for fixed p (the bias is a function of dt and p, measured
against the limit PDE in benchmarks/kernels.py and demos/aggregation.py).

Batches are drawn inside the fixed blocks of fpjko.samplers.streams (each block has its own permutation stream,
distinct from its noise stream), so a block never needs particles from another rank: the method is local, its
trajectories are bitwise the same on any number of ranks, and memory is O(n / ranks). A block of m particles is cut
into ceil(m / p) batches whose sizes differ by at most one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import agree
from fpjko.samplers.streams import Streams

TAG = 0x5242                     # spawn-key tag of the permutation streams (apart from the noise streams)


class RandomBatch:
    """The permutation streams and the batch size of a Random Batch force.

    Parameters
    ----------
    streams : Streams
        The particles' split into blocks and over ranks.
    grad_W : callable
        grad W(z), z of shape (..., d) -> (..., d).
    p : int
        The batch size (>= 2).
    """

    def __init__(self, streams: Streams, grad_W: Callable, p: int):
        self.streams, self.grad_W = streams, grad_W
        self.p = checks.integer("batch size p", p, 2)
        self._gens = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(streams.seed, spawn_key=(b, TAG))))
                      for b in streams.blocks]

    def _batches(self, xb: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        m, d = xb.shape
        out = np.zeros_like(xb)
        if m < 2:
            return out
        perm = gen.permutation(m)
        nb = -(-m // self.p)
        small, big = m // nb, m // nb + 1          # nb batches: (nb - r) of size small, r of size big
        r = m - nb * small
        start = 0
        for size, count in ((big, r), (small, nb - r)):
            if count == 0 or size < 2:
                start += size * count
                continue
            idx = perm[start:start + size * count].reshape(count, size)
            xs = xb[idx]                                                   # (count, size, d)
            z = xs[:, :, None, :] - xs[:, None, :, :]                      # (count, size, size, d)
            g = np.asarray(self.grad_W(z), float)
            g[:, np.arange(size), np.arange(size)] = 0.0                   # no self-interaction
            out[idx] = -g.sum(axis=2) / (size - 1)
            start += size * count
        return out

    def force(self, x: np.ndarray) -> np.ndarray:
        """The random batch force on this rank's particles (draws one permutation per block).

        Parameters
        ----------
        x : numpy.ndarray, shape (n_local, d)

        Returns
        -------
        numpy.ndarray, shape (n_local, d)
        """
        x = np.asarray(x, float)
        problem = None if x.shape[0] == self.streams.n_local else (
            f"RandomBatch.force: expected this rank's {self.streams.n_local} particles, got {x.shape[0]}")
        agree(self.streams.comm, problem)          # a wrong count on one rank ends every rank, none waits
        offs = np.cumsum([0, *self.streams._sizes])
        out = np.zeros_like(x)
        for b, gen in enumerate(self._gens):
            out[offs[b]:offs[b + 1]] = self._batches(x[offs[b]:offs[b + 1]], gen)
        return out
