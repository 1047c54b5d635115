"""fpjko.references.gaussian: the exact OU law used as the reference everywhere (numpy only)."""

import numpy as np
import pytest

from fpjko.references.gaussian import expm, gaussian_density, lyapunov, ou_law


def test_expm_matches_eigendecomposition():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(3, 3))
    S = B @ B.T + np.eye(3)
    w, Q = np.linalg.eigh(S)
    for t in (0.01, 1.0, 7.0):
        np.testing.assert_allclose(expm(-t * S), Q @ np.diag(np.exp(-t * w)) @ Q.T, rtol=1e-11, atol=1e-13)
    rot = np.array([[0.0, -2.0], [2.0, 0.0]])
    np.testing.assert_allclose(expm(rot), [[np.cos(2), -np.sin(2)], [np.sin(2), np.cos(2)]], atol=1e-13)


def test_lyapunov_residual_nonsymmetric():
    A = np.array([[1.0, 2.0], [-1.0, 3.0]])
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    S = lyapunov(A, Q)
    np.testing.assert_allclose(A @ S + S @ A.T, Q, atol=1e-13)
    with pytest.raises(ValueError, match="positive real part"):
        lyapunov(-A, Q)


def test_ou_law_solves_moment_odes():
    A = np.array([[1.0, 0.6], [0.6, 2.0]])
    beta, m0, S0 = 2.0, np.array([1.0, -0.5]), 0.2 * np.eye(2)
    t, eps = 0.7, 1e-5
    mp, Sp = ou_law(A, beta, m0, S0, t + eps)
    mm, Sm = ou_law(A, beta, m0, S0, t - eps)
    m, S = ou_law(A, beta, m0, S0, t)
    np.testing.assert_allclose((mp - mm) / (2 * eps), -A @ m, rtol=1e-8)
    np.testing.assert_allclose((Sp - Sm) / (2 * eps), -A @ S - S @ A.T + 2 / beta * np.eye(2), rtol=1e-7, atol=1e-9)
    m_inf, S_inf = ou_law(A, beta, m0, S0, 60.0)
    np.testing.assert_allclose(S_inf, np.linalg.inv(A) / beta, rtol=1e-12)
    np.testing.assert_allclose(m_inf, 0.0, atol=1e-12)


def test_gaussian_density_normalised():
    g = np.linspace(-8, 8, 801)
    X, Y = np.meshgrid(g, g)
    cov = np.array([[1.0, 0.4], [0.4, 0.5]])
    p = gaussian_density(np.vstack([X.ravel(), Y.ravel(), np.zeros(X.size)]), [0.3, -0.2], cov)
    assert abs(p.sum() * (g[1] - g[0]) ** 2 - 1) < 1e-10
