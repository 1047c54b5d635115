"""Convergence of particle approximations in the number of particles n (numpy only)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def fitted_slope(x, y) -> float:
    """Least-squares slope of log y against log x.

    Parameters
    ----------
    x, y : array_like, shape (k,)
        Positive values.

    Returns
    -------
    float
    """
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def convergence_in_n(sample: Callable[[int, int], np.ndarray], distance: Callable[[np.ndarray], float],
                     ns: Sequence[int], repeats: int = 4, seed: int = 0, echo: bool = True,
                     label: str = "distance") -> dict:
    """distance(sample(n, seed_r)) for each n over `repeats` seeds; rows of (n, mean, std) and the fitted slope.

    For iid samples W1 in 1D and L1/KL against a smooth density converge like n^(-1/2).

    Parameters
    ----------
    sample : callable
        sample(n, seed) -> the n particles.
    distance : callable
        distance(particles) -> float.
    ns : sequence of int
        The particle counts.
    repeats : int
        Seeds per n.
    seed : int
        The first seed.
    echo : bool
        Print the table.
    label : str
        The distance's column title.

    Returns
    -------
    dict
        {'n': list of int, 'mean': list of float, 'std': list of float, 'slope': float}.
    """
    rows = []
    for n in ns:
        vals = [distance(sample(int(n), seed + 1000 * r + 1)) for r in range(repeats)]
        rows.append((int(n), float(np.mean(vals)), float(np.std(vals))))
    s = fitted_slope([r[0] for r in rows], [r[1] for r in rows])
    if echo:
        print(format_table(rows, s, label))
    return {"n": [r[0] for r in rows], "mean": [r[1] for r in rows], "std": [r[2] for r in rows], "slope": s}


def format_table(rows, slope: float, label: str = "distance") -> str:
    """The table of convergence_in_n: one row per n and the fitted slope.

    Parameters
    ----------
    rows : sequence of (int, float, float)
        (n, mean, std).
    slope : float
    label : str

    Returns
    -------
    str
    """
    lines = [f"{'n':>10} {label:>14} {'std':>10}"]
    lines += [f"{n:>10d} {m:>14.4e} {s:>10.2e}" for n, m, s in rows]
    lines.append(f"fitted slope: {slope:.3f}")
    return "\n".join(lines)
