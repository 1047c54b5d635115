"""The continuity equation rho_t + div(rho u) = 0 with u = -grad(f + W * rho) + b: the deterministic
(noiseless) mean-field limit, e.g. of a two-layer network trained by SGD with step gamma N^b, b < 1.

Pure transport has no diffusion to damp a Galerkin discretisation, so this is a discretisation made
for it: discontinuous Galerkin (DG0 or DG1) with the upwind flux,

    (rho_t, v) = (rho u, grad v) - sum_F int_F (u.n+) rho_up (v+ - v-) ds,   rho_up = rho+ if u.n+ > 0 else rho-,

no flux through the boundary (mass is conserved to round-off; the domain must hold the density, the
history records the largest boundary value of rho to check it), and the three-stage strong-stability-
preserving Runge-Kutta scheme SSP-RK3 (Shu-Osher). The velocity is evaluated at every stage from the
stage density (psi = W * rho through fpjko.solvers.fokker_planck.interaction, in a continuous Lagrange
space of degree `psi_degree`; u.n on a facet is taken from the average of the two sides).

Positivity: DG0 with SSP-RK3 is monotone under the CFL condition; DG1 uses the Zhang-Shu scaling
limiter at every stage (each cell's linear part is scaled towards its mean until the vertex values, the
extreme values of a linear function, are >= 0), which keeps the mass and the order.
Error: O(h^(k+1/2)) in L2 in the worst case, O(h^(k+1)) for smooth solutions on regular meshes (DG
upwind theory; DG1 measured second order in the tests); O(dt^3) in time.
The step is dt, or (dt=None) cfl * h_min / max|u| chosen at every step from the current velocity.
psi = W * rho is refreshed by set_initial and after every step (change rho only through them).
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.meshes.builders import boundary_dofs
from fpjko.solvers.core import moments, validation
from fpjko.solvers.core.compat import expression, interpolate, petsc_vec
from fpjko.solvers.core.diagnostics import DensityDiagnostics
from fpjko.solvers.core.linear import make_ksp, solve
from fpjko.solvers.core.protocol import DensitySolver
from fpjko.solvers.fokker_planck import coefficients
from fpjko.solvers.fokker_planck.interaction import as_interaction, check_even
from fpjko.solvers.fokker_planck.interaction import fingerprint as interaction_fingerprint

EXTRA_KEYS = ("min_rho", "boundary_rho", "dt", "cfl")


class ContinuityEquation(DensitySolver, DensityDiagnostics):
    """rho_t + div(rho u) = 0, u = -grad(f + W * rho) + b, on a dolfinx mesh (any number of ranks).

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
    potential : callable or dolfinx.fem.Function, optional
        A callable x -> UFL expression of the SpatialCoordinate, or a scalar Function.
    interaction : optional
        As FokkerPlanckSolver (number k, matrix K, numpy W(z), or an Interaction object).
    drift : optional
        An extra velocity b(x) (callable x -> UFL vector, constant or vector Function).
    degree : {0, 1}
        DG degree.
    dt : float, optional
        A fixed step, or None for cfl * h_min / max|u| at every step (the last step of run(t_end) then shortened
        to land on t_end).
    cfl : float
    psi_degree : int
        Degree of the space of psi.
    limiter : bool
        The slope limiter (degree 1).
    petsc_options : dict, optional
        Options of the DG mass solve.
    prefix : str, optional
        PETSc options prefix (default 'ce_').

    Notes
    -----
    History: the core keys (energy int f rho + 1/2 int (W * rho) rho; iterations 0: the step is explicit) and
    min_rho, boundary_rho (max |rho| on the boundary), dt, cfl.
    """

    default_mass_tol = 1e-2
    label = "transport steps"
    default_prefix = "ce_"
    extra_keys = EXTRA_KEYS

    def __init__(self, mesh, potential=None, interaction=None, drift=None, degree: int = 1,
                 dt: float | None = None, cfl: float = 0.15, psi_degree: int = 2, limiter: bool = True,
                 petsc_options: dict | None = None, prefix: str | None = None):
        self._init_protocol(mesh.comm, prefix, locals())
        if degree not in (0, 1):
            raise ValueError(f"the DG transport solver takes degree 0 or 1 (positivity-limited), got degree={degree!r}")
        self.fixed_dt = None if dt is None else validation.positive_number("dt", dt)
        self.variable_step = self.fixed_dt is None
        self._t_end = None
        self.cfl = validation.positive_number("cfl", cfl)
        self.mesh, self.degree, self.limiter = mesh, degree, limiter and degree == 1
        self.psi_degree = psi_degree
        tdim = mesh.topology.dim
        unghosted = mesh.topology.index_map(0).num_ghosts > 0 and mesh.topology.index_map(tdim).num_ghosts == 0
        if self.comm.allreduce(int(unghosted), op=MPI.MAX):
            raise ValueError("DG transport on several ranks needs ghost cells across rank boundaries (the upwind "
                             "flux lives on interior facets): build the mesh with GhostMode.shared_facet "
                             "(meshes.* do)")
        self.V = dolfinx.fem.functionspace(mesh, ("DG", degree))
        self.n_owned = self.V.dofmap.index_map.size_local
        self.x = ufl.SpatialCoordinate(mesh)
        self.f_expr = coefficients.as_ufl_scalar(potential, mesh, self.x)
        self.b = coefficients.as_ufl_vector(drift, mesh, self.x)
        self.interaction = as_interaction(interaction, mesh.geometry.dim)
        if self.interaction is not None:
            self.interaction.bind(self.V, dolfinx.fem.functionspace(mesh, ("Lagrange", psi_degree)))
            check_even(self.interaction, mesh.geometry.dim, self.comm)
        self.rho = dolfinx.fem.Function(self.V, name="rho")
        self._stage = dolfinx.fem.Function(self.V, name="rho_stage")
        self._rate = dolfinx.fem.Function(self.V, name="rho_t")
        u = -ufl.grad(self.f_expr)
        if self.interaction is not None:
            u = u - ufl.grad(self.interaction.psi)
        if self.b is not None:
            u = u + self.b
        self.velocity = u
        rho, v = self._stage, ufl.TestFunction(self.V)
        n = ufl.FacetNormal(mesh)
        un = ufl.dot(ufl.avg(u), n("+"))
        upwind = ufl.conditional(ufl.gt(un, 0), un * rho("+"), un * rho("-"))
        self._L = dolfinx.fem.form(ufl.inner(rho * u, ufl.grad(v)) * ufl.dx - upwind * (v("+") - v("-")) * ufl.dS)
        w = ufl.TrialFunction(self.V)
        self._M = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(w * v * ufl.dx))
        self._M.assemble()
        self._ksp = make_ksp(self._M, self.prefix, petsc_options)     # block diagonal: LU is exact and cheap
        self._b = dolfinx.fem.petsc.create_vector(self._L)
        # |u| at the nodes of a vector DG space of degree k+1, for the CFL number
        d = mesh.geometry.dim
        self._U = dolfinx.fem.Function(dolfinx.fem.functionspace(mesh, ("DG", degree + 1, (d,))))
        self._u_expr = expression(u, self._U.function_space)
        nc = mesh.topology.index_map(tdim).size_local
        hloc = float(np.min(mesh.h(tdim, np.arange(nc, dtype=np.int32)))) if nc else math.inf
        self.h_min = self.comm.allreduce(hloc, op=MPI.MIN)
        self._mass = dolfinx.fem.form(self._stage * ufl.dx)
        self._energy = dolfinx.fem.form(self.f_expr * self._stage * ufl.dx
                                        + (0.5 * self.interaction.psi * self._stage * ufl.dx
                                           if self.interaction is not None else 0))
        self._bnd = boundary_dofs(self.V)
        self._cells = self.V.dofmap.list[:nc]                      # (nc, tdim + 1) DG1 dofs = vertices
        self._last_step = (math.nan, math.nan)

    @property
    def dt(self) -> float:
        """The step of the next step(): the fixed dt, or the CFL step cfl * h_min / max|u| of the current density."""
        if self.fixed_dt is not None:
            return self.fixed_dt
        return self.cfl * self.h_min / max(self.max_speed(), 1e-300)

    # ------------------------------------------------------------------ set-up
    def _set_initial(self, rho0, normalize: bool = False, mass_tol: float = 1e-2) -> None:
        interpolate(self.rho, rho0)
        self._stage.x.array[:] = self.rho.x.array           # the functionals read the stage density
        mass = self._sum(self._mass)
        if normalize:
            if not (math.isfinite(mass) and mass > 0):
                raise ValueError(f"cannot normalise the initial density: its mass is {mass!r}")
            self.rho.x.array[:] /= mass
        self._stage.x.array[:] = self.rho.x.array
        coords = self.V.tabulate_dof_coordinates()[: self.n_owned]
        validation.check_density(self.comm, self.rho.x.array[: self.n_owned], coords, self._sum(self._mass),
                                 "initial density", mass_tol)
        if self.interaction is not None:
            self.interaction.update(self._stage)
        self._last_step = (math.nan, math.nan)

    def _sum(self, form) -> float:
        return self.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)

    # ------------------------------------------------------------------ stepping
    def _rhs(self, rho_values: np.ndarray, refresh: bool = True) -> np.ndarray:
        """M^-1 L(rho): the time derivative of the DG density with the velocity of that density
        (refresh=False: psi already is W * rho_values)."""
        self._stage.x.array[:] = rho_values
        if refresh and self.interaction is not None:
            self.interaction.update(self._stage)
        b = self._b
        with b.localForm() as loc:
            loc.set(0.0)
        dolfinx.fem.petsc.assemble_vector(b, self._L)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        solve(self._ksp, b, petsc_vec(self._rate), "DG mass solve (continuity equation)")
        self._rate.x.scatter_forward()
        return self._rate.x.array.copy()

    def _limit(self, a: np.ndarray) -> np.ndarray:
        """Zhang-Shu scaling limiter on DG1 (vertex values >= 0, cell means kept) on the owned cells; the
        ghost cells' values are then refreshed from their owners."""
        if self.limiter:
            vals = a[self._cells]
            mean = vals.mean(axis=1)
            vmin = vals.min(axis=1)
            bad = vmin < 0
            if bad.any():
                mb = np.maximum(mean[bad], 0.0)
                theta = np.where(mb > 0, mb / (mb - vmin[bad]), 0.0)
                # (the max with 0 only removes round-off of the scaling: the limited minimum is 0 exactly)
                vals[bad] = np.maximum(mb[:, None] + theta[:, None] * (vals[bad] - mean[bad][:, None]), 0.0)
                a = a.copy()
                a[self._cells[bad]] = vals[bad]
        self._stage.x.array[:] = a
        self._stage.x.scatter_forward()
        return self._stage.x.array.copy()

    def max_speed(self) -> float:
        """max |u| over the nodes of a DG(k+1) vector space, u from the current psi.

        Returns
        -------
        float
        """
        self._U.interpolate(self._u_expr)
        d = self.mesh.geometry.dim
        n = self._U.function_space.dofmap.index_map.size_local
        sp = np.linalg.norm(self._U.x.array.reshape(-1, d)[:n], axis=1)
        return self.comm.allreduce(float(sp.max()) if len(sp) else 0.0, op=MPI.MAX)

    def _advance(self) -> dict:
        """One SSP-RK3 step of the fixed dt or the CFL step (shortened to land on run's t_end)."""
        r0 = self.rho.x.array.copy()
        umax = self.max_speed()                     # psi = W * rho since set_initial / the last step
        dt = self.fixed_dt if self.fixed_dt is not None else self.cfl * self.h_min / max(umax, 1e-300)
        if self.variable_step and self._t_end is not None and self.t + dt >= self._t_end - 1e-9 * dt:
            dt = self._t_end - self.t               # land on t_end exactly
        cfl = dt * umax / self.h_min
        if not (math.isfinite(cfl) and cfl <= 1.0):
            raise FloatingPointError(f"unstable transport step {self.steps + 1}: dt={dt:.4g} with max|u|={umax:.4g} "
                                     f"and h_min={self.h_min:.4g} gives CFL {cfl:.3g} > 1; reduce dt (or pass "
                                     f"dt=None for the CFL step cfl={self.cfl:g})")
        r1 = self._limit(r0 + dt * self._rhs(r0, refresh=False))
        r2 = self._limit(0.75 * r0 + 0.25 * (r1 + dt * self._rhs(r1)))
        r3 = self._limit(r0 / 3.0 + 2.0 / 3.0 * (r2 + dt * self._rhs(r2)))
        self.rho.x.array[:] = r3
        self._stage.x.array[:] = r3
        if self.interaction is not None:
            self.interaction.update(self._stage)
        bad = self.comm.allreduce(int(not np.all(np.isfinite(r3[: self.n_owned]))), op=MPI.SUM)
        if bad:
            raise FloatingPointError(f"non-finite density after transport step {self.steps + 1} "
                                     f"(t={self.t + dt:.6g}, dt={dt:g})")
        return {"step": dt, "dt": dt, "cfl": cfl, "converged": True, "iterations": 0}

    def _measure(self) -> dict:
        r = self.rho.x.array[: self.n_owned]
        bnd = self.rho.x.array[self._bnd]
        return {"mass": self._sum(self._mass), "energy": self._sum(self._energy),
                "min_rho": self.comm.allreduce(float(r.min()) if len(r) else math.inf, op=MPI.MIN),
                "boundary_rho": self.comm.allreduce(float(np.abs(bnd).max()) if len(bnd) else 0.0, op=MPI.MAX),
                "dt": math.nan, "cfl": math.nan}

    def _functions(self) -> dict:
        return {"rho": self.rho}

    def _restore(self, state: dict) -> None:
        self._stage.x.array[:] = self.rho.x.array
        if self.interaction is not None:
            self.interaction.update(self._stage)

    def _fingerprint(self) -> dict:
        inter = self.interaction
        return {"fixed_dt": self.fixed_dt, "cfl": self.cfl, "degree": self.degree, "limiter": self.limiter,
                "psi_degree": self.psi_degree, "num_dofs": self.V.dofmap.index_map.size_global,
                "interaction": interaction_fingerprint(inter, self.mesh.geometry.dim), **self._field_moments()}

    def _field_moments(self) -> dict:
        """potential_moments (int f, f^2, f x_i) and drift (int b_i, b_i^2, b_i x_k; None is 0): partition-independent
        (fpjko.solvers.core.moments), compiled and assembled once per solver, at the first fingerprint."""
        if getattr(self, "_moments", None) is None:
            msh, x, d = self.mesh, self.x, self.mesh.geometry.dim
            b = ufl.as_vector([0.0] * d) if self.b is None else self.b
            self._moments = {"potential_moments": moments.Moments(msh, moments.scalar(self.f_expr, x, d))(),
                             "drift": moments.Moments(msh, moments.vector(b, x, d))()}
        return self._moments

    def _release(self) -> None:
        self._ksp.destroy()
        self._M.destroy()
