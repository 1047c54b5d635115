"""Particle-mesh interaction forces: -(1/n) sum_j grad W(x_i - x_j) in O(n + G log G) for any smooth kernel.

The direct sum (fpjko.samplers.interacting.interaction_force) costs O(n^2): 49 s per step at n = 1e4 for a
Gaussian W in 2D. Here the particles are deposited on a uniform grid of the box [lower, upper] by cloud-in-cell
(multilinear) weights (or cubic ones, order=4; fpjko.kernels, compiled by numba when it is installed), the field F(y) = -sum_k q_k grad W(y - y_k) is the linear convolution of the deposit with
grad W sampled on the grid's differences (zero-padded FFTs, the kernel's spectrum computed once per grid), and F is
interpolated back to the particles with the same weights. For a smooth W the force error is O(h^2) in the grid
spacing h (measured in tests/test_particle_mesh.py).

Rank-count independence: the deposit is in fixed point (each contribution rounded to a multiple of 2^-52 of the
total mass, int64; fpjko.kernels.transfer.deposit_exact), so its sum over the particles and over the ranks (one
MPI Allreduce) is exact in any order and the force is bitwise the same on any number of ranks. Memory: O(n / ranks)
for the particles and one grid (G values) per rank.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import allgather_checked, collectively, same_everywhere
from fpjko.kernels import GridConvolution, SingularKernelError
from fpjko.kernels.transfer import bounds, deposit_exact
from fpjko.samplers.streams import Streams


SCALE = 2.0 ** 52       # the fixed point of the deposit: total mass 1 is 2^52


class ParticleMesh:
    """The grid, its transfer weights and the spectrum of grad W on it (a fpjko.kernels.GridConvolution).

    Parameters
    ----------
    grad_W : callable
        grad W(z), z of shape (..., d) -> (..., d) (W even, so grad W odd). Finite away from 0; a singularity
        at 0 that is integrable (grad log|z| in 2D) gets the cell average at the zero offset, which is 0 for an odd
        grad W.
    lower, upper : array_like, shape (d,)
        The box the particles stay in.
    cells : int or sequence of int
        Grid cells per direction (default 256 in 1D/2D, 64 in 3D).
    order : {2, 4}
        Cloud-in-cell (default) or cubic Lagrange weights.
    memory_limit : float, optional
        Bytes the grid may take (default half the machine's memory); a larger grid is refused before allocation.
    """

    def __init__(self, grad_W: Callable, lower, upper, cells=None, order: int = 2, memory_limit: float | None = None):
        self.lower = np.atleast_1d(np.asarray(lower, float))
        self.upper = np.atleast_1d(np.asarray(upper, float))
        d = self.d = len(self.lower)
        if self.upper.shape != (d,) or not np.all(self.upper > self.lower) or d > 3:
            raise ValueError(f"the box must be lower < upper of one length d <= 3, got {lower!r}, {upper!r}")
        cells = ({1: 256, 2: 256, 3: 64}[d] if cells is None else cells)
        self.cells = np.array([checks.integer("cells", c, 2) for c in np.broadcast_to(cells, (d,))])
        try:
            with np.errstate(all="ignore"):
                self.grid = GridConvolution(grad_W, self.lower, self.upper, (self.upper - self.lower) / self.cells,
                                            order=order, memory_limit=memory_limit)
        except SingularKernelError as e:
            raise SingularKernelError(f"the particle mesh convolves the force kernel grad W: {e}; e.g. W = log|z| "
                                      "in 1D has grad W = 1/z: use force='direct' or force='rbm'") from None
        if self.grid.k != d:
            raise ValueError(f"grad_W must return shape (..., {d}) (the gradient), got {self.grid.k} components")
        self.h, self.shape = self.grid.h, self.grid.shape
        self.grad_W = grad_W
        self._warned = False

    def warn_outside(self, count: int, streams) -> None:
        """Warn once (rank 0) when more than 1% of the particles are outside the box (their sums are O(n) each).

        Parameters
        ----------
        count : int
            The particles outside the box, over all ranks.
        streams : Streams
            Their split (n and the communicator).
        """
        if not self._warned and count > 0.01 * streams.n:
            from fpjko.common.warn import warn

            warn(streams.comm, f"{count} of {streams.n} particles are outside the particle mesh's box "
                               f"[{self.lower.tolist()}, {self.upper.tolist()}]: their forces are direct sums, O(n) "
                               "each; a wider domain keeps the particle mesh O(n)")
            self._warned = True

    def deposit(self, x: np.ndarray, mass: float) -> np.ndarray:
        """The deposit of points of equal mass, in their order.

        Parameters
        ----------
        x : numpy.ndarray, shape (m, d)
        mass : float

        Returns
        -------
        numpy.ndarray, shape (prod(shape),)
        """
        return self.grid.deposit(x, mass)

    def field(self, q: np.ndarray) -> np.ndarray:
        """F(y_i) = -sum_k q_k grad W(y_i - y_k) at the grid nodes (the linear convolution, by zero-padded FFTs).

        Parameters
        ----------
        q : numpy.ndarray, shape (prod(shape),)

        Returns
        -------
        numpy.ndarray, shape (prod(shape), d)
        """
        return -self.grid.convolve(q)

    def interpolate(self, F: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The field at points by the same weights.

        Parameters
        ----------
        F : numpy.ndarray, shape (prod(shape), d)
        x : numpy.ndarray, shape (m, d)

        Returns
        -------
        numpy.ndarray, shape (m, d)
        """
        return self.grid.interpolate(F, x)


def particle_mesh_force(x: np.ndarray, streams: Streams, pm: ParticleMesh, outside: str = "error",
                        grad_W: Callable | None = None) -> np.ndarray:
    """The mean-field force -(1/n) sum_j grad W(x_i - x_j) on this rank's particles, by the particle mesh.

    The deposit is in fixed point (multiples of 2^-52 of the total mass, int64), so its sum over ranks is exact and
    the result is bitwise the same on any number of ranks. A particle that is not finite is an error on every rank
    (decided collectively before any rank indexes). A particle outside the box is an error on every rank
    (outside='error'), or (outside='direct') it is left out of the deposit and its pairs are summed directly:
    the particles inside feel it through -(1/n) grad W(x_i - x_o), and it feels every particle through the direct
    sum (O(n) per particle outside, the same on any rank count: the particles outside are gathered in global order).

    Parameters
    ----------
    x : numpy.ndarray, shape (n_local, d)
        This rank's particles.
    streams : Streams
        Their split over ranks and blocks.
    pm : ParticleMesh
    outside : {'error', 'direct'}
    grad_W : callable, optional
        grad W(z), z of shape (..., d) -> (..., d): needed for outside='direct'.

    Returns
    -------
    numpy.ndarray, shape (n_local, d)
    """
    from fpjko.samplers.interacting import direct_sum

    if getattr(pm, "_agreed", None) is not streams.comm:      # the grid and the kernel, compared once across ranks
        same_everywhere(streams.comm, "ParticleMesh", {"lower": pm.lower, "upper": pm.upper, "cells": pm.cells,
                                                       "order": pm.grid.order, "grad_W": pm.grad_W,
                                                       "outside": outside})
        pm._agreed = streams.comm
    x = np.asarray(x, float)
    checks.one_of("outside", outside, ("error", "direct"))
    problem, inside = None, None
    if x.shape != (streams.n_local, pm.d):
        problem = f"particle_mesh_force: expected this rank's particles as ({streams.n_local}, {pm.d}), got {x.shape}"
    elif outside == "direct" and grad_W is None:
        problem = "particle_mesh_force: outside='direct' needs grad_W"
    elif len(x) and not (np.all((b := bounds(x))[0] >= pm.lower) and np.all(b[1] <= pm.upper)):    # one pass
        inside = np.all((x >= pm.lower) & (x <= pm.upper), axis=1)
        finite = np.all(np.isfinite(x), axis=1)
        if not finite.all():
            i = int(np.argmin(finite))
            problem = f"particle {streams.lo + i} is not finite: x = {x[i].tolist()}"
        elif outside == "error":
            i = int(np.argmin(inside))
            problem = (f"particle {streams.lo + i} at {x[i].tolist()} left the particle mesh's box "
                       f"[{pm.lower.tolist()}, {pm.upper.tolist()}]")
    if inside is None or problem is not None:
        inside = np.ones(len(x), dtype=bool)
    # the verdict travels with the particles outside the box: one collective, as the plain agree was
    parts = allgather_checked(streams.comm, x[~inside], problem)
    outx = np.concatenate(parts, axis=0)
    xin = x[inside]
    g = pm.grid
    qi = deposit_exact(xin, 1.0 / streams.n, g.origin, g.h, g.shape, g.order, SCALE)
    if streams.comm is not None and streams.comm.size > 1:
        from mpi4py import MPI
        streams.comm.Allreduce(MPI.IN_PLACE, qi, op=MPI.SUM)           # integers: exact in any order
    F = pm.interpolate(pm.field(qi / SCALE), xin)
    if not len(outx):
        return F
    pm.warn_outside(len(outx), streams)
    force = np.empty_like(x)
    allx = streams.allgather(x)                                                    # every rank: some particle is out

    def direct():                               # the user's grad_W: a failure on one rank is every rank's
        force[inside] = F + direct_sum(xin, outx, grad_W, streams.block, streams.n)    # pairs with particles outside
        mine = np.flatnonzero(~inside)
        force[mine] = direct_sum(x[mine], allx, grad_W, streams.block, streams.n, streams.lo + mine)
        return force
    return collectively(streams.comm, direct)
