"""Checks on user input that fail with an error naming the offending value and where it is."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from fpjko.common.checks import end_time, integer, number, one_of, positive_number, tolerance  # noqa: F401  (re-exported)
from fpjko.common.collective import agree


def raise_collectively(comm: MPI.Comm, message: str | None, exc=ValueError) -> None:
    """Every rank raises (the first rank's message) if any rank has a message."""
    agree(comm, message, exc)


def _where(comm: MPI.Comm, values: np.ndarray, coords: np.ndarray, pick) -> tuple[float, np.ndarray]:
    """Global (value, coordinate) chosen by `pick` (np.argmin/argmax) over the owned entries."""
    if len(values):
        i = pick(values)
        local = (float(values[i]), coords[i])
    else:
        local = (math.inf if pick is np.argmin else -math.inf, np.full(3, np.nan))
    allv = comm.allgather(local)
    j = pick(np.array([v for v, _ in allv]))
    return allv[j]


def finite_field(comm: MPI.Comm, values: np.ndarray, coords: np.ndarray, what: str) -> None:
    """Raise naming the first non-finite nodal value and its location."""
    bad = ~np.isfinite(values)
    nbad = comm.allreduce(int(bad.sum()))
    if nbad:
        _, x = _where(comm, np.where(bad, 0.0, 1.0), coords, np.argmin)
        i = np.flatnonzero(bad)
        val = values[i[0]] if len(i) else float("nan")
        raise ValueError(f"{what} is not finite at {nbad} nodes (e.g. {val} at x={_fmt(x)})")


def check_density(comm: MPI.Comm, values: np.ndarray, coords: np.ndarray, mass: float, what: str,
                  mass_tol: float, neg_tol: float = 1e-12) -> None:
    """values: owned nodal values; coords: their coordinates. Raises on NaN/inf, negative values
    below -neg_tol * max and a mass farther than mass_tol from 1."""
    mass_tol = tolerance("mass_tol", mass_tol)
    finite_field(comm, values, coords, what)
    vmin, xmin = _where(comm, values, coords, np.argmin)
    vmax, _ = _where(comm, values, coords, np.argmax)
    if vmin < -neg_tol * max(abs(vmax), 1.0):
        raise ValueError(f"{what} is negative: min value {vmin:.6g} at x={_fmt(xmin)}")
    if math.isfinite(mass) and mass <= 0:
        raise ValueError(f"{what} has no mass on this mesh ({mass:.3g}): it vanishes at every node (a peak narrower "
                         f"than the mesh, or placed between its nodes: the mesh does not resolve it; take a smaller h)")
    if not math.isfinite(mass) or abs(mass - 1.0) > mass_tol:
        raise ValueError(f"{what} is not normalised: mass {mass:.8g} differs from 1 by "
                         f"{abs(mass - 1.0):.3g} > mass_tol={mass_tol:g} (pass normalize=True to rescale)")


def _fmt(x) -> str:
    return "(" + ", ".join(f"{c:.4g}" for c in np.atleast_1d(x)) + ")"
