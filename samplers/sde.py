"""Euler-Maruyama for dX = b(X, t) dt + sqrt(2/beta D(X)) dW, particles as rows of x (n, d).

Its law solves rho_t = -div(b rho) + beta^-1 sum_ij d_i d_j (D_ij rho) (Ito), the Fokker-Planck
equation of solvers.FokkerPlanckSolver with b = -grad f (+ a non-gradient drift).
D may be None (identity), a constant SPD (d, d) matrix or a callable D(x) -> (n, d, d); the
per-particle Cholesky factors are computed vectorised (closed form for d <= 2).
`rng` is a fpjko.samplers.streams.Streams (rank-count-independent, MPI-split) or a numpy Generator.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import agree, any_stop, collectively
from fpjko.common.progress import bar as progress_bar


def cholesky_batch(D: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """Lower Cholesky factors of SPD matrices; ValueError naming the first non-SPD one (and its point).

    Parameters
    ----------
    D : numpy.ndarray, shape (n, d, d)
    x : numpy.ndarray, shape (n, d), optional
        The points, for the error message.

    Returns
    -------
    numpy.ndarray, shape (n, d, d)
    """
    D = np.asarray(D, dtype=float)
    n, d = D.shape[0], D.shape[-1]
    if D.shape[1:] != (d, d):
        raise ValueError(f"diffusion must have shape (n, d, d), got {D.shape}")
    _check_finite_D(D, x)
    if not np.allclose(D, np.swapaxes(D, 1, 2), rtol=1e-12, atol=1e-14 * max(1.0, float(np.abs(D).max(initial=0)))):
        i = int(np.argmax(np.abs(D - np.swapaxes(D, 1, 2)).reshape(n, -1).max(axis=1)))
        raise ValueError(_where("diffusion D is not symmetric", D, x, i))
    L = np.zeros_like(D)
    if d == 1:
        bad = ~(D[:, 0, 0] > 0)
        L[:, 0, 0] = np.sqrt(np.where(bad, 1.0, D[:, 0, 0]))
    elif d == 2:
        a, b, c = D[:, 0, 0], D[:, 1, 0], D[:, 1, 1]
        l11 = np.sqrt(np.where(a > 0, a, 1.0))
        l21 = b / l11
        s = c - l21 * l21
        bad = ~(a > 0) | ~(s > 0)
        L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l11, l21, np.sqrt(np.where(bad, 1.0, s))
    else:
        try:
            return np.linalg.cholesky(D)
        except np.linalg.LinAlgError:
            ev = np.linalg.eigvalsh(D)
            bad = ev[:, 0] <= 0
    if bad.any():
        raise ValueError(_where("diffusion D is not positive definite", D, x, int(np.argmax(bad))))
    return L


def _check_finite_D(D: np.ndarray, x) -> None:
    """ValueError naming the first matrix of D (n, d, d) that is not finite: the model's value, not the step's."""
    if not np.all(np.isfinite(D)):
        i = int(np.argmax(~np.isfinite(D).reshape(len(D), -1).all(axis=1)))
        raise ValueError(_where("diffusion D is not finite (the model's value, not a time-step problem)",
                                np.nan_to_num(D), x, i))


def _where(msg, D, x, i) -> str:
    at = f" at x={np.array2string(np.asarray(x)[i], precision=6)}" if x is not None else ""
    return (f"{msg} for particle {i}{at}: D={np.array2string(D[i], precision=6).replace(chr(10), '')}, "
            f"eigenvalues {np.array2string(np.linalg.eigvalsh(0.5 * (D[i] + D[i].T)), precision=6)}")


def _normal(rng, n, d):
    if hasattr(rng, "n_local"):
        return rng.standard_normal((d,))
    return rng.standard_normal((n, d))


def _blow_up(x, step, dt, offset: int = 0) -> str | None:
    if np.all(np.isfinite(x)):
        return None
    i = int(np.argmax(~np.isfinite(x).all(axis=1)))
    if step == 0:
        return f"initial particle {offset + i} is not finite: x={x[i]}"
    return (f"particles blew up at step {step} (particle {offset + i}); dt={dt} is too large "
            f"for this drift (explicit Euler-Maruyama is unstable)")


def _drift_problem(b, x, step, drift, offset: int = 0, huge: float = np.inf) -> str | None:
    """A drift that is not finite at finite particles of a sane size is the model's fault, not the step's: name it
    (the drift's own `diagnose(x_i)` says which field, where it has one). A particle beyond `huge` has blown up."""
    if np.all(np.isfinite(b)):
        return None
    i = int(np.argmax(~np.all(np.isfinite(b), axis=1)))
    if not np.all(np.abs(x[i]) <= huge):
        return None                                   # the particle blew up (or is not finite): _blow_up reports it
    why = drift.diagnose(x[i]) if hasattr(drift, "diagnose") else f"drift(x, t) = {b[i].tolist()} at x = {x[i].tolist()}"
    return (f"the drift is not finite at step {step} for particle {offset + i} at x = {x[i].tolist()}: {why} "
            "(the model's value, not a time-step problem)")


def _check_finite(x, step, dt, comm=None, offset: int = 0):
    """Collective over comm: FloatingPointError on every rank if any rank's particles are not finite."""
    agree(comm, _blow_up(x, step, dt, offset), FloatingPointError)


def _arguments(x0, beta, dt, steps, record_every, rng) -> str | None:
    """What is wrong with euler_maruyama's arguments on this rank, or None."""
    msg = (checks.problem(checks.positive_number, "beta", beta) or checks.problem(checks.positive_number, "dt", dt)
           or checks.problem(checks.integer, "steps", steps, 0)
           or checks.problem(checks.integer, "record_every", record_every, 0))
    if msg:
        return msg
    x = np.asarray(x0)
    if x.ndim != 2:
        return f"particles must be an (n, d) array, got shape {x.shape}"
    if hasattr(rng, "n_local") and rng.n_local != len(x):
        return f"rng streams hold {rng.n_local} local particles, x has {len(x)}"
    return None


def _drift_shape(b, x) -> str | None:
    b = np.asarray(b)
    if b.shape != x.shape:
        return f"drift(x, t) returned shape {b.shape} for particles of shape {x.shape}; it must match (n, d)"
    return None


def psd_factor_batch(D: np.ndarray, x: np.ndarray | None = None, rtol: float = 1e-10) -> np.ndarray:
    """Lower-triangular factors L (L L^T = D) of positive semi-definite matrices, e.g. a covariance that vanishes in
    some directions (from the symmetric root by a QR factorisation); ValueError naming the first matrix with an
    eigenvalue below -rtol times its size (or not symmetric).

    Parameters
    ----------
    D : numpy.ndarray, shape (n, d, d)
    x : numpy.ndarray, shape (n, d), optional
        The points, for the error message.
    rtol : float

    Returns
    -------
    numpy.ndarray, shape (n, d, d)
    """
    D = np.asarray(D, dtype=float)
    n = len(D)
    if n == 0:                                       # a rank without particles
        return D.copy()
    _check_finite_D(D, x)
    scale = np.abs(D).reshape(n, -1).max(axis=1, initial=0.0)
    if not np.allclose(D, np.swapaxes(D, 1, 2), rtol=1e-12, atol=1e-14 * max(1.0, float(scale.max(initial=0)))):
        i = int(np.argmax(np.abs(D - np.swapaxes(D, 1, 2)).reshape(n, -1).max(axis=1)))
        raise ValueError(_where("diffusion D is not symmetric", D, x, i))
    lam, V = np.linalg.eigh(0.5 * (D + np.swapaxes(D, 1, 2)))
    bad = lam[:, 0] < -rtol * scale
    if bad.any():
        raise ValueError(_where("diffusion D is not positive semi-definite", D, x, int(np.argmax(bad))))
    # the symmetric root V diag(lambda_+)^(1/2) made lower triangular (apply_factor takes lower-triangular factors):
    # its transpose is Q R, so L = R^T has L L^T = R^T R = D
    root = V * np.sqrt(np.maximum(lam, 0.0))[:, None, :]
    R = np.linalg.qr(np.swapaxes(root, 1, 2), mode="r")
    return np.swapaxes(R, 1, 2)


def noise_factor(diffusion, d: int, semidefinite: bool = False):
    """The noise's factor L(x, t) with L L^T = D.

    Parameters
    ----------
    diffusion : None, array_like (d, d) or callable
        D: None (the identity), a constant SPD matrix (factorised once here) or a callable D(x) or D(x, t)
        returning (n, d, d).
    d : int
        The dimension.
    semidefinite : bool
        A callable D may be positive semi-definite (a covariance: psd_factor_batch), not only definite.

    Returns
    -------
    callable
        (x, t) -> None (identity), the constant factor (d, d) or per-particle factors (n, d, d).
    """
    if diffusion is None:
        return lambda x, t: None
    if callable(diffusion):
        factor = psd_factor_batch if semidefinite else cholesky_batch
        if _takes_time(diffusion):
            return lambda x, t: factor(diffusion(x, t), x)
        return lambda x, t: factor(diffusion(x), x)
    D = np.asarray(diffusion, dtype=float)
    if D.shape != (d, d):
        raise ValueError(f"constant diffusion must be ({d}, {d}), got {D.shape}")
    L = cholesky_batch(D[None])[0]
    return lambda x, t: L


def _takes_time(fn) -> bool:
    try:
        return len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):
        return False


def apply_factor(L, xi: np.ndarray) -> np.ndarray:
    """L xi for a factor from noise_factor.

    Parameters
    ----------
    L : None, numpy.ndarray (d, d) or (n, d, d)
    xi : numpy.ndarray, shape (n, d)

    Returns
    -------
    numpy.ndarray, shape (n, d)
    """
    if L is None:
        return xi
    if L.ndim == 2:
        return xi @ L.T
    if L.shape[-1] == 2:            # faster than einsum for the common 2D case
        return np.stack([L[:, 0, 0] * xi[:, 0], L[:, 1, 0] * xi[:, 0] + L[:, 1, 1] * xi[:, 1]], axis=1)
    return np.einsum("nij,nj->ni", L, xi)


def euler_maruyama(x0: np.ndarray, drift: Callable, beta: float, dt: float, steps: int, rng,
                   diffusion=None, t0: float = 0.0, record_every: int = 0, callback=None, noise: bool = True,
                   semidefinite: bool = False):
    """Advance particles by `steps` Euler-Maruyama steps of dX = drift dt + sqrt(2/beta D) dW.

    With Streams as rng the checks are collective: bad arguments, a non-finite start, a non-SPD D or a blow-up
    on any rank raise the same error on every rank.

    Parameters
    ----------
    x0 : numpy.ndarray, shape (n, d)
    drift : callable
        drift(x, t) -> (n, d).
    beta : float
    dt : float
    steps : int
    rng : numpy.random.Generator or Streams
        The noise (Streams: one stream per block of particles, bitwise the same on any rank count).
    diffusion : None, array_like (d, d) or callable
        D: the identity, a constant SPD matrix, or D(x[, t]) -> (n, d, d).
    t0 : float
        The start time.
    record_every : int
        Keep a snapshot every this many steps (0: none).
    callback : callable, optional
        callback(step, t, x) after every step, on every rank; it may return True to stop early (then every rank
        stops), and an exception it raises on one rank is raised on every rank.
    noise : bool
        False: plain explicit Euler for dX = b dt (no random numbers are drawn).
    semidefinite : bool
        A callable D may be positive semi-definite (e.g. a gradient covariance that vanishes in some directions).

    Returns
    -------
    numpy.ndarray, shape (n, d)
        The particles after the last step; with record_every > 0 the tuple (x, snapshots of shape (k, n, d)).
    """
    comm, off = getattr(rng, "comm", None), getattr(rng, "lo", 0)
    agree(comm, _arguments(x0, beta, dt, steps, record_every, rng))
    x = np.array(x0, dtype=float, copy=True)
    _check_finite(x, 0, dt, comm, off)
    n, d = x.shape
    factor = collectively(comm, noise_factor, diffusion, d, semidefinite) if noise else None
    varying = noise and callable(diffusion)         # only a D(x) can fail (not SPD) during the run
    scale = np.sqrt(2.0 * dt / beta)
    huge = 1e8 * max(1.0, float(np.abs(x).max(initial=0.0)))     # a particle beyond this has blown up
    rec, t = [], t0
    pbar = progress_bar(steps, "particle steps", comm.rank if comm is not None else 0)
    for k in range(1, steps + 1):
        pbar.update()
        L = (collectively(comm, factor, x, t) if varying else factor(x, t)) if noise else None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):     # blow-up is reported below
            b = drift(x, t)
            if k == 1:
                agree(comm, _drift_shape(b, x))
            blame = _drift_problem(b, x, k, drift, off, huge)
            if blame is None:
                x += dt * b
                if noise:
                    x += scale * apply_factor(L, _normal(rng, n, d))
        t = t0 + k * dt
        agree(comm, blame or _blow_up(x, k, dt, off), FloatingPointError)
        if record_every and k % record_every == 0:
            rec.append(x.copy())
        if callback is not None:
            if any_stop(comm, callback, k, t, x):                           # stop (or fail) on every rank together
                break
            bad = None if np.all(np.isfinite(x)) else int(np.argmax(~np.isfinite(x).all(axis=1)))
            agree(comm, None if bad is None else f"the callback left particle {off + bad} not finite after step {k} "
                                                 f"(x = {x[bad].tolist()})", ValueError)
    pbar.close()
    return (x, np.array(rec)) if record_every else x


def langevin(x0, grad_f: Callable, beta: float, dt: float, steps: int, rng, diffusion=None, **kw):
    """Noisy gradient descent dX = -grad f(X) dt + sqrt(2/beta D(X)) dW (Euler-Maruyama).

    Parameters
    ----------
    x0 : numpy.ndarray, shape (n, d)
    grad_f : callable
        grad f(x), x of shape (n, d) -> (n, d).
    beta : float
    dt : float
    steps : int
    rng : numpy.random.Generator or Streams
    diffusion : None, array_like (d, d) or callable
        D, as for euler_maruyama.
    **kw
        Passed to euler_maruyama.

    Returns
    -------
    numpy.ndarray, shape (n, d)
        As euler_maruyama returns.
    """
    return euler_maruyama(x0, lambda x, t: -grad_f(x), beta, dt, steps, rng, diffusion=diffusion, **kw)
