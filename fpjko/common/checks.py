"""Scalar argument checks that name the offending value (numpy only; fpjko.solvers.core.validation uses
them too). Each returns the value converted (float or int) or raises TypeError/ValueError."""

from __future__ import annotations

import math
import numbers

import numpy as np


def number(name: str, value, positive: bool = False, nonnegative: bool = False) -> float:
    """A finite real number (and > 0 or >= 0 when asked)."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {name}={value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be positive, got {name}={value!r}")
    if nonnegative and not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {name}={value!r}")
    return v


def positive_number(name: str, value) -> float:
    return number(name, value, positive=True)


def tolerance(name: str, value) -> float:
    """A positive tolerance; +inf switches the check off."""
    return math.inf if value == math.inf else number(name, value, positive=True)


def end_time(t_end, t: float, step: float) -> float:
    """t_end for run(t_end): a finite number not before the current time t (within 1e-9 step)."""
    t_end = number("t_end", t_end)
    if t_end < t - 1e-9 * step:
        raise ValueError(f"run(t_end): t_end={t_end:g} is before the current time t={t:g}")
    return t_end


def integer(name: str, value, minimum: int | None = None) -> int:
    """An integer (Python or numpy; not a float such as 1.7 or 2.0, not a bool), >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {name}={value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={v}")
    return v


def one_of(name: str, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {sorted(allowed)}")
    return value


def problem(check, *args, **kwargs) -> str | None:
    """The message of the check's error, or None: a local verdict for fpjko.common.collective.agree."""
    try:
        check(*args, **kwargs)
    except (TypeError, ValueError) as e:
        return str(e)
    return None
