"""Seeded random streams and reductions for particles split across MPI ranks (numpy; mpi4py optional).

Particles 0..n-1 are cut into fixed blocks of `block` consecutive particles; block b owns its own
PCG64 stream, seeded by SeedSequence(seed, spawn_key=(b,)). A rank holds whole blocks, so every
particle sees the same random numbers whatever the number of ranks. Reductions (sums, means,
moments) are done per block and then added in block order on every rank, so they are bitwise equal
for any rank count too; trajectories of interacting particles are therefore rank-count independent.
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import allgather_checked, same_everywhere

try:  # optional
    from mpi4py import MPI
except ImportError:  # pragma: no cover - exercised only without mpi4py
    MPI = None


def _world():
    return MPI.COMM_WORLD if MPI is not None else None


def default_comm(comm=None):
    """comm, else COMM_WORLD (None without mpi4py: serial)."""
    return _world() if comm is None else comm


class Streams:
    """Random streams for the particles this rank owns.

    Draw methods take the per-particle shape and return arrays of shape (n_local, *shape); the particles are
    split over ranks in blocks, each block with its own stream, so the draws are bitwise the same on any rank
    count.

    Parameters
    ----------
    n : int
        Total number of particles.
    seed : int
    comm : mpi4py.MPI.Comm, optional
        Default COMM_WORLD when mpi4py is present, else serial.
    block : int
        Particles per stream.
    """

    def __init__(self, n: int, seed: int, comm=None, block: int = 16384):
        self.comm = _world() if comm is None else comm
        same_everywhere(self.comm, "Streams", {"n": n, "seed": seed, "block": block})
        self.n = checks.integer("number of particles n", n, 1)
        self.seed = checks.integer("seed", seed, 0)
        self.block = checks.integer("block", block, 1)
        size = self.comm.size if self.comm is not None else 1
        rank = self.comm.rank if self.comm is not None else 0
        nb = -(-self.n // self.block)
        self.nblocks = nb
        b0, b1 = rank * nb // size, (rank + 1) * nb // size
        self.blocks = range(b0, b1)
        self.lo, self.hi = min(b0 * self.block, self.n), min(b1 * self.block, self.n)
        self.n_local = self.hi - self.lo
        self._sizes = [min((b + 1) * self.block, self.n) - b * self.block for b in self.blocks]
        self._gens = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(b,))))
                      for b in self.blocks]
        # one stream every rank shares (e.g. the data sample all neurons see in a step)
        self.shared = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(2**31,))))

    # --- draws -------------------------------------------------------------------------------
    def _draw(self, fn, shape) -> np.ndarray:
        shape = tuple(np.atleast_1d(shape)) if shape != () else ()
        parts = [fn(g, (m, *shape)) for g, m in zip(self._gens, self._sizes)]
        if not parts:
            return np.empty((0, *shape))
        return np.concatenate(parts, axis=0)

    def standard_normal(self, shape=()) -> np.ndarray:
        """Standard normal draws for this rank's particles.

        Parameters
        ----------
        shape : tuple of int
            The per-particle shape.

        Returns
        -------
        numpy.ndarray, shape (n_local, *shape)
        """
        return self._draw(lambda g, s: g.standard_normal(s), shape)

    def random(self, shape=()) -> np.ndarray:
        """Uniform draws on [0, 1) for this rank's particles.

        Parameters
        ----------
        shape : tuple of int
            The per-particle shape.

        Returns
        -------
        numpy.ndarray, shape (n_local, *shape)
        """
        return self._draw(lambda g, s: g.random(s), shape)

    def integers(self, high: int, shape=()) -> np.ndarray:
        """Uniform integer draws in [0, high) for this rank's particles.

        Parameters
        ----------
        high : int
        shape : tuple of int
            The per-particle shape.

        Returns
        -------
        numpy.ndarray of int, shape (n_local, *shape)
        """
        return self._draw(lambda g, s: g.integers(0, high, size=s), shape)

    def sample(self, fn) -> np.ndarray:
        """Initial positions, one call of fn per block on that block's stream, concatenated.

        Parameters
        ----------
        fn : callable
            fn(generator, m) -> (m, d).

        Returns
        -------
        numpy.ndarray, shape (n_local, d)
        """
        parts = [np.asarray(fn(g, m), dtype=float).reshape(m, -1) for g, m in zip(self._gens, self._sizes)]
        if not parts:           # a rank without blocks: (0, d), d from a draw of zero particles
            empty = np.asarray(fn(np.random.default_rng(0), 0), dtype=float)
            return empty.reshape(0, *(empty.shape[1:] or (1,)))
        return np.concatenate(parts, axis=0)

    # --- deterministic reductions ------------------------------------------------------------
    def block_sums(self, values: np.ndarray, problem: str | None = None) -> np.ndarray:
        """Per-block sums of values for all blocks, on every rank.

        A wrong number of rows (or a caller's `problem`) raises on every rank; the verdict travels with the sums, so
        checking costs no extra collective.

        Parameters
        ----------
        values : numpy.ndarray, shape (n_local, ...)
        problem : str, optional
            This rank's objection (raised on every rank).

        Returns
        -------
        numpy.ndarray, shape (nblocks, ...)
        """
        values = np.asarray(values, dtype=float)
        rows = values.shape[0] if values.ndim else None
        if problem is None and rows != self.n_local:
            problem = f"expected {self.n_local} local rows (this rank's particles), got an array of shape {values.shape}"
        local = None
        if problem is None:
            offs = np.cumsum([0, *self._sizes])
            local = np.array([values[offs[i]:offs[i + 1]].sum(axis=0) for i in range(len(self._sizes))])
            local = local.reshape(len(self._sizes), *values.shape[1:])
        parts = allgather_checked(self.comm, local, problem)
        return parts[0] if len(parts) == 1 else np.concatenate([p for p in parts if len(p)], axis=0)

    def sum(self, values: np.ndarray, problem: str | None = None) -> np.ndarray:
        """Global sum over particles, the same bits for any rank count.

        Parameters
        ----------
        values : numpy.ndarray, shape (n_local, ...)
        problem : str, optional
            This rank's objection (raised on every rank).

        Returns
        -------
        numpy.ndarray, shape (...)
        """
        s = self.block_sums(values, problem)
        out = np.zeros(s.shape[1:])
        for row in s:                   # fixed order: block 0, 1, ...
            out = out + row
        return out

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Global mean over particles, the same bits for any rank count.

        Parameters
        ----------
        values : numpy.ndarray, shape (n_local, ...)

        Returns
        -------
        numpy.ndarray, shape (...)
        """
        return self.sum(values) / self.n

    def moments(self, x: np.ndarray):
        """Global mean and covariance (1/(n-1) normalisation) of the particles.

        Parameters
        ----------
        x : numpy.ndarray, shape (n_local, d)

        Returns
        -------
        mean : numpy.ndarray, shape (d,)
        cov : numpy.ndarray, shape (d, d)
        """
        x = np.asarray(x, dtype=float)
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        problem = (None if x.ndim == 2 and len(x) == self.n_local else
                   f"moments need this rank's particles as ({self.n_local}, d), got shape {x.shape}")
        m = self.sum(x, problem) / self.n
        dx = x - m
        c = self.sum(dx[:, :, None] * dx[:, None, :]) / max(self.n - 1, 1)
        return m, c

    def allgather(self, x: np.ndarray) -> np.ndarray:
        """All particles in global order on every rank.

        Parameters
        ----------
        x : numpy.ndarray, shape (n_local, ...)

        Returns
        -------
        numpy.ndarray, shape (n, ...)
        """
        x = np.asarray(x)
        if self.comm is None or self.comm.size == 1:
            return x
        return np.concatenate([p for p in self.comm.allgather(x) if len(p)], axis=0)
