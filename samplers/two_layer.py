"""A wide two-layer network trained by SGD as practitioners run it, in the mean-field scaling (numpy; scipy's BLAS
rank-one update when present), its N neurons split over MPI ranks.

    f(x) = (1/N) sum_k a_k sigma(<u_k, x> + c_k),     neuron theta_k = (a_k, u_k, c_k) in R^(C + p + 1),

a_k in R^C (C outputs), square loss |f(x) - y|^2 / 2 or softmax cross-entropy, activation relu, tanh or sigmoid.
SGD with step gamma N^beta on a minibatch of B samples moves each neuron by

    theta_k <- theta_k - gamma N^(beta - 1) (1/B) sum_b l'(f(x_b), y_b) . grad_theta [a_k sigma(<u_k, x_b> + c_k)],

so one step advances the mean-field time by h = gamma N^(beta - 1). Which particle system has which limit:

- mode='shared' (SGD as run: every neuron sees the same B samples, drawn from a stream of its own seed `data_seed`):
  beta < 1: h -> 0 and the empirical law of the neurons converges to the deterministic continuity equation
  rho_t = div(rho grad Psi(theta; rho)), Psi(theta; rho) = E[l'(f_rho(x), y) . a sigma(<u, x> + c)], with
  E sup_t |theta^N - theta*|^2 <= C N^-(1 - beta) (plus the N^-1 of the initial sample). beta = 1: h = gamma stays,
  and the noise, common to all neurons, does not average out: the law stays random as N grows (runs on independent
  data streams do not approach each other); runs on the same data stream from independent initialisations do
  (propagation of chaos given the data).
- mode='independent': each neuron draws its own B samples from its own stream (independent noise per neuron; the
  network is evaluated on the whole training set every step, O(M N p)). At beta = 1 its law converges to the
  McKean-Vlasov equation with the diffusion (gamma / (2B)) d_ij(rho Sigma_ij), Sigma the covariance over the data
  of the per-sample gradient (fpjko.solvers.network_pde for p <= 2).

Rank-count independence: the neurons are cut into fixed blocks (Streams, `block` neurons each), every sum over
neurons is a per-block product added in block order, and every per-block computation has the same shape on any
number of ranks, so runs are bitwise the same on 1 and 2 ranks (also with a rank holding no neurons).
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks
from fpjko.common.collective import agree, allgather_checked, any_stop, same_everywhere
from fpjko.samplers.streams import Streams, default_comm

try:                                                  # an in-place rank-one update (2-3x faster than numpy's)
    from scipy.linalg.blas import dger as _dger
except ImportError:                                   # pragma: no cover  (scipy is in the project's packages)
    _dger = None

ACTIVATIONS = ("relu", "tanh", "sigmoid")
LOSSES = ("square", "cross_entropy")
MODES = ("shared", "independent")
TAG_DATA, TAG_OWN = 0x5D, 0x0E                        # spawn keys of the shared data stream and per-neuron streams


def activation(name: str):
    """sigma and, from z and sigma(z), sigma'.

    Parameters
    ----------
    name : {'relu', 'tanh', 'sigmoid'}

    Returns
    -------
    (callable, callable)
        sigma(z) and dsigma(z, s) with s = sigma(z).
    """
    checks.one_of("activation", name, ACTIVATIONS)
    if name == "relu":
        return (lambda z: np.maximum(z, 0.0)), (lambda z, s: (z > 0).astype(float))
    if name == "tanh":
        return np.tanh, (lambda z, s: 1.0 - s * s)

    def sig(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))          # no overflow
    return sig, (lambda z, s: s * (1.0 - s))


def loss_gradient(loss: str, F: np.ndarray, y: np.ndarray):
    """The loss per sample and its gradient in the output.

    Parameters
    ----------
    loss : {'square', 'cross_entropy'}
    F : numpy.ndarray, shape (m, C)
        The network's outputs.
    y : numpy.ndarray
        Targets (m, C) for the square loss, class indices (m,) for the cross-entropy.

    Returns
    -------
    values : numpy.ndarray, shape (m,)
    grad : numpy.ndarray, shape (m, C)
    """
    if loss == "square":
        r = F - y
        return 0.5 * np.sum(r * r, axis=1), r
    Z = F - F.max(axis=1, keepdims=True)
    logZ = np.log(np.sum(np.exp(Z), axis=1))
    P = np.exp(Z - logZ[:, None])
    idx = np.arange(len(F))
    values = logZ - Z[idx, y]
    P[idx, y] -= 1.0
    return values, P


class TwoLayerNetwork:
    """N neurons of f(x) = (1/N) sum_k a_k sigma(<u_k, x> + c_k), this rank's blocks of them, and SGD.

    Parameters
    ----------
    N : int
        The width.
    p : int
        Inputs.
    outputs : int
        C (1 for a scalar output).
    activation : {'relu', 'tanh', 'sigmoid'}
    loss : {'square', 'cross_entropy'}
        The cross-entropy needs outputs >= 2 (the classes).
    bias : bool
        Train c_k (else c_k = 0 and theta_k = (a_k, u_k)).
    init : dict, optional
        Standard deviations of the initial neurons: {'a': 1.0, 'u': 1.0, 'c': 0.5}; u_k ~ N(0, init['u']^2 I / p)
        so <u_k, x> is O(1) for standardised inputs; independent over neurons, from each block's stream.
    seed : int
        The initialisation's seed.
    comm : mpi4py.MPI.Comm, optional
    block : int
        Neurons per block (the unit of the split over ranks and of every reduction).

    Attributes
    ----------
    a : numpy.ndarray, shape (n_local, C)
    u : numpy.ndarray, shape (n_local, p)
    c : numpy.ndarray, shape (n_local,)
    streams : Streams
    """

    def __init__(self, N: int, p: int, outputs: int = 1, activation: str = "relu", loss: str = "square",
                 bias: bool = True, init: dict | None = None, seed: int = 0, comm=None, block: int = 1024):
        comm = default_comm(comm)
        same_everywhere(comm, "TwoLayerNetwork", {"N": N, "p": p, "outputs": outputs, "activation": activation,
                                                  "loss": loss, "bias": bias, "init": init, "seed": seed,
                                                  "block": block})
        self.N = checks.integer("width N", N, 1)
        self.p = checks.integer("inputs p", p, 1)
        self.C = checks.integer("outputs", outputs, 1)
        self.loss = checks.one_of("loss", loss, LOSSES)
        if loss == "cross_entropy" and self.C < 2:
            raise ValueError(f"the cross-entropy needs outputs >= 2 (the classes), got outputs={outputs}")
        self.activation_name = activation
        self.sigma, self.dsigma = globals()["activation"](activation)
        self.bias = bool(bias)
        scales = {"a": 1.0, "u": 1.0, "c": 0.5, **(init or {})}
        unknown = sorted(set(scales) - {"a", "u", "c"})
        if unknown:
            raise ValueError(f"init: unknown keys {unknown} (the standard deviations 'a', 'u', 'c')")
        for k in scales:
            checks.number(f"init[{k!r}]", scales[k], nonnegative=True)
        self.init = scales
        from fpjko.common import sizes

        sizes.check_memory(f"a width N = {self.N} network with {self.p} inputs and {self.C} outputs",
                           8.0 * self.N * (self.C + self.p + 2) * 4, "take a smaller N")
        self.streams = st = Streams(self.N, seed, comm=comm, block=checks.integer("block", block, 1))
        dim = self.C + self.p + 1
        theta = st.sample(lambda g, m: g.standard_normal((m, dim)))
        self.a = np.ascontiguousarray(theta[:, :self.C] * scales["a"])
        self.u = np.ascontiguousarray(theta[:, self.C:self.C + self.p] * (scales["u"] / np.sqrt(self.p)))
        self.c = np.ascontiguousarray(theta[:, -1] * scales["c"]) if self.bias else np.zeros(st.n_local)
        self._slices = [slice(o, o + m) for o, m in zip(np.cumsum([0, *st._sizes[:-1]]), st._sizes)]
        self.steps, self.t = 0, 0.0

    # ------------------------------------------------------------------ the network
    def neurons(self) -> np.ndarray:
        """This rank's neurons theta_k = (a_k, u_k[, c_k]).

        Returns
        -------
        numpy.ndarray, shape (n_local, C + p [+ 1])
        """
        parts = [self.a, self.u] + ([self.c[:, None]] if self.bias else [])
        return np.concatenate(parts, axis=1)

    def set_neurons(self, theta: np.ndarray) -> None:
        """Set this rank's neurons (e.g. drawn from another initial law).

        Parameters
        ----------
        theta : numpy.ndarray, shape (n_local, C + p [+ 1])
        """
        theta = np.asarray(theta, float)
        dim = self.C + self.p + (1 if self.bias else 0)
        agree(self.streams.comm, None if theta.shape == (self.streams.n_local, dim) else
              f"set_neurons: expected this rank's neurons as ({self.streams.n_local}, {dim}), got {theta.shape}")
        self.a[:] = theta[:, :self.C]
        self.u[:] = theta[:, self.C:self.C + self.p]
        if self.bias:
            self.c[:] = theta[:, -1]

    def _reduce(self, parts: list, problem: str | None = None) -> np.ndarray:
        """The sum over all blocks of per-block arrays (this rank's in `parts`), added in block order on every rank."""
        got = allgather_checked(self.streams.comm, parts, problem)
        total = None
        for rank_parts in got:
            for q in rank_parts:
                total = q.copy() if total is None else total + q
        return total

    def _forward(self, X: np.ndarray, keep: bool = False):
        """F(X) = (1/N) sum_k a_k sigma(<u_k, x> + c_k) for every row of X, (m, C), the same on every rank; with keep
        the per-block pre-activations and activations."""
        Z, H, parts = [], [], []
        for s in self._slices:
            z = X @ self.u[s].T + self.c[s]                       # (m, block)
            h = self.sigma(z)
            parts.append(h @ self.a[s])
            if keep:
                Z.append(z), H.append(h)
        F = self._reduce(parts)
        F = np.zeros((len(X), self.C)) if F is None else F / self.N
        return (F, Z, H) if keep else F

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The network's outputs (collective).

        Parameters
        ----------
        X : numpy.ndarray, shape (m, p)

        Returns
        -------
        numpy.ndarray, shape (m, C)
        """
        return self._forward(np.asarray(X, float))

    def _targets(self, y: np.ndarray) -> np.ndarray:
        if self.loss == "cross_entropy":
            return np.asarray(y, int)
        y = np.asarray(y, float)
        return y.reshape(len(y), self.C) if y.ndim == 1 else y

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict:
        """The mean loss and (classification) the accuracy on (X, y) (collective).

        Parameters
        ----------
        X : numpy.ndarray, shape (m, p)
        y : numpy.ndarray
            Class indices (m,) for the cross-entropy; targets (m,) or (m, C) for the square loss (then the
            accuracy is that of sign(f) against sign(y) for C = 1, of argmax for C > 1).

        Returns
        -------
        dict
            {'loss', 'accuracy'}.
        """
        F = self.predict(X)
        yy = self._targets(y)
        values, _ = loss_gradient(self.loss, F, yy)
        if self.loss == "cross_entropy":
            acc = float(np.mean(np.argmax(F, axis=1) == yy))
        elif self.C == 1:
            acc = float(np.mean(np.sign(F[:, 0]) == np.sign(yy[:, 0])))
        else:
            acc = float(np.mean(np.argmax(F, axis=1) == np.argmax(yy, axis=1)))
        return {"loss": float(np.mean(values)), "accuracy": acc}

    # ------------------------------------------------------------------ SGD
    def sgd(self, data, gamma: float, beta: float, steps: int, batch: int = 1, data_seed: int = 0,
            mode: str = "shared", record_every: int = 0, callback=None) -> dict:
        """SGD with step gamma N^beta for `steps` steps (continuing from where the last call stopped).

        Parameters
        ----------
        data : fpjko.samplers.data.Dataset
            Its training part is sampled; its test part is only evaluated.
        gamma : float
            > 0.
        beta : float
            In [0, 1]: the step is gamma N^beta, the mean-field time per step gamma N^(beta - 1).
        steps : int
        batch : int
            B samples per step (per neuron in mode='independent').
        data_seed : int
            The seed of the shared data stream (mode='shared'): the same data_seed is the same sequence of samples.
        mode : {'shared', 'independent'}
            See the module doc.
        record_every : int
            Steps between records of the train and test loss and accuracy (0: the first and last only).
        callback : callable, optional
            callback(net) after every step, on every rank; it may return True to stop (every rank stops), and an
            exception it raises on one rank is raised on every rank.

        Returns
        -------
        dict
            The history: 'step', 't' (mean-field time), 'train_loss', 'train_accuracy', 'test_loss',
            'test_accuracy' per record.
        """
        comm = self.streams.comm
        same_everywhere(comm, "TwoLayerNetwork.sgd", {"gamma": gamma, "beta": beta, "steps": steps, "batch": batch,
                                                      "data_seed": data_seed, "mode": mode,
                                                      "record_every": record_every, "data": _digest(data)})
        gamma = checks.positive_number("gamma", gamma)
        beta = checks.number("beta", beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1] (the step gamma N^beta), got beta={beta!r}")
        steps = checks.integer("steps", steps, 0)
        batch = checks.integer("batch", batch, 1)
        checks.integer("data_seed", data_seed, 0)
        checks.one_of("mode", mode, MODES)
        record_every = checks.integer("record_every", record_every, 0)
        X, y = np.asarray(data.X_train, float), self._targets(data.y_train)
        if X.shape[1] != self.p:
            raise ValueError(f"the data have {X.shape[1]} inputs, the network {self.p}")
        if self.loss == "cross_entropy" and (y.min() < 0 or y.max() >= self.C):
            raise ValueError(f"a label {int(y.min() if y.min() < 0 else y.max())} is outside the {self.C} classes")
        h = gamma * float(self.N) ** (beta - 1.0)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(data_seed, spawn_key=(TAG_DATA,))))
        own = None
        if mode == "independent":
            seed = self.streams.seed
            own = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(b, TAG_OWN))))
                   for b in self.streams.blocks]
        hist = {k: [] for k in ("step", "t", "train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        self._record(hist, data)
        for k in range(1, steps + 1):
            if mode == "shared":
                idx = rng.integers(0, len(X), batch)
                self._shared_step(X[idx], y[idx], h)
            else:
                self._independent_step(X, y, h, batch, own)
            self.steps += 1
            self.t += h
            finite = all(np.all(np.isfinite(v)) for v in (self.a, self.u, self.c))
            agree(comm, None if finite else f"SGD diverged at step {self.steps}: a neuron is not finite (gamma="
                  f"{gamma:g}, beta={beta:g}: the step gamma N^beta = {gamma * self.N ** beta:.4g} is too large)",
                  FloatingPointError)
            if (record_every and k % record_every == 0) or k == steps:
                self._record(hist, data)
            if callback is not None and any_stop(comm, callback, self):       # every rank stops (or fails) together
                break
        return hist

    def _record(self, hist: dict, data) -> None:
        tr = self.evaluate(data.X_train, data.y_train)
        te = self.evaluate(data.X_test, data.y_test)
        for key, v in (("step", self.steps), ("t", self.t), ("train_loss", tr["loss"]),
                       ("train_accuracy", tr["accuracy"]), ("test_loss", te["loss"]),
                       ("test_accuracy", te["accuracy"])):
            hist[key].append(v)

    def _shared_step(self, Xb: np.ndarray, yb: np.ndarray, h: float) -> None:
        B = len(Xb)
        F, Z, H = self._forward(Xb, keep=True)
        _, G = loss_gradient(self.loss, F, yb)                     # (B, C), the same on every rank
        G = G / B
        for s, z, hh in zip(self._slices, Z, H):
            S = (G @ self.a[s].T) * self.dsigma(z, hh)              # (B, block): dl/d(pre-activation)
            if B == 1 and _dger is not None:                        # in place, column by column per neuron
                _dger(-h, G[0], hh[0], a=self.a[s].T, overwrite_a=1)
                _dger(-h, Xb[0], S[0], a=self.u[s].T, overwrite_a=1)
            else:
                self.a[s] -= h * (hh.T @ G)
                self.u[s] -= h * (S.T @ Xb)
            if self.bias:
                self.c[s] -= h * S.sum(axis=0)

    def _independent_step(self, X: np.ndarray, y: np.ndarray, h: float, B: int, own: list) -> None:
        F, Z, H = self._forward(X, keep=True)                      # on the whole training set
        _, G = loss_gradient(self.loss, F, y)                      # (M, C)
        for s, z, hh, g in zip(self._slices, Z, H, own):
            m = s.stop - s.start
            idx = g.integers(0, len(X), (m, B))                    # each neuron its own samples
            cols = np.arange(m)[:, None]
            Gk = G[idx]                                            # (m, B, C)
            hk = hh[idx, cols]                                     # (m, B)
            Sk = np.einsum("mbc,mc->mb", Gk, self.a[s]) * self.dsigma(z[idx, cols], hk)
            self.a[s] -= (h / B) * np.einsum("mb,mbc->mc", hk, Gk)
            self.u[s] -= (h / B) * np.einsum("mb,mbp->mp", Sk, X[idx])
            if self.bias:
                self.c[s] -= (h / B) * Sk.sum(axis=1)


def _digest(data) -> tuple:
    """A data set's identity for the comparison across ranks (shapes and a digest of the arrays)."""
    from fpjko.common.collective import describe

    return tuple(describe(np.asarray(getattr(data, k))) for k in ("X_train", "y_train", "X_test", "y_test"))
