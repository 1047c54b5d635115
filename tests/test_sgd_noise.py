"""Minibatch-SGD noise: D(x) = B Cov[g_B] checked by enumerating every minibatch."""

import itertools

import numpy as np
import pytest

from fpjko.samplers import LeastSquares, gradient_covariance, minibatch_sgd, sgd_diffusion, sgd_temperature


def problem(n=6, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2)) * [1.0, 0.4]
    return LeastSquares(a, a @ [0.5, -1.0] + 0.3 * rng.normal(size=n))


@pytest.mark.parametrize("replacement", [True, False])
def test_diffusion_equals_batch_times_minibatch_covariance(replacement):
    p, B = problem(), 2
    x = np.array([[0.3, -2.0], [1.0, 0.4]]).T                        # two points, shape (d, m)
    G = p.per_sample_grads(x)                                          # (n, d, m)
    batches = (itertools.product(range(p.n), repeat=B) if replacement
               else itertools.combinations(range(p.n), B))
    gb = np.array([G[list(b)].mean(axis=0) for b in batches])          # every minibatch, equally likely
    cov = np.einsum("kim,kjm->ijm", gb - gb.mean(0), gb - gb.mean(0)) / len(gb)
    # measured 4.6e-16 relative (1.4e-17 absolute) and 2.8e-17
    np.testing.assert_allclose(sgd_diffusion(G, B, replacement), B * cov, rtol=3e-15, atol=1e-16)
    np.testing.assert_allclose(gb.mean(0), G.mean(0), atol=3e-16)    # unbiased


def test_least_squares_gradients_and_temperature():
    p = problem(n=30)
    x = np.array([[0.2], [-0.7]])
    eps = 1e-6
    fd = [(p.loss(x + eps * e[:, None]) - p.loss(x - eps * e[:, None])) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(p.per_sample_grads(x).mean(0)[:, 0], np.ravel(fd), rtol=3e-9)   # measured 4.6e-10
    idx = np.arange(p.n)[None, :]
    np.testing.assert_allclose(p.batch_grad(x.T, idx)[0], np.ravel(fd), rtol=3e-9)
    np.testing.assert_allclose(p.potential_ufl()(x), p.loss(x), rtol=2e-15)                  # measured 2.0e-16
    assert sgd_temperature(0.1, 5) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="batch"):
        sgd_diffusion(p.per_sample_grads(x), 0)
    assert gradient_covariance(p.per_sample_grads(x)).shape == (2, 2, 1)


def test_sgd_stationary_covariance_matches_lyapunov_prediction():
    """Small lr: the iterates' covariance solves H S + S H = 2 beta^-1 D(x*), beta^-1 = lr / (2B)."""
    from fpjko.references.gaussian import lyapunov

    p = problem(n=40, seed=3)
    lr, B = 0.02, 2
    rng = np.random.default_rng(0)
    x0 = np.tile(p.minimizer, (4000, 1))
    x = minibatch_sgd(p, x0, lr, B, steps=3000, rng=rng)
    emp = np.cov(x.T)
    Dstar = sgd_diffusion(p.per_sample_grads(p.minimizer[:, None]), B)[:, :, 0]
    pred = lyapunov(p.hessian, 2 * sgd_temperature(lr, B) * Dstar)
    se = np.sqrt((pred**2 + np.outer(np.diag(pred), np.diag(pred))) / len(x))   # Wishart std errors
    # measured at most 1.4 standard errors (one seed; the 5% allows the O(lr) bias of SGD)
    assert np.all(np.abs(emp - pred) < 4 * se + 0.05 * np.abs(pred).max()), (emp, pred)
