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
    """distance(sample(n, seed_r)) for each n over `repeats` seeds; rows of (n, mean, std), the fitted slope and an
    interval for it.

    For iid samples W1 in 1D and L1 against a smooth density converge like n^(-1/2). The interval is the slope of the
    means plus or minus two standard errors of the single seeds' slopes (as fpjko.model.validate gives it): a test
    asserts that the theory's rate lies in it.

    Parameters
    ----------
    sample : callable
        sample(n, seed) -> the n particles.
    distance : callable
        distance(particles) -> float.
    ns : sequence of int
        The particle counts.
    repeats : int
        Seeds per n (at least 2 for an interval).
    seed : int
        The first seed.
    echo : bool
        Print the table.
    label : str
        The distance's column title.

    Returns
    -------
    dict
        {'n': list of int, 'mean': list of float, 'std': list of float, 'slope': float, 'per_seed': (repeats,
        len(ns)) list, 'seed_slopes': list of float, 'interval': [lo, hi] (NaN with one seed)}.
    """
    per_seed = np.array([[distance(sample(int(n), seed + 1000 * r + 1)) for n in ns] for r in range(repeats)])
    rows = [(int(n), float(np.mean(per_seed[:, j])), float(np.std(per_seed[:, j]))) for j, n in enumerate(ns)]
    s = fitted_slope([r[0] for r in rows], [r[1] for r in rows])
    seeds = [fitted_slope(ns, v) for v in per_seed]
    half = 2.0 * float(np.std(seeds, ddof=1)) / np.sqrt(repeats) if repeats > 1 else float("nan")
    interval = [s - half, s + half]
    if echo:
        print(format_table(rows, s, label, interval))
    return {"n": [r[0] for r in rows], "mean": [r[1] for r in rows], "std": [r[2] for r in rows], "slope": s,
            "per_seed": per_seed.tolist(), "seed_slopes": seeds, "interval": interval}


def format_table(rows, slope: float, label: str = "distance", interval=None) -> str:
    """The table of convergence_in_n: one row per n and the fitted slope.

    Parameters
    ----------
    rows : sequence of (int, float, float)
        (n, mean, std).
    slope : float
    label : str
    interval : (float, float), optional
        The slope's interval, printed after it.

    Returns
    -------
    str
    """
    lines = [f"{'n':>10} {label:>14} {'std':>10}"]
    lines += [f"{n:>10d} {m:>14.4e} {s:>10.2e}" for n, m, s in rows]
    lines.append(f"fitted slope: {slope:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval is not None
                                                 else ""))
    return "\n".join(lines)
