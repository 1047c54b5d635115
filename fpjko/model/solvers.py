"""Both sides of a model (the `ModelSolvers` part of fpjko.model.Model): its particles, its Fokker-Planck,
JKO and stationary solvers, each from the model's one initial law.

Every entry compares the model's fields and its own arguments across the ranks of its communicator first
(fpjko.common.collective.same_everywhere), so that a value that differs on one rank is one error on every rank,
naming the argument and both values, before any rank allocates, indexes or raises.
"""

from __future__ import annotations

import math

import numpy as np

from fpjko.common import checks, sizes
from fpjko.common.collective import collectively, same_everywhere

FORCES = ("auto", "direct", "mesh", "rbm")
AUTO_MESH_N = {1: 256, 2: 512, 3: 2048}    # force='auto': the particle mesh from this many particles (measured
                                           # crossover of the direct sum and the default grid: benchmarks/kernels.py)
RESOLVE_TOL = 0.02                         # the FE interpolant of the initial law must keep its mass to 2%
BYTES_PER_DOF = {1: 600, 2: 1500, 3: 4000}  # a Fokker-Planck solve's memory per dof (matrices, LU factors), measured


def box_mesh(comm, domain, h: float, cells=None):
    """The mesh of a box domain: an interval, rectangle or box of cell size h (or of `cells` per side).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    domain : (lower, upper)
        Arrays of length d = 1, 2 or 3.
    h : float
    cells : sequence of int, optional
        Cells per side instead of those of h (e.g. exactly twice a coarser mesh's).

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    from fpjko import meshes

    lo, hi = (np.atleast_1d(np.asarray(v, float)) for v in domain)
    if len(lo) == 1:
        return meshes.interval(comm, lo[0], hi[0], h, cells=None if cells is None else np.ravel(cells)[0])
    if len(lo) == 2:
        return meshes.rectangle(comm, lo, hi, h, cells=cells)
    return meshes.box(comm, lo, hi, h, cells=cells)


def box_cells(domain, h: float) -> list:
    """The cells per side of the box mesh of size h (as meshes builds it: ceil(L / h - 1e-12)).

    Parameters
    ----------
    domain : (lower, upper)
    h : float

    Returns
    -------
    list of int
    """
    lo, hi = (np.atleast_1d(np.asarray(v, float)) for v in domain)
    return [max(1, int(math.ceil((b - a) / h - 1e-12))) for a, b in zip(lo, hi)]


def fe_dofs(domain, h: float, degree: int) -> float:
    """The global dofs of a box mesh of size h and Lagrange degree (before it is built).

    Parameters
    ----------
    domain : (lower, upper)
    h : float
    degree : int

    Returns
    -------
    float
    """
    lo, hi = (np.atleast_1d(np.asarray(v, float)) for v in domain)
    cells = np.ceil((hi - lo) / h - 1e-12)
    return float(np.prod(degree * cells + 1))


def fe_problem(domain, h: float, degree: int) -> str | None:
    """The refusal of a Fokker-Planck solve of a box at size h and degree that does not fit the memory, or None."""
    d = len(np.atleast_1d(domain[0]))
    dofs = fe_dofs(domain, h, degree)
    return sizes.memory_problem(f"a P{degree} Fokker-Planck solve with h = {h:g} ({dofs:.3g} dofs)",
                                dofs * BYTES_PER_DOF[d], "take a larger h")


def step_seconds(kind: str, n: int, d: int, cells=None) -> float:
    """A rough cost of one particle step (seconds on one core, measured order of magnitude): what a study's progress
    estimate weighs each run by before it calibrates the factor on the runs done."""
    base = 2e-7 * n * d
    if kind == "direct":
        return base + 4e-8 * n * n
    if kind == "rbm":
        return base + 4e-7 * n
    if kind == "mesh":
        c = {1: 256, 2: 256, 3: 64}[d] if cells is None else int(np.max(cells))
        grid = (2 * c) ** d
        return base + 1e-8 * d * grid * np.log2(grid)
    return base


def particles_problem(n: int, d: int, force: str, comm_size: int = 1) -> str | None:
    """The refusal of n particles that do not fit the memory, or None (gathered copies counted per rank)."""
    gathered = force in ("direct", "rbm")
    nbytes = sizes.particles_bytes(n, d) + (comm_size * 16.0 * n * d if gathered else 0.0)
    return sizes.memory_problem(f"n = {n:.3g} particles in {d}D", nbytes, "take fewer particles")


class ModelSolvers:
    """particles / fokker_planck / jko / stationary of a Model."""

    def mesh(self, comm, h: float, cells=None):
        """The FE mesh of the model's domain (interval, rectangle or box) of cell size h.

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
        same_everywhere(comm, "Model.mesh", {**self.fields("model."), "h": h, "cells": cells})
        if self.domain is None:
            raise ValueError(f"model {self.name!r} has no domain: give domain=(lower, upper) for the finite elements")
        checks.positive_number("h", h)
        return box_mesh(comm, self.domain, h, cells)

    def sample_initial(self, streams) -> np.ndarray:
        """The initial particles of this rank, each block from its own stream (bitwise the same on any rank count).

        Parameters
        ----------
        streams : fpjko.samplers.streams.Streams

        Returns
        -------
        numpy.ndarray, shape (streams.n_local, d)
        """
        return self.initial.sample(streams)

    def choose_force(self, force: str, n: int) -> str:
        """The interaction force the particles use: 'auto' picks the particle mesh from AUTO_MESH_N[d] particles
        when the model has a domain (particles outside it get direct sums), else the direct sum.

        Parameters
        ----------
        force : {'auto', 'direct', 'mesh', 'rbm'}
        n : int

        Returns
        -------
        str
            'none' (no W), 'moments' (W = k|z|^2/2: O(n) exactly), 'direct', 'mesh' or 'rbm'.
        """
        checks.one_of("force", force, FORCES)
        if self.W is None:
            return "none"
        if self.interaction_kind == "quadratic":
            return "moments"
        if force == "auto":
            return "mesh" if self.domain is not None and n >= AUTO_MESH_N[self.d] else "direct"
        if force == "mesh" and self.domain is None:
            raise ValueError(f"model {self.name!r}: the particle mesh needs the model's domain")
        return force

    def particles(self, n: int, seed: int = 0, comm=None, dt: float = 1e-3, t_end: float = 1.0, callback=None,
                  force: str = "auto", cells=None, batch: int = 2):
        """n interacting particles (Euler-Maruyama, independent noise per particle) from the initial law to t_end.

        Parameters
        ----------
        n : int
            The number of particles (>= 1), split over the ranks of comm.
        seed : int
        comm : mpi4py.MPI.Comm, optional
        dt : float
            The time step; t_end must be a whole number of steps.
        t_end : float
        callback : callable, optional
            callback(streams, step, t, x) after every step (x this rank's particles), on every rank; it may return
            True to stop (every rank stops), and an exception it raises on one rank is raised on every rank.
        force : {'auto', 'direct', 'mesh', 'rbm'}
            For a kernel W: 'direct' the exact O(n^2) sum; 'mesh' the particle mesh on the model's domain
            (O(n + G log G), second order in the grid; a particle outside the domain gets the direct sum);
            'rbm' the Random Batch Method (fpjko.samplers.random_batch: batches of `batch` particles, O(n p),
            biased in dt); 'auto' (default) the mesh from AUTO_MESH_N[d] particles when the model has a domain,
            else the direct sum. W = k|z|^2/2 always takes the exact O(n) force.
        cells : int, optional
            The particle mesh's cells per direction (default: fpjko.samplers.particle_mesh's).
        batch : int
            The Random Batch Method's batch size p.

        Returns
        -------
        streams : fpjko.samplers.streams.Streams
        x : numpy.ndarray, shape (streams.n_local, d)
            This rank's particles at t_end.
        """
        from fpjko.common.collective import agree
        from fpjko.samplers.sde import euler_maruyama
        from fpjko.samplers.streams import Streams, default_comm

        comm = default_comm(comm)
        same_everywhere(comm, "Model.particles", {**self.fields("model."), "n": n, "seed": seed, "dt": dt,
                                                  "t_end": t_end, "force": force, "cells": cells, "batch": batch})
        n = checks.integer("n", n, 1)
        dt, t_end = checks.positive_number("dt", dt), checks.number("t_end", t_end, nonnegative=True)
        steps = int(round(t_end / dt))
        if abs(steps * dt - t_end) > 1e-9 * max(t_end, dt):
            raise ValueError(f"t_end={t_end:g} is not a whole number of particle steps dt={dt:g}")
        if cells is not None:
            for c in np.atleast_1d(np.asarray(cells, dtype=object)).ravel():
                checks.integer("cells", c, 2)
        checks.integer("batch", batch, 2)
        kind = self.choose_force(force, n)
        agree(comm, particles_problem(n, self.d, kind, comm.size if comm is not None else 1), MemoryError)
        st = Streams(n, seed, comm=comm)
        # a density's sampler can find a negative or non-finite value that no evaluation point of the declaration
        # saw, in one rank's blocks only: the verdict is every rank's
        x0 = collectively(comm, self.sample_initial, st)
        drift = ParticleDrift(self, st, kind, cells, batch)
        diffusion = None
        if self.D is not None:
            diffusion = np.asarray(self.D.tolist(), float) if self.D_constant else self.D_np
        if callback is not None:
            from fpjko.common.collective import any_stop

            any_stop(comm, callback, st, 0, 0.0, x0)
        watch = None if callback is None else (lambda k, t, x: callback(st, k, t, x))
        x = euler_maruyama(x0, drift, self.beta, dt, steps, st, diffusion=diffusion, callback=watch) if steps else x0
        return st, x

    def fokker_planck(self, mesh, dt: float = 1e-2, degree: int = 1, scheme: str = "bdf2", **kw):
        """The model's Fokker-Planck (McKean-Vlasov) solver on a mesh of its domain, from its initial law.

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
            Of the model's dimension (model.mesh(comm, h) builds one).
        dt : float
        degree : int
        scheme : str
        **kw
            More FokkerPlanckSolver keywords (method, solver, interaction_scheme, petsc_options, ...).

        Returns
        -------
        fpjko.solvers.FokkerPlanckSolver
            With set_initial done: the initial law's density interpolated and normalised on the mesh (refused if
            the mesh loses more than RESOLVE_TOL of its mass: the mesh does not resolve it).
        """
        from fpjko.solvers import FokkerPlanckSolver

        same_everywhere(mesh.comm, "Model.fokker_planck", self.fields("model."))
        self._check_mesh(mesh)
        s = FokkerPlanckSolver(mesh, degree=degree, dt=dt, scheme=scheme, **self.fe_coefficients(), **kw)
        self._start(s)
        return s

    def _start(self, s) -> None:
        """set_initial from the law, after checking that the mesh keeps its mass (the same verdict on every rank:
        the mass is global)."""
        try:
            s.set_initial(self.initial_density, normalize=False, mass_tol=float("inf"))
        except Exception:
            s.close()
            raise
        mass = s.history["mass"][0]
        if not abs(mass - 1.0) <= RESOLVE_TOL:
            s.close()
            raise ValueError(f"model {self.name!r}: the mesh does not resolve the initial law: its interpolant has mass "
                             f"{mass:.6g} on the mesh instead of 1 (more than {RESOLVE_TOL:g} off); take a smaller h or "
                             "a wider initial law")
        s.set_initial(self.initial_density, normalize=True)

    def jko(self, mesh, tau: float, **kw):
        """The model's JKO minimizing movement (NewtonJKO) from its initial law: only for a gradient flow.

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
        tau : float
        **kw
            More NewtonJKO keywords (tol, max_iter, mobility, pseudo_steps: 'auto' by default, the exact step to
            pseudo_tol; 1 for the fast one-pseudo-time-step scheme, ...).

        Returns
        -------
        fpjko.solvers.NewtonJKO
            With set_initial done.
        """
        from fpjko.solvers import NewtonJKO

        same_everywhere(mesh.comm, "Model.jko", self.fields("model."))
        if not self.gradient_flow:
            why = [w for w, bad in (("a drift b", self.b is not None), ("an x-dependent D", not self.D_constant),
                                    ("an anisotropic D (D grad log rho is no gradient; the JKO step in the D^-1 "
                                     "metric is the preconditioned flow div(rho D grad(V + beta^-1 log rho)), for "
                                     "which NewtonJKO(D=...) takes D directly)",
                                     self.D_constant and self.D is not None and self.D_scale is None)) if bad]
            raise ValueError(f"model {self.name!r} is not a Wasserstein gradient flow (JKO needs b = 0 and D = c I; "
                             f"it has " + ", ".join(why) + ")")
        self._check_mesh(mesh)
        from fpjko.model.forms import numpy_fn

        V = self._compiled("V", lambda: numpy_fn(self.V, self.xs))
        beta = self.beta / (self.D_scale or 1.0)            # D = c I: the entropy's weight is c / beta
        s = NewtonJKO(mesh, tau, potential=lambda x: V(*x[: self.d]), beta=beta, interaction=self.interaction(), **kw)
        self._start(s)
        return s

    def stationary(self, mesh, **kw):
        """The model's stationary density: of the linear operator (no W), or the mean-field fixed point (W).

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
        **kw
            For mean_field_stationary (tol, max_iter, guess) or stationary_density (petsc_options).

        Returns
        -------
        Stationary or MeanFieldStationary
        """
        from fpjko.solvers import mean_field_stationary, stationary_density

        same_everywhere(mesh.comm, "Model.stationary", {**self.fields("model."), **kw})
        if self.W is not None and (self.D is not None or self.b is not None):
            raise ValueError(f"model {self.name!r}: the mean-field fixed point rho = exp(-beta (V + W * rho)) / Z needs "
                             "D = I and b = 0")
        s = self.fokker_planck(mesh)
        if self.W is None:
            return stationary_density(s, **kw)
        return mean_field_stationary(s, **kw)

    def _check_mesh(self, mesh) -> None:
        if mesh.geometry.dim != self.d:
            raise ValueError(f"model {self.name!r} is {self.d}D, the mesh is {mesh.geometry.dim}D: mismatched meshes")


class ParticleDrift:
    """The particles' drift -grad V + b - (1/n) sum_j grad W(x_i - x_j) by the chosen force, and, when it is not
    finite, which field is to blame (euler_maruyama calls `diagnose` before it reports a blow-up).

    Parameters
    ----------
    model : Model
    streams : fpjko.samplers.streams.Streams
    kind : {'none', 'moments', 'direct', 'mesh', 'rbm'}
        As Model.choose_force returns it.
    cells : int, optional
        The particle mesh's cells per direction.
    batch : int
        The Random Batch size.
    """

    def __init__(self, model, streams, kind: str, cells=None, batch: int = 2):
        self.model, self.streams, self.kind = model, streams, kind
        self.pm = self.rbm = None
        if kind == "mesh":
            from fpjko.samplers.particle_mesh import ParticleMesh

            self.pm = ParticleMesh(model.grad_W, *model.domain, cells)
        elif kind == "rbm":
            from fpjko.samplers.random_batch import RandomBatch

            self.rbm = RandomBatch(streams, model.grad_W, batch)

    def interaction(self, x: np.ndarray) -> np.ndarray | None:
        """The interaction force on this rank's particles (collective), shape (n_local, d), or None without W."""
        from fpjko.samplers.interacting import interaction_force

        if self.kind == "none":
            return None
        if self.kind == "moments":
            return interaction_force(x, self.streams, quadratic=self.model.k)
        if self.kind == "mesh":
            from fpjko.samplers.particle_mesh import particle_mesh_force

            return particle_mesh_force(x, self.streams, self.pm, outside="direct", grad_W=self.model.grad_W)
        if self.kind == "rbm":
            return self.rbm.force(x)
        return interaction_force(x, self.streams, grad_W=self.model.grad_W)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        m = self.model
        v = -m.grad_V(x) if x.shape[0] else np.zeros_like(x)
        if m.b is not None and x.shape[0]:
            v = v + m.b_np(x)
        f = self.interaction(x)
        return v if f is None else v + f

    def diagnose(self, x: np.ndarray) -> str:
        """Which field is not finite at the particle x (shape (d,)), for the error message."""
        m = self.model
        at = np.round(np.asarray(x, float), 6).tolist()
        g = m.grad_V(x[None])[0]
        if not np.all(np.isfinite(g)):
            return f"grad V = {g.tolist()} is not finite at x = {at} (V = {str(m.V)[:80]})"
        if m.b is not None:
            bb = m.b_np(x[None])[0]
            if not np.all(np.isfinite(bb)):
                return f"b = {bb.tolist()} is not finite at x = {at}"
        if m.W is not None:
            with np.errstate(all="ignore"):
                g0 = m.grad_W(np.full((1, m.d), 1e-300))[0]
            why = (f"grad W is not finite near z = 0 (W = {str(m.W)[:80]} is singular there): two particles met"
                   if not np.all(np.isfinite(g0)) else f"grad W (W = {str(m.W)[:80]}) is not finite at some x - x_j")
            return f"the interaction force is not finite at x = {at}: {why}"
        return f"the drift is not finite at x = {at}"
