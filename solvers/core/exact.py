"""Exact solutions as UFL expressions of the spatial coordinate, for error norms."""

from __future__ import annotations

import math

import numpy as np
import ufl

from fpjko.references.gaussian import mckean_vlasov_law, ou_law


def gaussian_ufl(mean, cov):
    """x -> N(mean, cov) density as a UFL expression."""
    mean = np.atleast_1d(np.asarray(mean, float))
    P = np.linalg.inv(np.atleast_2d(cov))
    d = mean.size
    c = 1.0 / math.sqrt((2 * math.pi) ** d * np.linalg.det(np.atleast_2d(cov)))

    def rho(x):
        y = [x[i] - mean[i] for i in range(d)]
        q = sum(P[i, j] * y[i] * y[j] for i in range(d) for j in range(d))
        return c * ufl.exp(-0.5 * q)

    return rho


def ou_solution_ufl(A, beta: float, m0, S0, t: float):
    """x -> exact Fokker-Planck density at time t for f = x^T A x / 2 (A symmetric) from N(m0, S0)."""
    return gaussian_ufl(*ou_law(A, beta, m0, S0, t))


def quadratic_potential(A):
    """x -> x^T A x / 2 as a UFL expression (A symmetric)."""
    A = np.atleast_2d(np.asarray(A, float))
    d = A.shape[0]
    return lambda x: 0.5 * sum(A[i, j] * x[i] * x[j] for i in range(d) for j in range(d))


def mckean_vlasov_solution_ufl(A, K, beta: float, m0, S0, t: float, D=None):
    """x -> exact McKean-Vlasov density at time t for f = x^T A x / 2, W(z) = z^T K z / 2 from N(m0, S0)
    (fpjko.references.gaussian.mckean_vlasov_law)."""
    return gaussian_ufl(*mckean_vlasov_law(A, K, beta, m0, S0, t, D))
