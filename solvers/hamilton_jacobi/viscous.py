"""The viscous Hamilton–Jacobi equation u_t + 1/2 |grad u|^2 = eps Delta u, eps = (2 beta)^-1, solved directly.

Galerkin in space (Lagrange degree p), backward Euler or BDF2 in time, Newton's method on each step:

    F(u; phi) = int (a u - g) / dt phi + 1/2 |grad u|^2 phi + (eps + nu) grad u . grad phi dx = 0,
    J(u)[du; phi] = int a du / dt phi + (grad u . grad du) phi + (eps + nu) grad du . grad phi dx,

with a = 1, g = u^n (backward Euler) or a = 3/2, g = 2 u^n - u^{n-1} / 2 (BDF2), and the natural boundary
condition grad u . n = 0, the same one the Cole–Hopf solver imposes (grad w . n = 0 for w = exp(-beta u)).
The independent cross-check of fpjko.solvers.hamilton_jacobi.cole_hopf: a different discretisation (no
transform, no lumping) of the same equation, so the two agree to discretisation error.

Stabilisation: the transport speed is grad u, so the cell Peclet number is |grad u| h / (2 eps) = beta h |grad u|.
Where it exceeds 1 Galerkin oscillates; there an artificial viscosity nu = max(0, c h |grad u^n| - eps) is
added (c = `stabilization`, 0.5 by default, lagged at u^n so Newton's Jacobian stays exact). It is zero
wherever beta h |grad u^n| <= 1 / (2c), so resolved runs are plain Galerkin (history['stabilized'] is the
fraction of cells where it acts at each step); where it acts the scheme is first order in h.

Newton (with backtracking on the residual norm) stops when a full update is below newton_tol (1 + max |u|)
in the max norm; a step that does not get there in max_newton iterations warns, naming the step, and says
so in history['converged'] (a non-finite update raises).

The no-flux condition is an outflow boundary for the characteristics (grad u points out where f grows):
u bends to zero slope in a layer of width eps / |grad u|. Where f is steep at the boundary that layer is
unresolved and Newton needs small steps there; Cole–Hopf, linear, does not care.
"""

from __future__ import annotations


import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.solvers.core import validation
from fpjko.solvers.core.compat import interpolate
from fpjko.solvers.core.linear import make_ksp, solve
from fpjko.solvers.hamilton_jacobi.marching import TimeMarching


class ViscousHJ(TimeMarching):
    """u_t = -1/2 |grad u|^2 + (2 beta)^-1 Delta u, u(0) = f, grad u . n = 0; Newton per step.

    solve(gamma, steps) returns the Function u.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
    f : callable, UFL expression or dolfinx.fem.Function
        As for LocalEntropy.
    beta : float
    degree : int
    scheme : {'bdf2', 'backward_euler'}
    stabilization : float
        c >= 0 of the Peclet viscosity (0: plain Galerkin).
    newton_tol : float
        Newton's stopping test.
    max_newton : int
    petsc_options : dict, optional
    prefix : str, optional
        PETSc options prefix (default 'hj_').
    dt : float, optional
        The protocol's step.

    Notes
    -----
    History: the core keys (iterations: Newton iterations; converged: its stopping test fired, a step where it did
    not warns) and stabilized (fraction of cells with nu > 0).
    """

    default_prefix = "hj_"
    extra_keys = ("stabilized",)

    def __init__(self, mesh, f, beta: float, degree: int = 1, scheme: str = "bdf2", stabilization: float = 0.5,
                 newton_tol: float = 1e-10, max_newton: int = 25, petsc_options: dict | None = None,
                 prefix: str | None = None, dt: float | None = None):
        self._init_protocol(mesh.comm, prefix, locals())
        self.beta = validation.positive_number("beta", beta)
        self.degree = validation.integer("degree", degree, 1)
        self.scheme = validation.one_of("scheme", scheme, ("bdf2", "backward_euler"))
        c = validation.number("stabilization", stabilization, nonnegative=True)
        self.newton_tol = validation.tolerance("newton_tol", newton_tol)
        self.max_newton = validation.integer("max_newton", max_newton, 1)
        self.mesh = mesh
        self.V = V = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
        self.n = V.dofmap.index_map.size_local
        self.u = dolfinx.fem.Function(V, name="u")               # u = f, checked, by _init_marching below
        self._un = dolfinx.fem.Function(V)
        self._unm1 = dolfinx.fem.Function(V)
        self._a = dolfinx.fem.Constant(mesh, 1.0)
        self._dt = dolfinx.fem.Constant(mesh, 1.0)
        self._g = dolfinx.fem.Function(V)
        eps = 1.0 / (2.0 * self.beta)
        h = ufl.CellDiameter(mesh)
        speed_n = ufl.sqrt(ufl.inner(ufl.grad(self._un), ufl.grad(self._un)) + 1e-300)
        nu = ufl.max_value(0.0, c * h * speed_n - eps) if c > 0 else 0.0
        u, v, du = self.u, ufl.TestFunction(V), ufl.TrialFunction(V)
        F = ((self._a * u - self._g) / self._dt * v + 0.5 * ufl.inner(ufl.grad(u), ufl.grad(u)) * v
             + (eps + nu) * ufl.inner(ufl.grad(u), ufl.grad(v))) * ufl.dx
        J = ufl.derivative(F, u, du)
        self._F, self._J = dolfinx.fem.form(F), dolfinx.fem.form(J)
        Q = dolfinx.fem.functionspace(mesh, ("DG", 0))
        self._nu_cells = dolfinx.fem.Function(Q)
        self._nu_expr = nu
        self._ncells = Q.dofmap.index_map.size_global
        self._Jmat = dolfinx.fem.petsc.assemble_matrix(self._J)
        self._Jmat.assemble()
        self._res = dolfinx.fem.petsc.create_vector(self._F)
        self._du = self._Jmat.createVecRight()
        self._ksp = make_ksp(self._Jmat, self.prefix, petsc_options)
        self._last_dt = None
        self._fp = {"beta": self.beta, "degree": self.degree, "scheme": self.scheme, "stabilization": c,
                    "newton_tol": self.newton_tol, "max_newton": self.max_newton,
                    "num_dofs": V.dofmap.index_map.size_global}
        self._init_marching(f, dt)

    def _reset(self) -> None:
        self._un.x.array[:] = self.u.x.array
        self._last_dt = None
        self._step_info = {"stabilized": 0.0}

    def _prev_function(self):
        return self._un

    def _fingerprint(self) -> dict:
        return self._fp

    def _residual(self) -> None:
        with self._res.localForm() as r:
            r.set(0.0)
        dolfinx.fem.petsc.assemble_vector(self._res, self._F)
        self._res.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)

    def _advance(self) -> dict:
        dt = self.dt
        bdf2 = self.scheme == "bdf2" and self.steps > 0 and self._last_dt == dt
        u = self.u
        self._unm1.x.array[:] = self._un.x.array
        self._un.x.array[:] = u.x.array
        self._dt.value = dt
        if bdf2:
            self._a.value = 1.5
            self._g.x.array[:] = 2.0 * self._un.x.array - 0.5 * self._unm1.x.array
            u.x.array[:] = 2.0 * self._un.x.array - self._unm1.x.array        # predictor
        else:
            self._a.value = 1.0
            self._g.x.array[:] = self._un.x.array
        what = f"viscous HJ step {self.steps + 1} (t={self.t + dt:.6g}, dt={dt:g})"
        self._residual()
        rnorm = self._res.norm()
        for it in range(1, self.max_newton + 1):
            self._Jmat.zeroEntries()
            dolfinx.fem.petsc.assemble_matrix(self._Jmat, self._J)
            self._Jmat.assemble()
            self._ksp.setOperators(self._Jmat)
            solve(self._ksp, self._res, self._du, what)
            base = u.x.array.copy()
            lam = 1.0
            full = self._du.norm(PETSc.NormType.NORM_INFINITY)
            small = full <= self.newton_tol * (1.0 + self.comm.allreduce(
                float(np.max(np.abs(base[: self.n]), initial=0.0)), op=MPI.MAX))
            while True:                      # backtracking on |F|: full steps once in Newton's basin
                u.x.array[: self.n] = base[: self.n] - lam * self._du.array
                u.x.scatter_forward()
                self._residual()
                new = self._res.norm()
                if small or new < rnorm or lam < 1e-3:
                    break
                lam *= 0.5
            rnorm = new
            change = lam * full
            if not np.isfinite(change) or not np.isfinite(rnorm):
                raise FloatingPointError(f"{what}: Newton diverged (non-finite update); reduce dt")
            if small:
                break
        self._last_dt = dt
        # the comparison principle: constants solve the equation, so min u^n <= u^{n+1} <= max u^n. A step far
        # outside (more than a tenth of the range: a layer the mesh does not resolve, e.g. a large beta on a steep
        # f, where Newton can land on a spurious root) is reported as not converged instead of returned silently
        (lo_n, hi_n), (lo, hi) = self._range(self._un.x.array), self._range(u.x.array)
        slack = 0.1 * (hi_n - lo_n) + 1e-12 * max(abs(lo_n), abs(hi_n), 1.0)
        inside = lo >= lo_n - slack and hi <= hi_n + slack
        active = 0
        if not isinstance(self._nu_expr, float):
            interpolate(self._nu_cells, self._nu_expr)
            owned = self._nu_cells.function_space.dofmap.index_map.size_local
            active = self.comm.allreduce(int(np.sum(self._nu_cells.x.array[:owned] > 0)))
        self._step_info = {"stabilized": active / self._ncells}
        why = None
        if not small:
            why = f"{what}: Newton did not converge in {self.max_newton} iterations (last update {change:.3e}); reduce dt"
        elif not inside:
            why = (f"{what}: u left the range of the previous level, [{lo:.4g}, {hi:.4g}] against [{lo_n:.4g}, "
                   f"{hi_n:.4g}] (the comparison principle): the mesh does not resolve the layer at beta={self.beta:g}; "
                   f"refine it, reduce dt or raise stabilization")
        return {"converged": why is None, "iterations": it, **self._step_info, "why": why}

    def _range(self, values):
        """(min, max) of owned values over every rank."""
        owned = values[: self.n]
        lo = self.comm.allreduce(float(np.min(owned, initial=np.inf)), op=MPI.MIN)
        hi = self.comm.allreduce(float(np.max(owned, initial=-np.inf)), op=MPI.MAX)
        return lo, hi

    def _release(self) -> None:
        for obj in (self._Jmat, self._res, self._du, self._ksp):
            obj.destroy()

