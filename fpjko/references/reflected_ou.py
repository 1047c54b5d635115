"""The stationary law of the reflected Ornstein-Uhlenbeck process dX = -(X - c) dt + sigma dB on an interval
[a, b] (reflected at both ends): the exact reference of the graphon McKean-Vlasov solver (numpy only)."""

from __future__ import annotations

import math

import numpy as np


def reflected_ou_density(x, center: float, box=(0.0, 1.0), sigma: float = 1.0) -> np.ndarray:
    """Stationary density of dX = -(X - c) dt + sigma dB reflected at the ends of the box [a, b]:
    exp(-(x - c)^2 / sigma^2) / Z, Z = sigma sqrt(pi) / 2 (erf((b - c) / sigma) - erf((a - c) / sigma))."""
    a, b = box
    Z = sigma * math.sqrt(math.pi) / 2 * (math.erf((b - center) / sigma) - math.erf((a - center) / sigma))
    x = np.asarray(x, float)
    return np.where((x >= a) & (x <= b), np.exp(-((x - center) / sigma) ** 2) / Z, 0.0)


def reflected_ou_cdf(x, center: float, box=(0.0, 1.0), sigma: float = 1.0) -> np.ndarray:
    a, b = box
    from math import erf

    ea, eb = erf((a - center) / sigma), erf((b - center) / sigma)
    x = np.clip(np.asarray(x, float), a, b)
    return (np.vectorize(erf)((x - center) / sigma) - ea) / (eb - ea)
