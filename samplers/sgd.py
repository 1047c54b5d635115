"""Minibatch SGD on a finite data set, many independent chains at once (numpy only).

The noise comes from sampling the minibatch, none is added."""

from __future__ import annotations

import numpy as np


def minibatch_sgd(problem, x0: np.ndarray, lr: float, batch: int, steps: int, rng: np.random.Generator,
                  replacement: bool = True, record_every: int = 0):
    """Run c independent minibatch-SGD chains x <- x - lr g_B(x) for `steps` steps.

    Parameters
    ----------
    problem : object
        With n (the number of samples) and batch_grad(x, idx) -> (c, d) (e.g. LeastSquares).
    x0 : numpy.ndarray, shape (c, d)
        The chains' starts.
    lr : float
    batch : int
    steps : int
    rng : numpy.random.Generator
    replacement : bool
        Minibatches drawn with replacement (else without, within a batch).
    record_every : int
        Keep the iterates every this many steps (0: none).

    Returns
    -------
    numpy.ndarray, shape (c, d)
        The final iterates; with record_every > 0 the tuple (x, recorded iterates of shape (k, c, d)).
    """
    x = np.array(x0, dtype=float, copy=True)
    c, n = x.shape[0], problem.n
    if not np.all(np.isfinite(x)):
        raise ValueError("initial SGD iterates contain NaN or inf")
    rec = []
    for k in range(steps):
        if replacement:
            idx = rng.integers(0, n, size=(c, batch))
        else:
            idx = np.argsort(rng.random((c, n)), axis=1)[:, :batch]
        x -= lr * problem.batch_grad(x, idx)
        if record_every and (k + 1) % record_every == 0:
            rec.append(x.copy())
    if not np.all(np.isfinite(x)):
        raise FloatingPointError(f"SGD diverged (lr={lr} too large for this problem?)")
    return (x, np.array(rec)) if record_every else x
