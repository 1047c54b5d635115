"""Sizes refused before anything is allocated: a memory estimate against what the machine can give (numpy only).

Every public entry that allocates in proportion to a user's number (particles n, a mesh size h, a grid) estimates its
memory first and refuses an estimate over `memory_limit()` (half the machine's physical memory, or the environment
variable FPJKO_MEMORY_LIMIT in bytes, with an optional K/M/G/T suffix), naming the size, the estimate and the limit.
"""

from __future__ import annotations

import os

import numpy as np

BYTES_PER_PARTICLE_COORD = 8 * 8   # float64: positions, drift, noise, the factor and temporaries (measured ~6-8)


def physical_memory() -> int:
    """The machine's memory in bytes (0 if unknown).

    Returns
    -------
    int
    """
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):   # pragma: no cover
        return 0


def memory_limit() -> float:
    """The bytes one run may plan to take: FPJKO_MEMORY_LIMIT, else half the physical memory (inf if unknown).

    Returns
    -------
    float
    """
    text = os.environ.get("FPJKO_MEMORY_LIMIT", "").strip()
    if text:
        scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1].upper(), 1)
        try:
            return float(text[:-1] if scale > 1 else text) * scale
        except ValueError:
            raise ValueError(f"FPJKO_MEMORY_LIMIT={text!r} is not a number of bytes (e.g. 8G)") from None
    mem = physical_memory()
    return mem / 2 if mem else float("inf")


def gib(nbytes: float) -> str:
    """A byte count for a message: '3.2 GiB', '480 MiB'."""
    return f"{nbytes / 2**30:.3g} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.3g} MiB"


def memory_problem(what: str, nbytes: float, hint: str = "", limit: float | None = None) -> str | None:
    """The refusal of `what` needing about nbytes, or None when it fits the limit.

    Parameters
    ----------
    what : str
        The size as the user gave it, e.g. 'n = 1e+10 particles in 2D'.
    nbytes : float
        The estimate.
    hint : str
        What to change.
    limit : float, optional
        Default memory_limit().

    Returns
    -------
    str or None
    """
    limit = memory_limit() if limit is None else float(limit)
    if not np.isfinite(nbytes) or nbytes > limit:
        return (f"{what} would need about {gib(nbytes) if np.isfinite(nbytes) else 'unbounded memory'}, over the "
                f"{gib(limit)} this run may take (half the machine's memory; FPJKO_MEMORY_LIMIT sets it)"
                + (f": {hint}" if hint else ""))
    return None


def check_memory(what: str, nbytes: float, hint: str = "", limit: float | None = None) -> None:
    """Raise MemoryError (before allocating) if `what` needs more than the limit; see memory_problem."""
    msg = memory_problem(what, nbytes, hint, limit)
    if msg:
        raise MemoryError(msg)


def particles_bytes(n: int, d: int, gathered: bool = False) -> float:
    """The estimated memory of n particles in R^d on one rank (all of them when they are gathered)."""
    return float(n) * d * BYTES_PER_PARTICLE_COORD * (2 if gathered else 1)
