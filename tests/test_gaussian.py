"""fpjko.references.gaussian: the exact OU law used as the reference everywhere (numpy only)."""

import numpy as np
import pytest

from fpjko.references.gaussian import expm, gaussian_density, lyapunov, ou_law


def test_expm_matches_eigendecomposition():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(3, 3))
    S = B @ B.T + np.eye(3)
    w, Q = np.linalg.eigh(S)
    for t in (0.01, 1.0, 7.0):        # measured 7.8e-16 absolute, 3.7e-14 relative at most
        np.testing.assert_allclose(expm(-t * S), Q @ np.diag(np.exp(-t * w)) @ Q.T, rtol=1e-13, atol=1e-15)
    rot = np.array([[0.0, -2.0], [2.0, 0.0]])
    np.testing.assert_allclose(expm(rot), [[np.cos(2), -np.sin(2)], [np.sin(2), np.cos(2)]], atol=1e-15)  # 1.1e-16


def test_lyapunov_residual_nonsymmetric():
    A = np.array([[1.0, 2.0], [-1.0, 3.0]])
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    S = lyapunov(A, Q)
    np.testing.assert_allclose(A @ S + S @ A.T, Q, atol=5e-16)                # measured 5.6e-17
    with pytest.raises(ValueError, match="positive real part"):
        lyapunov(-A, Q)


def test_ou_law_solves_moment_odes():
    A = np.array([[1.0, 0.6], [0.6, 2.0]])
    beta, m0, S0 = 2.0, np.array([1.0, -0.5]), 0.2 * np.eye(2)
    t, eps = 0.7, 1e-5
    mp, Sp = ou_law(A, beta, m0, S0, t + eps)
    mm, Sm = ou_law(A, beta, m0, S0, t - eps)
    m, S = ou_law(A, beta, m0, S0, t)
    # central differences with eps = 1e-5: measured 4.8e-11 (mean) and 3.4e-11 (covariance) relative
    np.testing.assert_allclose((mp - mm) / (2 * eps), -A @ m, rtol=3e-10)
    np.testing.assert_allclose((Sp - Sm) / (2 * eps), -A @ S - S @ A.T + 2 / beta * np.eye(2), rtol=3e-10, atol=1e-11)
    m_inf, S_inf = ou_law(A, beta, m0, S0, 60.0)
    np.testing.assert_allclose(S_inf, np.linalg.inv(A) / beta, rtol=1e-15)   # measured 1.8e-16
    np.testing.assert_allclose(m_inf, 0.0, atol=1e-18)                         # exp(-60 lambda_min) m0: 1.9e-19


def test_gaussian_density_normalised():
    g = np.linspace(-8, 8, 801)
    X, Y = np.meshgrid(g, g)
    cov = np.array([[1.0, 0.4], [0.4, 0.5]])
    p = gaussian_density(np.vstack([X.ravel(), Y.ravel(), np.zeros(X.size)]), [0.3, -0.2], cov)
    assert abs(p.sum() * (g[1] - g[0]) ** 2 - 1) < 3e-13                    # measured 4.9e-14
