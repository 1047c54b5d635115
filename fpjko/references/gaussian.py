"""Exact Gaussian laws of linear SDEs, numpy only.

dX = -A X dt + sqrt(2/beta D) dW started from N(m0, S0) stays Gaussian with
    m(t) = e^{-At} m0,
    S(t) = e^{-At} (S0 - S_inf) e^{-A^T t} + S_inf,   A S_inf + S_inf A^T = 2 beta^-1 D,
which solves m' = -A m, S' = -A S - S A^T + 2 beta^-1 D (A need not be symmetric; its eigenvalues
must have positive real part for S_inf to exist).
"""

from __future__ import annotations

import math

import numpy as np


def expm(M: np.ndarray) -> np.ndarray:
    """Matrix exponential by scaling and squaring with a degree-18 Taylor polynomial.

    Small dense matrices; relative accuracy near machine precision.

    Parameters
    ----------
    M : array_like, shape (d, d)

    Returns
    -------
    numpy.ndarray, shape (d, d)
    """
    M = np.atleast_2d(np.asarray(M, dtype=float))
    norm = np.linalg.norm(M, 1)
    s = max(0, int(math.ceil(math.log2(norm))) + 1) if norm > 0.5 else 0
    X = M / 2.0**s
    E = np.eye(M.shape[0])
    term = np.eye(M.shape[0])
    for k in range(1, 19):
        term = term @ X / k
        E = E + term
    for _ in range(s):
        E = E @ E
    return E


def lyapunov(A: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """S with A S + S A^T = Q (Kronecker form; fine for the small d of this package).

    Parameters
    ----------
    A : array_like, shape (d, d)
        Eigenvalues with positive real part.
    Q : array_like, shape (d, d)

    Returns
    -------
    numpy.ndarray, shape (d, d)
        Symmetrised.
    """
    A, Q = np.atleast_2d(np.asarray(A, float)), np.atleast_2d(np.asarray(Q, float))
    d = A.shape[0]
    eig = np.linalg.eigvals(A)
    if np.any(eig.real <= 0):
        raise ValueError(f"A must have eigenvalues with positive real part, got {eig}")
    K = np.kron(np.eye(d), A) + np.kron(A, np.eye(d))
    S = np.linalg.solve(K, Q.reshape(-1, order="F")).reshape(d, d, order="F")
    return 0.5 * (S + S.T)


def ou_stationary_covariance(A, beta: float, D=None) -> np.ndarray:
    """The stationary covariance S_inf of dX = -A X dt + sqrt(2/beta D) dW: A S + S A^T = 2 beta^-1 D.

    Parameters
    ----------
    A : array_like, shape (d, d)
        Eigenvalues with positive real part.
    beta : float
    D : array_like, shape (d, d), optional
        The diffusion matrix (None: the identity).

    Returns
    -------
    numpy.ndarray, shape (d, d)
    """
    A = np.atleast_2d(np.asarray(A, float))
    D = np.eye(A.shape[0]) if D is None else np.atleast_2d(np.asarray(D, float))
    return lyapunov(A, 2.0 / beta * D)


def ou_law(A, beta: float, m0, S0, t: float, D=None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) at time t of dX = -A X dt + sqrt(2/beta D) dW, X_0 ~ N(m0, S0).

    Parameters
    ----------
    A : array_like, shape (d, d)
        Eigenvalues with positive real part.
    beta : float
    m0 : array_like, shape (d,)
    S0 : array_like, shape (d, d)
    t : float
    D : array_like, shape (d, d), optional
        The diffusion matrix (None: the identity).

    Returns
    -------
    mean : numpy.ndarray, shape (d,)
    cov : numpy.ndarray, shape (d, d)
    """
    A = np.atleast_2d(np.asarray(A, float))
    m0 = np.atleast_1d(np.asarray(m0, float))
    S0 = np.atleast_2d(np.asarray(S0, float))
    Sinf = ou_stationary_covariance(A, beta, D)
    E = expm(-A * t)
    S = E @ (S0 - Sinf) @ E.T + Sinf
    return E @ m0, 0.5 * (S + S.T)


def mckean_vlasov_law(A, K, beta: float, m0, S0, t: float, D=None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) at time t of the McKean-Vlasov process with f = x^T A x / 2 and W = z^T K z / 2.

    dX = -A X dt - K (X - E X) dt + sqrt(2/beta D) dW, X_0 ~ N(m0, S0). The interaction force averages to zero,
    so m' = -A m; the deviation Y = X - m solves an OU equation with matrix A + K, so
    S' = -(A + K) S - S (A + K)^T + 2 beta^-1 D. The law is Gaussian at all times (and so is the limit of the
    particle system's empirical measure).

    Parameters
    ----------
    A : array_like, shape (d, d)
    K : array_like, shape (d, d)
        Only its symmetric part acts.
    beta : float
    m0 : array_like, shape (d,)
    S0 : array_like, shape (d, d)
    t : float
    D : array_like, shape (d, d), optional
        The diffusion matrix (None: the identity).

    Returns
    -------
    mean : numpy.ndarray, shape (d,)
    cov : numpy.ndarray, shape (d, d)
    """
    A = np.atleast_2d(np.asarray(A, float))
    K = np.atleast_2d(np.asarray(K, float))
    K = 0.5 * (K + K.T)                     # grad of z^T K z / 2 is the symmetric part times z
    m, _ = ou_law(A, beta, m0, S0, t, D)
    _, S = ou_law(A + K, beta, m0, S0, t, D)
    return m, S


def gaussian_density(x: np.ndarray, mean, cov) -> np.ndarray:
    """The N(mean, cov) density at points x.

    Parameters
    ----------
    x : array_like, shape (d, n) or (>= d, n)
        Extra rows are ignored, as in dolfinx's (3, n) interpolation points.
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    mean = np.atleast_1d(np.asarray(mean, float))
    cov = np.atleast_2d(np.asarray(cov, float))
    d = mean.size
    y = np.asarray(x)[:d] - mean[:, None]
    P = np.linalg.inv(cov)
    q = np.einsum("in,ij,jn->n", y, P, y)
    return np.exp(-0.5 * q) / math.sqrt((2 * math.pi) ** d * np.linalg.det(cov))
