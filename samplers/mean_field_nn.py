"""Mean-field two-layer networks: neurons trained by SGD, and the continuous-time model, split across ranks.

Prediction f(x) = (1/N) sum_i sigma(<theta_i, x>), square loss (f(x) - y)^2 / 2. With the data
distribution P (fresh Gaussian samples and a teacher, or a finite data set of M points),
    Psi(theta; rho) = E_P[(f_rho(x) - y) sigma(<theta, x>)],   f_rho(x) = int sigma(<theta', x>) rho(dtheta'),
so grad Psi(theta; rho) = E_P[g(theta, x, y)], g = (f_rho(x) - y) sigma'(<theta, x>) x the per-sample gradient,
and Sigma(theta; rho) = Cov_P[g(theta, x, y)].

Which particle system has which limit (the tests measure each):
- `TwoLayerMeanField.train`: online SGD as practitioners run it. Every neuron sees the same sample(s) in
  a step (common noise, Streams.shared / the data stream), step gamma N^b, so one step advances the
  mean-field time by h = gamma N^(b-1).
    b < 1: h -> 0 and the empirical measure of the neurons converges to the deterministic continuity
           equation rho_t = div(rho grad Psi(theta; rho)) (SGD noise of size h^(1/2) per unit time:
           squared distance ~ N^-(1-b), besides the N^-1 of the initial sample).
    b = 1: h = gamma does not vanish and the noise, shared by all neurons, does not average out: the
           measure stays random as N grows (the spread over data seeds does not decay with N). It does
           NOT converge to a deterministic PDE.
- `continuous_time`: d theta_k = -grad Psi(theta_k; nu_N) dt + (gamma Sigma(theta_k; nu_N))^(1/2) dB_k
  (+ (2 T)^(1/2) dW_k) with independent Brownian motions per neuron: the diffusive model of SGD at b = 1
  with independent noise. Its limit is the McKean-Vlasov equation
    rho_t = div(rho grad Psi) + (gamma/2) d_ij(rho Sigma_ij) + T Laplacian(rho),
  approached at the rate N^-1 for the squared distance (the noiseless PDE is not its limit).
- temperature T alone (gamma = 0): noisy gradient descent / mean-field Langevin, limit
  rho_t = div(rho grad Psi) + T Laplacian(rho).
Runs are rank-count independent: neurons are split by Streams, all sums are block-ordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import agree
from fpjko.samplers.sde import euler_maruyama
from fpjko.samplers.streams import Streams

ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "linear": (lambda z: z, np.ones_like),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
}


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


@dataclass
class TeacherData:
    """A finite data set; the population is the uniform law on it.

    Psi, Sigma and the risk are then exact finite sums (the mean-field PDE's features, rank M). A neuron's feature
    is phi(theta, x) = sigma(<theta, x>) (theta in R^d, d the inputs), or with output_weight=True
    phi(theta, x) = a sigma(<u, x>) for theta = (a, u) in R^(1 + d) (both layers trained).

    Parameters
    ----------
    X : numpy.ndarray, shape (M, d)
        The inputs.
    Y : numpy.ndarray, shape (M,)
        The labels.
    activation : {'tanh', 'linear', 'relu'}
        The neurons' activation.
    output_weight : bool
        The feature a sigma(<u, x>) of a neuron (a, u).
    """
    X: np.ndarray
    Y: np.ndarray
    activation: str = "tanh"
    output_weight: bool = False

    def __post_init__(self):
        self.X = np.atleast_2d(np.asarray(self.X, float))
        self.Y = np.asarray(self.Y, float).ravel()
        if len(self.Y) != len(self.X):
            raise ValueError(f"{len(self.X)} inputs but {len(self.Y)} labels")
        if not (np.all(np.isfinite(self.X)) and np.all(np.isfinite(self.Y))):
            raise ValueError("data set contains NaN or inf")
        self.sigma, self.dsigma = _activation(self.activation)
        M, d = self.X.shape
        self.XX = (self.X[:, :, None] * self.X[:, None, :]).reshape(M, d * d)

    @classmethod
    def teacher(cls, M: int, theta_star, seed: int = 0, activation: str = "tanh") -> "TeacherData":
        """M Gaussian inputs labelled by the teacher y = mean_k sigma(<theta*_k, x>) (theta_star (K, d))."""
        theta_star = np.atleast_2d(np.asarray(theta_star, float))
        X = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(11,))).standard_normal((M, theta_star.shape[1]))
        sig, _ = _activation(activation)
        return cls(X, sig(X @ theta_star.T).mean(axis=1), activation)

    @property
    def M(self) -> int:
        """The number of data points.

        Returns
        -------
        int
        """
        return len(self.Y)

    @property
    def dim(self) -> int:
        """The neurons' dimension: d, or 1 + d with output weights."""
        return self.X.shape[1] + (1 if self.output_weight else 0)

    def _split(self, theta):
        theta = np.asarray(theta, float)
        return (theta[:, 0], theta[:, 1:]) if self.output_weight else (None, theta)

    def features(self, theta: np.ndarray) -> np.ndarray:
        """phi(theta, x_m): sigma(<theta, x_m>), or a sigma(<u, x_m>) with output weights.

        Parameters
        ----------
        theta : numpy.ndarray, shape (n, dim)

        Returns
        -------
        numpy.ndarray, shape (n, M)
        """
        a, u = self._split(theta)
        s = self.sigma(u @ self.X.T)
        return s if a is None else a[:, None] * s

    def risk(self, c: np.ndarray) -> float:
        """R = 1/2 mean_m (f(x_m) - y_m)^2.

        Parameters
        ----------
        c : numpy.ndarray, shape (M,)
            The predictions c_m = f(x_m).

        Returns
        -------
        float
        """
        return 0.5 * float(np.mean((np.asarray(c) - self.Y) ** 2))

    def activations(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sigma(<u, x_m>) and sigma'(<u, x_m>) from one evaluation (tanh' = 1 - tanh^2); u = theta without
        output weights.

        Parameters
        ----------
        theta : numpy.ndarray, shape (n, dim)

        Returns
        -------
        s, ds : numpy.ndarray, shape (n, M)
        """
        z = self._split(theta)[1] @ self.X.T
        sig = self.sigma(z)
        return sig, (1.0 - sig * sig if self.activation == "tanh" else self.dsigma(z))

    def statistics(self, theta: np.ndarray, c: np.ndarray, covariance: bool = True, parts=None):
        """grad Psi = mean_m g_m and Sigma = mean_m g_m g_m^T - grad Psi grad Psi^T for the per-sample gradient
        g_m = (c_m - y_m) grad_theta phi(theta, x_m): (c_m - y_m) sigma'_m x_m, or with output weights
        (c_m - y_m) (sigma_m, a sigma'_m x_m).

        Parameters
        ----------
        theta : numpy.ndarray, shape (n, dim)
        c : numpy.ndarray, shape (M,)
            The predictions f(x_m).
        covariance : bool
            Also compute Sigma.
        parts : (s, ds), optional
            activations(theta), when already computed.

        Returns
        -------
        grad_psi : numpy.ndarray, shape (n, dim)
            Alone without covariance.
        sigma : numpy.ndarray, shape (n, dim, dim)
            Only with covariance.
        """
        a, _ = self._split(theta)
        s, ds = self.activations(theta) if parts is None else parts
        r = np.asarray(c) - self.Y                                           # (M,)
        w = ds * r[None, :]                                                  # (n, M)
        gu = w @ self.X / self.M
        d = self.X.shape[1]
        if a is None:
            if not covariance:
                return gu
            second = ((w * w) @ self.XX / self.M).reshape(len(w), d, d)
            return gu, second - gu[:, :, None] * gu[:, None, :]
        g = np.concatenate([(s @ r / self.M)[:, None], a[:, None] * gu], axis=1)
        if not covariance:
            return g
        r2 = r * r
        second = np.empty((len(w), d + 1, d + 1))
        second[:, 0, 0] = (s * s) @ r2 / self.M
        second[:, 0, 1:] = second[:, 1:, 0] = a[:, None] * ((s * ds * r2[None, :]) @ self.X) / self.M
        second[:, 1:, 1:] = (a * a)[:, None, None] * ((w * w) @ self.XX / self.M).reshape(len(w), d, d)
        return g, second - g[:, :, None] * g[:, None, :]

    def gradient_statistics(self, ds: np.ndarray, c: np.ndarray, covariance: bool = True):
        """statistics() for the plain feature sigma(<theta, x>) from sigma' alone (kept for callers that have it).

        Parameters
        ----------
        ds : numpy.ndarray, shape (n, M)
            sigma'(<theta, x_m>).
        c : numpy.ndarray, shape (M,)
            The predictions f(x_m).
        covariance : bool
            Also compute Sigma.

        Returns
        -------
        grad_psi : numpy.ndarray, shape (n, d)
            Alone without covariance.
        sigma : numpy.ndarray, shape (n, d, d)
            Only with covariance.
        """
        if self.output_weight:
            raise ValueError("gradient_statistics needs the neurons with output weights: call statistics(theta, c)")
        return self.statistics(np.zeros((len(ds), self.X.shape[1])), c, covariance, parts=(None, ds))

    def grad_psi(self, theta: np.ndarray, c: np.ndarray) -> np.ndarray:
        """grad Psi(theta) = mean_m (c_m - y_m) grad_theta phi(theta, x_m).

        Parameters
        ----------
        theta : numpy.ndarray, shape (n, dim)
        c : numpy.ndarray, shape (M,)
            The predictions f(x_m).

        Returns
        -------
        numpy.ndarray, shape (n, dim)
        """
        return self.statistics(theta, c, covariance=False)

    def noise_covariance(self, theta: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Sigma(theta) = Cov_m[(c_m - y_m) grad_theta phi(theta, x_m)].

        Parameters
        ----------
        theta : numpy.ndarray, shape (n, dim)
        c : numpy.ndarray, shape (M,)
            The predictions f(x_m).

        Returns
        -------
        numpy.ndarray, shape (n, dim, dim)
        """
        return self.statistics(theta, c)[1]


@dataclass
class TwoLayerMeanField:
    """Student network of N = streams.n neurons; theta holds this rank's neurons (n_local, d).

    Parameters
    ----------
    streams : fpjko.samplers.streams.Streams
        The neurons' streams and their split over ranks.
    teacher : callable, optional
        Labels y = teacher(x) for fresh inputs x ~ N(0, I) (online SGD).
    activation : {'tanh', 'linear', 'relu'}
        Taken from the data set when one is given.
    data : TeacherData, optional
        A finite data set whose points are sampled uniformly (all neurons see the same sample in a step).
    history : dict
        {'t': [...], 'risk': [...]}, appended to by train() every record_every steps.
    """
    streams: Streams
    teacher: Callable[[np.ndarray], np.ndarray] | None = None
    activation: str = "tanh"
    data: TeacherData | None = None
    history: dict = field(default_factory=lambda: {"t": [], "risk": []})

    def __post_init__(self):
        if (self.teacher is None) == (self.data is None):
            raise ValueError("give either a teacher (online Gaussian inputs) or a data set (TeacherData)")
        if self.data is not None:
            self.activation = self.data.activation
        self.sigma, self.dsigma = _activation(self.activation)

    def predict(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """f(x): the mean over all N neurons (deterministic block-order sum).

        Parameters
        ----------
        theta : numpy.ndarray, shape (n_local, d)
        x : numpy.ndarray, shape (m, d)

        Returns
        -------
        numpy.ndarray, shape (m,)
        """
        return self.streams.mean(self.sigma(theta @ x.T))

    def risk(self, theta: np.ndarray, x: np.ndarray | None = None) -> float:
        """The square-loss risk on inputs x (teacher labels), or on the data set.

        Parameters
        ----------
        theta : numpy.ndarray, shape (n_local, d)
        x : numpy.ndarray, shape (m, d), optional
            Test inputs (None: the data set).

        Returns
        -------
        float
        """
        if x is None:
            return self.data.risk(self.predict(theta, self.data.X))
        return 0.5 * float(np.mean((self.predict(theta, x) - self.teacher(x)) ** 2))

    def train(self, theta0: np.ndarray, gamma: float, b: float, t_end: float, batch: int = 1,
              data_seed: int = 0, test_x: np.ndarray | None = None, record_every: int = 0,
              callback=None) -> np.ndarray:
        """Online SGD with step gamma N^b up to mean-field time t_end.

        The samples are drawn from a stream seeded by data_seed alone (shared by all ranks), so the initial neurons
        and the SGD noise can be varied independently.

        Parameters
        ----------
        theta0 : numpy.ndarray, shape (n_local, d)
        gamma : float
        b : float
            The step is gamma N^b (b < 1: deterministic limit; b = 1: common noise).
        t_end : float
            Mean-field time.
        batch : int
        data_seed : int
        test_x : numpy.ndarray, shape (m, d), optional
            Inputs of the recorded test risk.
        record_every : int
            Steps between records (0: none).
        callback : callable, optional
            callback(step, t, theta) after every step (t the mean-field time); it may return True to stop.

        Returns
        -------
        numpy.ndarray, shape (n_local, d)
            The local neurons.
        """
        comm = self.streams.comm
        agree(comm, checks.problem(checks.positive_number, "gamma", gamma) or checks.problem(checks.number, "b", b)
              or checks.problem(checks.integer, "batch", batch, 1))
        N = self.streams.n
        h = gamma * N ** (b - 1.0)                          # mean-field time per step
        steps = _steps(comm, t_end, h)
        rng = np.random.default_rng(np.random.SeedSequence(data_seed, spawn_key=(7,)))
        theta = np.array(theta0, dtype=float, copy=True)
        d = theta.shape[1]
        for k in range(1, steps + 1):
            if self.data is None:
                x = rng.standard_normal((batch, d))
                y = self.teacher(x)
            else:
                idx = rng.integers(0, self.data.M, batch)
                x, y = self.data.X[idx], self.data.Y[idx]
            z = theta @ x.T                                 # (n_local, batch)
            r = self.streams.mean(self.sigma(z)) - y        # residual (batch,), the same on every rank
            theta -= (h / batch) * (self.dsigma(z) * r[None, :]) @ x
            agree(comm, None if np.all(np.isfinite(theta)) else
                  f"SGD diverged at step {k}: gamma={gamma}, b={b} too large", FloatingPointError)
            if record_every and k % record_every == 0:
                self.history["t"].append(k * h)
                self.history["risk"].append(self.risk(theta, test_x) if self.data is None or test_x is not None
                                            else self.risk(theta))
            if callback is not None and callback(k, k * h, theta):
                break
        return theta


def continuous_time(theta0: np.ndarray, streams: Streams, data: TeacherData, gamma: float, t_end: float,
                    dt: float, temperature: float = 0.0, record_every: int = 0, callback=None):
    """Euler-Maruyama for d theta_k = -grad Psi(theta_k; nu_N) dt + (gamma Sigma(theta_k; nu_N))^(1/2) dB_k
    + (2 temperature)^(1/2) dW_k, independent noise per neuron, Psi and Sigma from the data set (O(N M) per
    step). theta0: this rank's neurons (streams.n_local, d). Returns the local neurons (and snapshots with
    record_every, as fpjko.samplers.sde.euler_maruyama)."""
    agree(streams.comm, checks.problem(checks.number, "gamma", gamma, nonnegative=True)
          or checks.problem(checks.number, "temperature", temperature, nonnegative=True))
    d = data.dim
    cache = {}

    def at(x, t):
        """grad Psi and Sigma at the neurons x, from f_N(x_m) (block-ordered over all ranks), once per step."""
        if cache.get("t") != t:
            parts = data.activations(x)
            c = streams.mean(parts[0] if not data.output_weight else x[:, :1] * parts[0])
            cache["t"], cache["stats"] = t, data.statistics(x, c, covariance=gamma > 0, parts=parts)
        return cache["stats"]

    def drift(x, t):
        stats = at(x, t)
        return -(stats[0] if gamma > 0 else stats)

    noise = None
    if gamma > 0 or temperature > 0:
        def noise(x, t):                                    # euler_maruyama with beta = 2 adds sqrt(dt D) xi
            D = gamma * at(x, t)[1] if gamma > 0 else np.zeros((len(x), d, d))
            return D + 2.0 * temperature * np.eye(d)
    steps = _steps(streams.comm, t_end, dt)
    return euler_maruyama(theta0, drift, 2.0, dt, steps, streams, diffusion=noise, record_every=record_every,
                          callback=callback, noise=noise is not None, semidefinite=True)


def _steps(comm, t_end, h) -> int:
    """round(t_end / h) after collective checks that both are finite, t_end >= 0 and h > 0."""
    agree(comm, checks.problem(checks.number, "t_end", t_end, nonnegative=True)
          or checks.problem(checks.positive_number, "time step", h))
    return int(round(t_end / h))

