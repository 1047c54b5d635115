"""Mean-field two-layer network trained by online SGD, neurons split across MPI ranks.

Prediction f(x) = (1/N) sum_i sigma(<theta_i, x>); data x ~ N(0, I_d), label y = teacher(x); loss
(f(x) - y)^2 / 2 on a minibatch of `batch` fresh samples per step. SGD with step gamma N^b moves
each neuron by -gamma N^(b-1) (f(x) - y) sigma'(<theta_i, x>) x, so one step advances the mean-field
time by gamma N^(b-1) and
  b < 1: the empirical measure of the neurons converges to the deterministic continuity equation
         rho_t = div(rho grad Psi(theta; rho)), Psi = E[(f_rho(x) - y) sigma(<theta, x>)];
  b = 1: the step does not vanish, the SGD noise survives the limit (second-order term
         (gamma/2) d_ij(rho Sigma_ij) with Sigma the covariance of the per-sample gradient field).
All neurons see the same data in a step (Streams.shared), so runs are rank-count independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from samplers.streams import Streams

ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "linear": (lambda z: z, np.ones_like),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
}


@dataclass
class TwoLayerMeanField:
    """Student network of N = streams.n neurons; theta holds this rank's neurons (n_local, d)."""
    streams: Streams
    teacher: Callable[[np.ndarray], np.ndarray]
    activation: str = "tanh"
    history: dict = field(default_factory=lambda: {"t": [], "risk": []})

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        self.sigma, self.dsigma = ACTIVATIONS[self.activation]

    def predict(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """f(x) for data x (m, d): the mean over all N neurons (deterministic block-order sum)."""
        return self.streams.mean(self.sigma(theta @ x.T))

    def risk(self, theta: np.ndarray, x: np.ndarray) -> float:
        return 0.5 * float(np.mean((self.predict(theta, x) - self.teacher(x)) ** 2))

    def train(self, theta0: np.ndarray, gamma: float, b: float, t_end: float, batch: int = 1,
              data_seed: int = 0, test_x: np.ndarray | None = None, record_every: int = 0) -> np.ndarray:
        """Online SGD up to mean-field time t_end; returns the local neurons.

        The data stream is seeded by data_seed alone (shared by all ranks), so the initial neurons and
        the SGD noise can be varied independently."""
        if not (gamma > 0 and np.isfinite(gamma)):
            raise ValueError(f"gamma must be positive, got {gamma}")
        N = self.streams.n
        h = gamma * N ** (b - 1.0)                          # mean-field time per step
        steps = int(round(t_end / h))
        data = np.random.default_rng(np.random.SeedSequence(data_seed, spawn_key=(7,)))
        theta = np.array(theta0, dtype=float, copy=True)
        d = theta.shape[1]
        for k in range(1, steps + 1):
            x = data.standard_normal((batch, d))
            z = theta @ x.T                                 # (n_local, batch)
            r = self.streams.mean(self.sigma(z)) - self.teacher(x)          # residual (batch,)
            theta -= (h / batch) * (self.dsigma(z) * r[None, :]) @ x
            if not np.all(np.isfinite(theta)):
                raise FloatingPointError(f"SGD diverged at step {k}: gamma={gamma}, b={b} too large")
            if record_every and k % record_every == 0 and test_x is not None:
                self.history["t"].append(k * h)
                self.history["risk"].append(self.risk(theta, test_x))
        return theta
