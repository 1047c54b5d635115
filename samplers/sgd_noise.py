"""Minibatch-SGD gradient noise as a diffusion matrix (numpy only).

SGD x_{k+1} = x_k - lr g_B(x_k), g_B the mean gradient over a minibatch of B of the n samples,
is, for small lr and time t = k lr, the diffusion dX = -grad f dt + sqrt(2/beta D(X)) dW with

    beta^-1 = lr / (2 B),     D(x) = B Cov[g_B(x)] = c * Sigma(x),
    Sigma(x) = (1/n) sum_i (grad f_i(x) - grad f(x)) (grad f_i(x) - grad f(x))^T,

c = 1 for batches drawn with replacement and c = (n - B) / (n - 1) without (finite population).
"""

from __future__ import annotations

import numpy as np


def sgd_temperature(lr: float, batch: int) -> float:
    """The temperature of minibatch SGD: beta^-1 = lr / (2 batch).

    Parameters
    ----------
    lr : float
    batch : int

    Returns
    -------
    float
    """
    if not (lr > 0 and batch >= 1):
        raise ValueError(f"need lr > 0 and batch >= 1, got lr={lr!r}, batch={batch!r}")
    return lr / (2.0 * batch)


def gradient_covariance(per_sample_grads: np.ndarray) -> np.ndarray:
    """The per-sample gradients' population covariance Sigma at each point.

    Parameters
    ----------
    per_sample_grads : numpy.ndarray, shape (n, d, m)
        n samples' gradients at m points.

    Returns
    -------
    numpy.ndarray, shape (d, d, m)
    """
    g = np.asarray(per_sample_grads, dtype=float)
    if g.ndim != 3:
        raise ValueError(f"per_sample_grads must have shape (n_samples, d, n_points), got {g.shape}")
    c = g - g.mean(axis=0, keepdims=True)
    return np.einsum("nim,njm->ijm", c, c) / g.shape[0]


def sgd_diffusion(per_sample_grads: np.ndarray, batch: int, replacement: bool = True) -> np.ndarray:
    """D(x) = B Cov[g_B(x)] at each point, the diffusion of minibatch SGD's Fokker-Planck equation.

    Parameters
    ----------
    per_sample_grads : numpy.ndarray, shape (n, d, m)
    batch : int
        B.
    replacement : bool
        Minibatches drawn with replacement (Cov[g_B] = Sigma / B) or without (finite-population factor).

    Returns
    -------
    numpy.ndarray, shape (d, d, m)
    """
    n = np.shape(per_sample_grads)[0]
    if not (1 <= batch <= n):
        raise ValueError(f"batch must be in [1, n={n}], got batch={batch}")
    c = 1.0 if replacement else (n - batch) / (n - 1) if n > 1 else 0.0
    return c * gradient_covariance(per_sample_grads)


class LeastSquares:
    """f(x) = (1/2n) sum_i (a_i . x - y_i)^2 with per-sample losses f_i = (a_i . x - y_i)^2 / 2.

    Parameters
    ----------
    a : numpy.ndarray, shape (n, d)
        The samples' features.
    y : numpy.ndarray, shape (n,)
        The targets.
    """

    def __init__(self, a: np.ndarray, y: np.ndarray):
        self.a, self.y = np.asarray(a, float), np.asarray(y, float)
        self.n, self.d = self.a.shape
        self.hessian = self.a.T @ self.a / self.n
        self.minimizer = np.linalg.solve(self.a.T @ self.a, self.a.T @ self.y)

    def per_sample_grads(self, x: np.ndarray) -> np.ndarray:
        """The per-sample gradients at m points.

        Parameters
        ----------
        x : numpy.ndarray, shape (d, m)

        Returns
        -------
        numpy.ndarray, shape (n, d, m)
        """
        x = np.asarray(x, float)[: self.d]
        r = self.a @ x - self.y[:, None]                    # (n, m)
        return self.a[:, :, None] * r[:, None, :]

    def loss(self, x: np.ndarray) -> np.ndarray:
        """The loss f at m points.

        Parameters
        ----------
        x : numpy.ndarray, shape (d, m)

        Returns
        -------
        numpy.ndarray, shape (m,)
        """
        x = np.asarray(x, float)[: self.d]
        return 0.5 * np.mean((self.a @ x - self.y[:, None]) ** 2, axis=0)

    def batch_grad(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Minibatch gradients of c chains.

        Parameters
        ----------
        x : numpy.ndarray, shape (c, d)
        idx : numpy.ndarray of int, shape (c, B)
            Each chain's minibatch.

        Returns
        -------
        numpy.ndarray, shape (c, d)
        """
        a = self.a[idx]                                     # (c, B, d)
        r = np.einsum("cbd,cd->cb", a, x) - self.y[idx]
        return np.einsum("cbd,cb->cd", a, r) / idx.shape[1]

    def formulas(self, batch: int, replacement: bool = True) -> tuple[str, list]:
        """f and SGD's diffusion D(x) = c Sigma(x) as plain formulas in x0, ..., x_{d-1} (for fpjko.model.Model).

        Both are quadratic polynomials with coefficients from the data: f(x) = x^T H x / 2 - g0 . x + c0 and, with
        r_i = a_i . x - y_i and gbar = H x - g0,
        Sigma_jk(x) = (1/n) sum_i r_i^2 a_ij a_ik - gbar_j gbar_k = x^T Q_jk x + l_jk . x + k_jk
        (c = 1 with replacement, (n - B) / (n - 1) without), so the model is exact: no interpolation of D.

        Parameters
        ----------
        batch : int
        replacement : bool

        Returns
        -------
        V : str
        D : list of list of str, shape (d, d)
        """
        a, y, n, d = self.a, self.y, self.n, self.d
        H, g0 = self.hessian, a.T @ y / n
        c = 1.0 if replacement else ((n - batch) / (n - 1) if n > 1 else 0.0)
        xs = [f"x{i}" for i in range(d)]

        def poly(Q, lin, const):
            terms = [f"({float(Q[p, q])!r})*{xs[p]}*{xs[q]}" for p in range(d) for q in range(d) if Q[p, q] != 0.0]
            terms += [f"({float(lin[p])!r})*{xs[p]}" for p in range(d) if lin[p] != 0.0]
            return " + ".join(terms + [f"({float(const)!r})"])

        V = poly(0.5 * H, -g0, 0.5 * float(np.mean(y ** 2)))
        D = [[None] * d for _ in range(d)]
        for j in range(d):
            for k in range(d):
                w = a[:, j] * a[:, k]
                Q = np.einsum("i,ip,iq->pq", w, a, a) / n - np.outer(H[j], H[k])
                lin = -2.0 * np.einsum("i,i,ip->p", w, y, a) / n + H[j] * g0[k] + H[k] * g0[j]
                const = float(w @ (y * y)) / n - g0[j] * g0[k]
                D[j][k] = poly(c * Q, c * lin, c * const)
        return V, D

    def potential_ufl(self):
        """f as a polynomial in x that UFL and numpy both evaluate.

        Returns
        -------
        callable
            x -> f(x), x a UFL SpatialCoordinate or an array of shape (d, m).
        """
        H, g0 = self.hessian, self.a.T @ self.y / self.n
        c0 = 0.5 * float(np.mean(self.y**2))
        d = self.d
        return lambda x: (0.5 * sum(H[i, j] * x[i] * x[j] for i in range(d) for j in range(d))
                          - sum(g0[i] * x[i] for i in range(d)) + c0)
