"""The two-layer network's mean-field model as a model of its own kind, for the same study as Model.

N neurons theta_k in R^d of f(x) = (1/N) sum_k sigma(<theta_k, x>), trained on a TeacherData set by the
continuous-time model of SGD with independent noise per neuron,

    d theta_k = -grad Psi(theta_k; nu_N) dt + (gamma Sigma(theta_k; nu_N))^(1/2) dB_k + (2 T)^(1/2) dW_k,

whose empirical measure converges to the limit PDE of fpjko.solvers.mean_field.network (the continuity equation
for gamma = T = 0, a Fokker-Planck equation with the density-dependent diffusion (gamma/2) Sigma otherwise). (The
minibatch SGD that shares each sample among all neurons has common noise and no such deterministic limit at
b = 1; it is not this model.)
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks
from fpjko.model.laws import gaussian_law, sample_gaussian
from fpjko.model.solvers import box_mesh


class NetworkModel:
    """The two-layer network's neurons and their limit PDE, with the interface validate() uses.

    Parameters
    ----------
    data : fpjko.samplers.mean_field_nn.TeacherData
        The data set (its inputs have d components: the neurons live in R^d).
    gamma : float
        The SGD noise scale (the diffusion (gamma/2) Sigma).
    temperature : float
        An isotropic temperature T.
    initial : dict, optional
        The neurons' initial Gaussian law {'mean': (d,), 'cov': number or (d, d)} (default N(0, 0.25 I)).
    domain : (lower, upper), optional
        The box of the PDE (default [-3, 3]^d).
    name : str
    """

    def __init__(self, data, gamma: float = 0.0, temperature: float = 0.0, initial: dict | None = None,
                 domain=None, name: str = "network"):
        self.data, self.name = data, str(name)
        self.d = int(data.X.shape[1])
        self.gamma = checks.number("gamma", gamma, nonnegative=True)
        self.temperature = checks.number("temperature", temperature, nonnegative=True)
        self.mean, self.cov = gaussian_law(initial or {"mean": np.zeros(self.d), "cov": 0.25}, self.d)
        lo, hi = domain if domain is not None else (-3.0 * np.ones(self.d), 3.0 * np.ones(self.d))
        self.domain = (np.atleast_1d(np.asarray(lo, float)), np.atleast_1d(np.asarray(hi, float)))

    def mesh(self, comm, h: float):
        """The PDE's mesh of the domain (interval, rectangle or box).

        Parameters
        ----------
        comm : mpi4py.MPI.Comm
        h : float

        Returns
        -------
        dolfinx.mesh.Mesh
        """
        return box_mesh(comm, self.domain, h)

    def initial_density(self, x: np.ndarray) -> np.ndarray:
        """The neurons' initial Gaussian density at points given components first, shape (>= d, n) -> (n,).

        Parameters
        ----------
        x : numpy.ndarray, shape (>= d, n)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        from fpjko.references.gaussian import gaussian_density

        return gaussian_density(np.asarray(x)[: self.d], self.mean, self.cov)

    def particles(self, n: int, seed: int = 0, comm=None, dt: float = 1e-2, t_end: float = 1.0, callback=None):
        """n neurons trained by the continuous-time model (independent noise per neuron) to mean-field time t_end.

        Parameters
        ----------
        n : int
        seed : int
        comm : mpi4py.MPI.Comm, optional
        dt : float
        t_end : float
        callback : callable, optional
            callback(streams, step, t, theta) after every step.

        Returns
        -------
        streams : fpjko.samplers.streams.Streams
        theta : numpy.ndarray, shape (streams.n_local, d)
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
        st = Streams(n, seed, comm=comm)
        theta0 = sample_gaussian(st, self.mean, self.cov)
        watch = None if callback is None else (lambda k, t, x: callback(st, k, t, x))
        theta = continuous_time(theta0, st, self.data, self.gamma, t_end, dt, temperature=self.temperature,
                                callback=watch)
        return st, theta

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
