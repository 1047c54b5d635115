"""Entropy-SGD and Elastic-SGD as coupled SDEs, and the homogenized flow they converge to (numpy; mpi4py optional).

Elastic-SGD: a centre x and K replicas y^k (Chaudhari et al., "Deep relaxation", section 4):

    dx   = -gamma^-1 (x - mean_k y^k) ds                                   [+ (2 / beta_x)^(1/2) dB]
    dy^k = -eps^-1 grad_y [f(y^k) + |y^k - x|^2 / (2 gamma)] ds + (2 / (beta eps))^(1/2) dW^k.

Entropy-SGD is K = 1. As eps -> 0 the replicas equilibrate in rho_x(y) ~ exp(-beta (f(y) + |x - y|^2 / (2 gamma)))
on the fast time scale and x follows the homogenized flow dX = -grad f_gamma(X) ds (plus the optional outer noise,
which makes X a Langevin process on f_gamma with stationary law exp(-beta_x f_gamma)).

Time step: Euler–Maruyama with step ds = eps / 400 by default. The fast process is discretised with step
ds / eps in its own time, and the invariant law of Euler–Maruyama is biased by O(ds / eps); with ds = eps / 40 that
bias leaves an error floor of about 5e-3 in x(s = 1) whatever eps (measured on f = (y^2 - 1)^2 + 0.3 y,
beta 4, gamma 0.5), above the homogenization error at eps = 0.01; eps / 400 puts it an order lower.

Random numbers: replica k has its own stream (fpjko.samplers.streams.Streams with one replica per block), the
optional outer noise the shared stream, and the replica mean is summed in replica order, so trajectories are
bitwise the same for any number of MPI ranks; replicas are split across ranks (a rank may hold none) and the
centre is updated identically on every rank: the mean is the allreduce of distributed training.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import agree
from fpjko.common.progress import bar as progress_bar
from fpjko.samplers.streams import Streams


def elastic_sgd(grad_f: Callable, x0, gamma: float, beta: float, eps: float, T: float, replicas: int = 1,
                runs: int = 1, seed: int = 0, ds: float | None = None, beta_x: float | None = None,
                record_every: int | None = None, comm=None) -> dict:
    """Simulate Elastic-SGD (Entropy-SGD when replicas=1) for `runs` independent centres at once.

    grad_f: numpy callable (N, d) -> (N, d); x0: (d,) or (runs, d); gamma, beta, eps > 0; T: final time s;
    ds: Euler–Maruyama step (default eps / 400, see the module doc); beta_x: inverse temperature of an outer noise
    on x (None: none); record_every: steps between records of x (default: about 200 records).
    Returns {'s': (n_rec,), 'x': (n_rec, runs, d) centres, 'y': (replicas_local, runs, d) this rank's final
    replicas, 'steps': int, 'ds': float}.
    """
    gamma = checks.positive_number("gamma", gamma)
    beta = checks.positive_number("beta", beta)
    eps = checks.positive_number("eps", eps)
    T = checks.positive_number("T", T)
    K = checks.integer("replicas", replicas, 1)
    runs = checks.integer("runs", runs, 1)
    ds = eps / 400.0 if ds is None else checks.positive_number("ds", ds)
    if ds > 0.5 * eps:
        raise ValueError(f"ds={ds:g} > eps/2={eps / 2:g}: the fast replicas' Euler-Maruyama step is unstable or "
                         "badly biased; take ds <= eps/40 (default eps/400)")
    x0 = np.asarray(x0, dtype=float)
    if x0.ndim > 2 or (x0.ndim == 2 and len(x0) not in (1, runs)) or x0.size == 0:
        raise ValueError(f"x0 must have shape (d,) or ({runs}, d) for runs={runs}, got {x0.shape}")
    x = np.array(np.broadcast_to(x0.reshape(-1, x0.shape[-1]) if x0.ndim else x0.reshape(1, 1),
                                 (runs, x0.shape[-1] if x0.ndim else 1)), dtype=float)
    d = x.shape[1]
    steps = max(1, int(math.ceil(T / ds - 1e-9)))
    ds = T / steps
    every = checks.integer("record_every", record_every, 1) if record_every else max(1, steps // 200)
    streams = Streams(K, seed, comm=comm, block=1)
    y = np.broadcast_to(x, (streams.n_local, runs, d)).copy()
    a, b = ds / eps, math.sqrt(2.0 * ds / (beta * eps))
    outer = math.sqrt(2.0 * ds / beta_x) if beta_x else 0.0
    s_rec, x_rec = [0.0], [x.copy()]
    rank = streams.comm.rank if streams.comm is not None else 0
    pbar = progress_bar(steps, "Elastic-SGD steps" if K > 1 else "Entropy-SGD steps", rank)
    for k in range(1, steps + 1):
        pbar.update()
        xi = streams.standard_normal((runs, d))
        mean = streams.sum(y) / K
        if len(y):
            g = np.asarray(grad_f(y.reshape(-1, d)), dtype=float).reshape(y.shape)
            y = y - a * (g + (y - x[None]) / gamma) + b * xi
        x = x - ds / gamma * (x - mean)
        if outer:
            x = x + outer * streams.shared.standard_normal((runs, d))
        if k % every == 0 or k == steps:
            bad = None if np.all(np.isfinite(x)) and np.all(np.isfinite(y)) else \
                f"Elastic-SGD blew up by step {k} (s={k * ds:.4g}, ds={ds:g}); reduce ds or check grad_f"
            agree(streams.comm, bad, FloatingPointError)
            s_rec.append(k * ds)
            x_rec.append(x.copy())
    pbar.close()
    return {"s": np.array(s_rec), "x": np.array(x_rec), "y": y, "steps": steps, "ds": ds}


def entropy_sgd(grad_f: Callable, x0, gamma: float, beta: float, eps: float, T: float, **kw) -> dict:
    """Entropy-SGD: Elastic-SGD with one replica (see elastic_sgd)."""
    return elastic_sgd(grad_f, x0, gamma, beta, eps, T, replicas=1, **kw)


def homogenized_flow(grad: Callable, x0, T: float, ds: float = 1e-3, times=None) -> np.ndarray:
    """X' = -grad(X) by classical RK4 from x0 (runs, d) or (d,); returns X at `times` (default [T]),
    shape (len(times), runs, d). grad: numpy callable (N, d) -> (N, d), e.g. grad f_gamma from the FE solution."""
    T = checks.positive_number("T", T)
    x = np.atleast_2d(np.asarray(x0, float)).copy()
    times = np.atleast_1d(T if times is None else np.asarray(times, float))
    out, s, j = [], 0.0, 0
    n = max(1, int(math.ceil(T / ds)))
    h = T / n
    f = lambda z: -np.asarray(grad(z), float).reshape(z.shape)                # noqa: E731
    for k in range(n + 1):
        while j < len(times) and times[j] <= s + 1e-12:
            out.append(x.copy())
            j += 1
        if k == n:
            break
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        s += h
    return np.array(out)
