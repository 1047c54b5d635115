"""The two-layer network's mean-field model as a model of its own kind, for the same study as Model.

N neurons theta_k of f(x) = (1/N) sum_k phi(theta_k, x) on a TeacherData set (phi(theta, x) = sigma(<theta, x>),
or a sigma(<u, x>) for theta = (a, u) with both layers trained: TeacherData(output_weight=True)), trained by
one of three particle systems, each against the limit PDE it has (fpjko.solvers.network_pde):

    sgd=None                   the continuous-time model d theta_k = -grad Psi dt + (gamma Sigma)^(1/2) dB_k
                               + (2 T)^(1/2) dW_k, independent noise per neuron: its limit is the continuity
                               equation (gamma = T = 0) or the Fokker-Planck equation with D = (gamma/2) Sigma + T I;
    sgd={'beta': b < 1, ...}   SGD as run (fpjko.samplers.two_layer, step gamma N^b, every neuron the same
                               samples): the continuity equation, at the distance N^-(1-b)/2 besides sampling;
    sgd={'beta': 1, 'mode': 'independent', 'gamma': g, 'batch': B}
                               SGD with each neuron its own samples: the Fokker-Planck equation with
                               D = (g / (2B)) Sigma;
    sgd={'beta': 1, 'mode': 'shared', ...}
                               SGD as run at b = 1: common noise, no deterministic limit; compared with the
                               Fokker-Planck equation of the independent-noise model (limit='diffusive', default)
                               or the continuity equation (limit='continuity'), its distance does not fall with N.
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks
from fpjko.model.laws import GaussianLaw, gaussian_law
from fpjko.model.solvers import box_mesh

SGD_KEYS = ("beta", "gamma", "batch", "mode", "data_seed")


class NetworkModel:
    """The two-layer network's neurons and their limit PDE, with the interface validate() uses.

    Parameters
    ----------
    data : fpjko.samplers.mean_field_nn.TeacherData
        The data set (the neurons live in R^data.dim).
    gamma : float
        The continuous-time model's noise scale (the diffusion (gamma/2) Sigma); with sgd, set from it.
    temperature : float
        An isotropic temperature T (the continuous-time model).
    initial : dict, optional
        The neurons' initial Gaussian law {'mean': (dim,), 'cov': number or (dim, dim)} (default N(0, 0.25 I)).
    domain : (lower, upper), optional
        The box of the PDE (default [-3, 3]^dim).
    name : str
    sgd : dict, optional
        SGD as the particle system: {'beta': b in [0, 1], 'gamma': step scale (default 0.1), 'batch': B (default 1),
        'mode': 'shared' (default) or 'independent', 'data_seed': the shared data stream's seed (default: the
        run's seed, so that independent runs see independent data)}; see the module doc for the limits.
    limit : {'continuity', 'diffusive'}, optional
        The PDE of the comparison (default: the limit of the particle system; 'diffusive' for shared SGD at b = 1).
    """

    def __init__(self, data, gamma: float = 0.0, temperature: float = 0.0, initial: dict | None = None,
                 domain=None, name: str = "network", sgd: dict | None = None, limit: str | None = None):
        self.data, self.name = data, str(name)
        self.d = int(data.dim)
        self.gamma = checks.number("gamma", gamma, nonnegative=True)
        self.temperature = checks.number("temperature", temperature, nonnegative=True)
        self.mean, self.cov = gaussian_law(initial or {"mean": np.zeros(self.d), "cov": 0.25}, self.d)
        lo, hi = domain if domain is not None else (-3.0 * np.ones(self.d), 3.0 * np.ones(self.d))
        self.domain = (np.atleast_1d(np.asarray(lo, float)), np.atleast_1d(np.asarray(hi, float)))
        self.initial = GaussianLaw(self.mean, self.cov, self.domain)
        self.sgd = None
        if sgd is not None:
            unknown = sorted(set(sgd) - set(SGD_KEYS))
            if unknown:
                raise ValueError(f"sgd: unknown keys {unknown} (it takes {list(SGD_KEYS)})")
            self.sgd = {"gamma": 0.1, "batch": 1, "mode": "shared", "data_seed": None, **sgd}
            b = checks.number("sgd beta", self.sgd.get("beta", float("nan")))
            if not 0.0 <= b <= 1.0:
                raise ValueError(f"sgd beta must lie in [0, 1] (the step gamma N^beta), got {b!r}")
            checks.positive_number("sgd gamma", self.sgd["gamma"])
            checks.integer("sgd batch", self.sgd["batch"], 1)
            checks.one_of("sgd mode", self.sgd["mode"], ("shared", "independent"))
            if self.temperature:
                raise ValueError("SGD has no temperature: give temperature=0 with sgd")
            diffusive = b == 1.0 and self.sgd["mode"] == "independent"
            self.gamma = self.sgd["gamma"] / self.sgd["batch"] if diffusive else 0.0
        self.limit = limit if limit is not None else ("diffusive" if self.sgd is not None and self.sgd["beta"] == 1.0
                                                      else None)
        checks.one_of("limit", self.limit, (None, "continuity", "diffusive"))
        if self.limit == "diffusive" and self.sgd is not None:
            self.gamma = self.sgd["gamma"] / self.sgd["batch"]
        elif self.limit == "continuity":
            self.gamma = 0.0

    def mesh(self, comm, h: float, cells=None):
        """The PDE's mesh of the domain (interval, rectangle or box).

        Parameters
        ----------
        comm : mpi4py.MPI.Comm
        h : float
        cells : sequence of int, optional
            Cells per side instead of those of h.

        Returns
        -------
        dolfinx.mesh.Mesh
        """
        return box_mesh(comm, self.domain, h, cells)

    def initial_density(self, x: np.ndarray) -> np.ndarray:
        """The neurons' initial Gaussian density (fpjko.model.laws.GaussianLaw), normalised on the domain.

        Parameters
        ----------
        x : numpy.ndarray, shape (>= d, n)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        return self.initial.density(x)

    def particles(self, n: int, seed: int = 0, comm=None, dt: float = 1e-2, t_end: float = 1.0, callback=None):
        """n neurons from the initial law, trained to mean-field time t_end by the model's particle system.

        Parameters
        ----------
        n : int
        seed : int
            The initial neurons' seed (and the data stream's, unless sgd gives data_seed).
        comm : mpi4py.MPI.Comm, optional
        dt : float
            The continuous-time model's step (SGD's step is its own: gamma N^(beta - 1) of mean-field time).
        t_end : float
        callback : callable, optional
            callback(streams, step, t, theta) after every step.

        Returns
        -------
        streams : fpjko.samplers.streams.Streams
        theta : numpy.ndarray, shape (streams.n_local, dim)
        """
        from fpjko.common.collective import agree, same_everywhere
        from fpjko.model.solvers import particles_problem
        from fpjko.samplers.mean_field_nn import continuous_time
        from fpjko.samplers.streams import Streams, default_comm

        comm = default_comm(comm)
        same_everywhere(comm, "NetworkModel.particles", {"model": self, "n": n, "seed": seed, "dt": dt,
                                                         "t_end": t_end})
        n = checks.integer("n", n, 1)
        agree(comm, particles_problem(n, self.d, "direct", comm.size if comm is not None else 1), MemoryError)
        if self.sgd is not None:
            return self._sgd(n, seed, comm, t_end, callback)
        st = Streams(n, seed, comm=comm)
        theta0 = self.initial.sample(st)
        watch = None if callback is None else (lambda k, t, x: callback(st, k, t, x))
        theta = continuous_time(theta0, st, self.data, self.gamma, t_end, dt, temperature=self.temperature,
                                callback=watch)
        return st, theta

    def _sgd(self, n, seed, comm, t_end, callback):
        from fpjko.samplers.data import Dataset
        from fpjko.samplers.two_layer import TwoLayerNetwork

        if not self.data.output_weight:
            raise ValueError("SGD trains both layers: the data must be TeacherData(..., output_weight=True)")
        cfg = self.sgd
        p = self.data.X.shape[1]
        net = TwoLayerNetwork(n, p, 1, self.data.activation, "square", bias=False, seed=seed, comm=comm)
        net.set_neurons(self.initial.sample(net.streams))
        h = cfg["gamma"] * float(n) ** (cfg["beta"] - 1.0)
        t_end = checks.number("t_end", t_end, nonnegative=True)
        steps = int(round(t_end / h))
        if abs(steps * h - t_end) > 0.01 * t_end:
            raise ValueError(f"t_end={t_end:g} is {t_end / h:.3g} SGD steps of mean-field time gamma N^(beta - 1) = "
                             f"{h:.4g} at N = {n}: give a time within 1% of a whole number of steps")
        train = Dataset(self.data.X, self.data.Y, self.data.X[:1], self.data.Y[:1], (), "train")
        st = net.streams
        watch = None if callback is None else (lambda m: callback(st, m.steps, m.t, m.neurons()))
        net.sgd(train, cfg["gamma"], cfg["beta"], steps, batch=cfg["batch"], mode=cfg["mode"],
                data_seed=seed if cfg["data_seed"] is None else cfg["data_seed"], record_every=10**9, callback=watch)
        return st, net.neurons()

    def fokker_planck(self, mesh, dt: float = 1e-2, degree: int = 1, scheme: str = "bdf2", **kw):
        """The limit PDE's solver (fpjko.solvers.network_pde) from the initial law.

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
        dt : float
        degree : int
        scheme : str
        **kw
            More keywords of the solver.

        Returns
        -------
        FokkerPlanckSolver or ContinuityEquation
            With set_initial done (normalised on the mesh).
        """
        from fpjko.solvers import network_pde

        if self.gamma == 0 and self.temperature == 0:
            kw.pop("interaction_scheme", None)
            s = network_pde(mesh, self.data, dt=dt, degree=degree, **kw)
        else:
            s = network_pde(mesh, self.data, gamma=self.gamma, temperature=self.temperature, dt=dt, degree=degree,
                            scheme=scheme, **kw)
        s.set_initial(self.initial_density, normalize=True)
        return s
