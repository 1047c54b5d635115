"""The Desai-Zwanzig (Dawson) phase transition: reference values by 1D quadrature (numpy only).

Particles in the double well f(x) = x^4/4 - x^2/2 with the Curie-Weiss attraction W(z) = k z^2 / 2,

    dX_i = -f'(X_i) dt - k (X_i - mean_j X_j) dt + sqrt(2 / beta) dB_i,

have the McKean-Vlasov limit rho_t = (rho (f' + k (x - m(t))))' + beta^-1 rho'', m(t) = int x rho.
W * rho(x) = k/2 (x^2 - 2 m x + int y^2 rho), so a stationary state is

    rho_m(x) = exp(-beta (f(x) + k (x - m)^2 / 2)) / Z(m)    with    m = R(m) := int x rho_m(x) dx.

R is odd, so m = 0 is always a solution. R'(0) = beta k Var_0(beta), Var_0 the variance of rho_0:
for beta k Var_0 < 1 the only solution is m = 0; at beta k Var_0(beta_c) = 1 a pair +-m* branches off
(a supercritical pitchfork). For k = 1, f + x^2/2 = x^4/4 and with int_0^inf x^(s-1) e^(-a x^4) dx =
Gamma(s/4) / (4 a^(s/4)), a = beta/4,

    Var_0 = Gamma(3/4) / (Gamma(1/4) sqrt(a)) = 2 Gamma(3/4) / (Gamma(1/4) sqrt(beta)),
    beta_c = (Gamma(1/4) / (2 Gamma(3/4)))^2 = 2.18848...

All integrals below are trapezoidal sums on [-L, L] (spectrally accurate for these smooth, fast
decaying integrands).
"""

from __future__ import annotations

import math

import numpy as np


def f(x):
    return 0.25 * x**4 - 0.5 * x**2


def grad_f(x):
    return x**3 - x


def _grid(L: float = 8.0, n: int = 40001):
    x = np.linspace(-L, L, n)
    return x, x[1] - x[0]


def density(x, beta: float, k: float, m: float) -> np.ndarray:
    """rho_m(x) = exp(-beta (f + k (x - m)^2 / 2)) / Z(m), Z by quadrature."""
    g, h = _grid()
    e = lambda y: beta * (f(y) + 0.5 * k * (y - m) ** 2)          # noqa: E731
    emin = e(g).min()
    Z = np.sum(np.exp(-(e(g) - emin))) * h
    return np.exp(-(e(np.asarray(x, float)) - emin)) / Z


def mean_map(m: float, beta: float, k: float) -> float:
    """R(m) = int x rho_m(x) dx."""
    x, _ = _grid()
    w = density(x, beta, k, m)
    return float(np.sum(x * w) / np.sum(w))


def variance_at_zero(beta: float, k: float) -> float:
    x, _ = _grid()
    w = density(x, beta, k, 0.0)
    return float(np.sum(x * x * w) / np.sum(w))


def critical_beta(k: float = 1.0) -> float:
    """beta_c solving beta k Var_0(beta) = 1 (closed form for k = 1)."""
    if k <= 0:
        raise ValueError(f"the Curie-Weiss coupling must be positive for a phase transition, got k={k}")
    if k == 1.0:
        return (math.gamma(0.25) / (2.0 * math.gamma(0.75))) ** 2
    from scipy.optimize import brentq

    return brentq(lambda b: b * k * variance_at_zero(b, k) - 1.0, 1e-3, 1e3, xtol=1e-13)


def magnetisation(beta: float, k: float = 1.0) -> float:
    """The non-negative solution m* of m = R(m): 0 for beta <= beta_c, else the branch m* > 0."""
    from scipy.optimize import brentq

    if beta <= critical_beta(k):
        return 0.0
    g = lambda m: mean_map(m, beta, k) - m                       # noqa: E731
    lo = 1e-6
    hi = 0.5
    while g(hi) > 0:
        hi *= 2.0
        if hi > 100:
            raise RuntimeError(f"no positive branch bracketed for beta={beta}, k={k}")
    if g(lo) <= 0:             # so close to beta_c that the branch is below lo
        return 0.0
    return float(brentq(g, lo, hi, xtol=1e-14))
