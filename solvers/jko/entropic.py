"""Entropic JKO (Peyre 2015): the fast approximate JKO step, with the Gibbs kernel applied by FE
heat solves (Solomon et al. 2015), on a spatial P1 mesh.

  min_pi <|x - y|^2, pi> + gamma KL(pi) + 2 tau F(pi^T 1)   s.t.  pi 1 = rho_k
is solved by the scaling iterations a = rho_k / K b, b = Prox^KL_{sigma F}(K a) / K a, sigma = 2 tau / gamma,
rho_{k+1} = b K a. K v = exp(-|x-y|^2 / gamma) * v is the heat flow for time gamma / 4, applied by
`substeps` implicit Euler steps (M_L + dt A)^-1 M_L with the lumped mass (positive for non-obtuse
meshes). For F = int f rho + beta^-1 int rho (log rho - 1) the KL prox is pointwise,
rho = (q e^{-sigma f})^{1/(1 + sigma/beta)}, rescaled to the mass of rho_k. The entropic blur adds
O(gamma) smoothing per step; it is much cheaper per step than ALG2 (only spatial solves).
"""

from __future__ import annotations

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI

from fpjko.solvers.core import linear, validation
from fpjko.solvers.core.protocol import DensitySolver
from fpjko.solvers.core.compat import petsc_vec
from fpjko.solvers.core.functionals import Functionals
from fpjko.solvers.fokker_planck.edge_averaged import lumped_mass


class EntropicJKO(DensitySolver):
    """Entropic JKO steps of F = int f rho + beta^-1 int rho (log rho - 1) on a P1 mesh (the module doc).

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        A spatial mesh (non-obtuse, for a positive lumped heat kernel).
    tau : float
        The JKO step.
    gamma : float
        The entropic blur (the Gibbs kernel is the heat flow for time gamma / 4).
    potential : callable, optional
        A numpy callable x -> f(x), x of shape (3, n).
    beta : float
        Inverse temperature.
    substeps : int
        Implicit Euler steps of the heat flow per kernel application.
    tol : float
        Stopping test of the Sinkhorn iterations: relative change of rho_{k+1} below tol.
    max_iter : int
        Sinkhorn iterations at most (a step that reaches it warns and records converged = False).
    prefix : str, optional
        PETSc options prefix of the heat solve (default 'ejko_').

    Notes
    -----
    History: the core keys (iterations: Sinkhorn iterations) and min_rho, residual (the last relative change).
    """

    default_mass_tol = 1e-6
    label = "JKO steps (entropic)"
    default_prefix = "ejko_"
    extra_keys = ("min_rho", "residual")
    step_name = "tau"

    def __init__(self, mesh, tau: float, gamma: float, potential=None, beta: float = 1.0, substeps: int = 4,
                 tol: float = 1e-9, max_iter: int = 5000, prefix: str | None = None):
        self._init_protocol(mesh.comm, prefix, locals())
        self.tau, self.gamma = validation.positive_number("tau", tau), validation.positive_number("gamma", gamma)
        self.beta = validation.positive_number("beta", beta)
        self.tol = validation.positive_number("tol", tol)
        self.max_iter = validation.integer("max_iter", max_iter, 1)
        substeps = validation.integer("substeps", substeps, 1)
        self.mesh = mesh
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        X = self.V.tabulate_dof_coordinates()
        self.f = np.asarray(potential(X.T), float) if potential is not None else np.zeros(len(X))
        self.n = self.V.dofmap.index_map.size_local
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self.ml = lumped_mass(self.V)
        dt = gamma / 4.0 / substeps
        A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(dt * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx))
        A.assemble()
        d = A.createVecLeft()
        d.array[:] = self.ml[: self.n]
        A.setDiagonal(d, addv=True)               # M_L + dt A
        self._ksp = linear.make_ksp(A, self.prefix, None)
        self._A, self.substeps = A, substeps
        self._u, self._rhs = dolfinx.fem.Function(self.V), dolfinx.fem.Function(self.V)
        self.rho = dolfinx.fem.Function(self.V, name="rho")
        self.functionals = Functionals(self.rho, None, self.f, self.beta, "lumped", lumped_mass=self.ml)
        self._residual = 0.0

    def heat(self, v: np.ndarray) -> np.ndarray:
        """K v: the heat flow for time gamma / 4 of nodal values.

        Parameters
        ----------
        v : numpy.ndarray, shape (n_local + n_ghosts,)

        Returns
        -------
        numpy.ndarray, shape (n_local + n_ghosts,)
        """
        self._u.x.array[:] = v
        for _ in range(self.substeps):
            self._rhs.x.array[:] = self.ml * self._u.x.array
            linear.solve(self._ksp, petsc_vec(self._rhs), petsc_vec(self._u), "entropic JKO heat kernel")
            self._u.x.scatter_forward()
        return self._u.x.array.copy()

    def _sum(self, v) -> float:
        return self.comm.allreduce(float(np.dot(self.ml[: self.n], v[: self.n])), op=MPI.SUM)

    def _set_initial(self, rho0, normalize: bool = False, mass_tol: float = 1e-6) -> None:
        X = self.V.tabulate_dof_coordinates()
        self.rho.x.array[:] = np.asarray(rho0(X.T), float)
        own = slice(0, self.n)
        validation.finite_field(self.comm, self.rho.x.array[own], X[own], "initial density")
        if normalize:
            mass = self.functionals.mass()
            if not mass > 0:
                raise ValueError(f"cannot normalise the initial density: its mass is {mass!r}")
            self.rho.x.array[:] /= mass
        self.M = self.functionals.mass()
        validation.check_density(self.comm, self.rho.x.array[own], X[own], self.M, "initial density", mass_tol,
                                 neg_tol=0.0)
        self._residual = 0.0

    def _measure(self) -> dict:
        return {"mass": self.functionals.mass(), "energy": self.functionals.free_energy(),
                "min_rho": self.comm.allreduce(float(self.rho.x.array[: self.n].min(initial=np.inf)), op=MPI.MIN),
                "residual": self._residual}

    def _functions(self) -> dict:
        return {"rho": self.rho}

    def _state(self) -> dict:
        return {"scalars": {"M": self.M}}

    def _restore(self, state: dict) -> None:
        self.M = float(state["scalars"]["M"])

    def _fingerprint(self) -> dict:
        X = self.V.tabulate_dof_coordinates()
        return {"gamma": self.gamma, "beta": self.beta, "substeps": self.substeps, "tol": self.tol,
                "max_iter": self.max_iter, "num_dofs": self.V.dofmap.index_map.size_global,
                "potential_moments": [self._sum(self.f), self._sum(self.f ** 2)]
                + [self._sum(self.f * X[:, i]) for i in range(self.mesh.geometry.dim)]}

    def _release(self) -> None:
        self._ksp.destroy()
        self._A.destroy()

    def _advance(self) -> dict:
        sigma = 2 * self.tau / self.gamma
        p = self.rho.x.array.copy()
        expo = 1.0 / (1.0 + sigma / self.beta)
        b = np.ones_like(p)
        new = p
        for it in range(1, self.max_iter + 1):
            a = p / np.maximum(self.heat(b), 1e-300)
            Ka = self.heat(a)
            q = np.maximum(Ka, 1e-300)
            logr = expo * (np.log(q) - sigma * self.f)
            r = np.exp(logr - self.comm.allreduce(float(logr.max(initial=-np.inf)), op=MPI.MAX))
            r *= self.M / self._sum(r)                  # mass multiplier
            b = r / q
            num = self.comm.allreduce(float(np.abs(r - new).max(initial=0.0)), op=MPI.MAX)
            den = self.comm.allreduce(float(np.abs(r).max(initial=0.0)), op=MPI.MAX)
            change = num / max(den, 1e-300)           # the same on every rank, so all stop together
            new = r
            if change < self.tol:
                break
        if not np.all(np.isfinite(new)):
            raise FloatingPointError(f"entropic JKO diverged (gamma={self.gamma} too small for double precision?)")
        self.rho.x.array[:] = new
        self._residual = change
        converged = change < self.tol
        return {"converged": converged, "iterations": it,
                "why": None if converged else f"relative change {change:.3e} > tol={self.tol:g} after "
                                              f"max_iter={self.max_iter} Sinkhorn iterations; raise max_iter or gamma"}
