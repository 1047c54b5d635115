"""Fokker-Planck solver: rho_t = div(rho grad f - rho b + beta^-1 div(D rho)) (+ source), no flux.

(div(D rho))_i = sum_j d_j(D_ij rho) = (D grad rho + rho div D)_i, so the weak form carries the
drift correction beta^-1 rho div D. The defaults D = I and b = 0 give the isotropic equation
rho_t = div(rho grad f + beta^-1 grad rho), the W2 gradient flow of
F = int f rho + beta^-1 int rho log rho with steady state exp(-beta f)/Z.

Two spatial methods:
  'galerkin'  P1/P2/... Lagrange, consistent mass, flux (rho grad f + beta^-1 grad rho) . grad v;
              time schemes 'backward_euler', 'bdf2' (started by one backward Euler step) and
              'crank_nicolson'.
  'sg'        structure preserving: P1, lumped mass, edge-averaged (Scharfetter-Gummel/EAFE)
              flux in the Slotboom variable u = rho / exp(-beta f), backward Euler. Keeps rho >= 0
              and makes the lumped free energy decay on non-obtuse meshes (see edge_averaged).

Matrices are assembled once; each step is one linear solve through a PETSc KSP whose options
live under a per-problem prefix (default 'fp_'; e.g. -fp_ksp_type gmres -fp_pc_type hypre).
Mass, free energy, relative entropy to exp(-beta f)/Z, min(rho) and KSP iterations are recorded
after every step in `history`.
"""

from __future__ import annotations

import math
import time as _time
from typing import Callable

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from petsc4py import PETSc

from solvers.fokker_planck import coefficients, edge_averaged
from solvers.core import validation
from solvers.core.compat import interpolate, petsc_vec
from solvers.core.functionals import Functionals
from solvers.core.linear import make_ksp, solve

SCHEMES = ("backward_euler", "bdf2", "crank_nicolson")
METHODS = ("galerkin", "sg")
HISTORY_KEYS = ("t", "mass", "free_energy", "relative_entropy", "kl_reference", "min_rho", "ksp_its")


class FokkerPlanckSolver:
    """Time stepper for rho_t = div(rho grad f + beta^-1 grad rho) with no-flux boundaries.

    potential: callable x -> UFL expression for f, x the mesh's SpatialCoordinate (so
        `lambda x: 0.5 * (x[0]**2 + x[1]**2)`); its gradient enters the weak form exactly.
        None means f = 0.
    diffusion: D(x), see solvers.coefficients (None: identity). Checked SPD at quadrature points.
    drift: an extra, not necessarily gradient, drift b(x) (callable x -> UFL vector, constant or
        vector Function): the total drift is -grad f + b.
    source, boundary_flux: callables (x, t) -> UFL scalar, t a dolfinx Constant: a source g in
        rho_t + div J = g and the outward flux J.n on the boundary (for manufactured solutions).
    """

    def __init__(self, mesh, potential: Callable | None = None, beta: float = 1.0, degree: int = 1,
                 dt: float = 1e-2, scheme: str = "bdf2", method: str = "galerkin",
                 petsc_options: dict | None = None, prefix: str = "fp_",
                 quadrature_degree: int | None = None, check_mesh: bool = True,
                 mass_check_tol: float = 1e-8, diffusion=None, drift=None,
                 source: Callable | None = None, boundary_flux: Callable | None = None):
        self.beta = validation.positive_number("beta", beta)
        self.dt = validation.positive_number("dt", dt)
        self.scheme = validation.one_of("scheme", scheme, SCHEMES)
        self.method = validation.one_of("method", method, METHODS)
        if not (isinstance(degree, int) and degree >= 1):
            raise ValueError(f"degree must be a positive integer, got degree={degree!r}")
        if method == "sg" and (degree != 1 or scheme != "backward_euler"):
            raise ValueError(f"method='sg' is P1 with backward Euler (it keeps rho >= 0 and the free "
                             f"energy decaying); got degree={degree}, scheme={scheme!r}")
        self.mesh, self.degree, self.prefix = mesh, degree, prefix
        self.petsc_options = dict(petsc_options or {})
        self.mass_check_tol = mass_check_tol
        self.comm = mesh.comm
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
        self.n_owned = self.V.dofmap.index_map.size_local
        self.rho = dolfinx.fem.Function(self.V, name="rho")
        self.rho_prev = dolfinx.fem.Function(self.V, name="rho_prev")   # for BDF2
        self.x = ufl.SpatialCoordinate(mesh)
        self.f_expr = potential(self.x) if potential is not None else 0.0 * self.x[0]
        self.D = coefficients.as_ufl_matrix(diffusion, mesh, self.x)
        self.b = coefficients.as_ufl_vector(drift, mesh, self.x)
        if method == "sg" and (self.D is not None or self.b is not None):
            raise ValueError("method='sg' is for D = I and a gradient drift; use method='galerkin' "
                             "with diffusion/drift")
        self.lambda_min_D = (coefficients.check_spd(mesh, self.D, degree=max(2, 2 * degree))
                             if self.D is not None else 1.0)
        self.time = dolfinx.fem.Constant(mesh, 0.0)     # the time seen by source/boundary_flux
        self._source = None
        if source is not None or boundary_flux is not None:
            v = ufl.TestFunction(self.V)
            L = 0
            if source is not None:
                L = L + source(self.x, self.time) * v * ufl.dx
            if boundary_flux is not None:
                L = L - boundary_flux(self.x, self.time) * v * ufl.ds
            self._source = dolfinx.fem.form(L)
            self.mass_check_tol = np.inf                 # mass changes by design
        self._reference = None
        self.f = interpolate(dolfinx.fem.Function(self.V, name="f"), self.f_expr)
        validation.finite_field(self.comm, self.f.x.array[: self.n_owned],
                                self.V.tabulate_dof_coordinates()[: self.n_owned], "potential f")
        self.t, self.steps = 0.0, 0
        self.history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
        self._ksp: dict[str, PETSc.KSP] = {}
        self._mats: dict[str, PETSc.Mat] = {}
        self._initialised = False

        if method == "galerkin":
            u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
            dx = ufl.dx(metadata={"quadrature_degree": quadrature_degree}) if quadrature_degree else ufl.dx
            flux = self.flux(u)
            self._mats["M"] = self._assemble(u * v * dx)
            self._mats["K"] = self._assemble(ufl.inner(flux, ufl.grad(v)) * dx)
            self.functionals = Functionals(self.rho, self.f_expr, self.f.x.array, self.beta,
                                           "quadrature", quadrature_degree=quadrature_degree)
        else:
            dofs, Ke = edge_averaged.p1_element_stiffness(self.V)
            if check_mesh:
                edge_averaged.check_nonobtuse(self.V, dofs, Ke)
            self._mats["L"] = edge_averaged.edge_weighted_laplacian(self.V, self.f.x.array, self.beta, dofs, Ke)
            self.m_lumped = edge_averaged.lumped_mass(self.V)
            self.functionals = Functionals(self.rho, self.f_expr, self.f.x.array, self.beta,
                                           "lumped", lumped_mass=self.m_lumped)
            fmin = self.functionals.fmin
            self.maxwellian = np.exp(-self.beta * (self.f.x.array - fmin))   # M / exp(-beta fmin)
        self._work = dolfinx.fem.Function(self.V, name="work")   # u (sg) or the new rho (galerkin)

    # ------------------------------------------------------------------ set-up
    def flux(self, u):
        """-J(u) = u grad f - u b + beta^-1 (D grad u + u div D): the weak form is (u_t, v) + (flux, grad v)."""
        F = u * ufl.grad(self.f_expr)
        if self.b is not None:
            F = F - u * self.b
        if self.D is None:
            return F + ufl.grad(u) / self.beta
        return F + (ufl.dot(self.D, ufl.grad(u)) + u * ufl.div(self.D)) / self.beta

    def current(self, u=None):
        """The probability current J = -(rho grad f - rho b + beta^-1 div(D rho)) as a UFL expression."""
        return -self.flux(self.rho if u is None else u)

    def set_reference(self, rho_ref: dolfinx.fem.Function) -> None:
        """Record KL(rho_t || rho_ref) in history['kl_reference'] (e.g. rho_ref the stationary density)."""
        if rho_ref.function_space.mesh is not self.mesh:
            raise ValueError("reference density lives on a different mesh than the solver: mismatched meshes")
        self._reference = self.functionals.kl_form(rho_ref)
        h = self.history
        if h["t"]:
            h["kl_reference"][-1] = self.functionals.kl(self._reference)

    def _assemble(self, a) -> PETSc.Mat:
        A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(a))
        A.assemble()
        return A

    def _system(self, name: str) -> PETSc.KSP:
        """The KSP for one of the step matrices, built and factorised on first use."""
        if name not in self._ksp:
            dt = self.dt
            if name == "sg":
                A = self._mats["L"].copy()
                d = A.createVecLeft()
                d.array[:] = self.m_lumped[: self.n_owned] * self.maxwellian[: self.n_owned] / dt
                A.setDiagonal(d, addv=PETSc.InsertMode.ADD_VALUES)
                d.destroy()
            else:
                a_m, a_k = {"backward_euler": (1 / dt, 1.0), "bdf2": (1.5 / dt, 1.0),
                            "crank_nicolson": (1 / dt, 0.5)}[name]
                A = self._mats["M"].copy()
                A.scale(a_m)
                A.axpy(a_k, self._mats["K"], PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            self._mats["A_" + name] = A
            self._ksp[name] = make_ksp(A, self.prefix, self.petsc_options)
        return self._ksp[name]

    def set_initial(self, rho0, normalize: bool = False, mass_tol: float = 1e-2) -> None:
        """rho0: a numpy callable x -> values (x of shape (3, n)), a UFL expression, or a Function
        on this solver's mesh. Fails on NaN, negative values and a mass farther than mass_tol from 1
        unless normalize=True (which rescales to unit mass)."""
        if isinstance(rho0, dolfinx.fem.Function) and rho0.function_space.mesh is not self.mesh:
            raise ValueError("initial density lives on a different mesh than the solver "
                             f"({rho0.function_space.mesh.topology.index_map(0).size_global} vs "
                             f"{self.mesh.topology.index_map(0).size_global} vertices): mismatched meshes")
        interpolate(self.rho, rho0)
        mass = self.functionals.mass()
        if normalize:
            if not (math.isfinite(mass) and mass > 0):
                raise ValueError(f"cannot normalise the initial density: its mass is {mass!r}")
            self.rho.x.array[:] /= mass
            mass = 1.0
        coords = self.V.tabulate_dof_coordinates()[: self.n_owned]
        validation.check_density(self.comm, self.rho.x.array[: self.n_owned], coords,
                                 self.functionals.mass(), "initial density", mass_tol)
        self.rho_prev.x.array[:] = self.rho.x.array
        self.t, self.steps = 0.0, 0
        self.history = {k: [] for k in HISTORY_KEYS}
        self._initialised = True
        self._mass0 = self.functionals.mass()
        self.record(ksp_its=0)

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance one time step dt."""
        if not self._initialised:
            raise RuntimeError("call set_initial(rho0) before stepping")
        rho, n = self.rho, self.n_owned
        if self.method == "sg":
            ksp = self._system("sg")
            b = self._mats["L"].createVecLeft()
            b.array[:] = self.m_lumped[:n] * rho.x.array[:n] / self.dt
            its = solve(ksp, b, petsc_vec(self._work), self._what())
            self._work.x.scatter_forward()
            new = self.maxwellian * self._work.x.array
        else:
            name = "backward_euler" if (self.scheme == "bdf2" and self.steps == 0) else self.scheme
            ksp = self._system(name)
            M, K = self._mats["M"], self._mats["K"]
            b = M.createVecLeft()
            if name == "backward_euler":
                M.mult(petsc_vec(rho), b)
                b.scale(1 / self.dt)
            elif name == "bdf2":
                w = petsc_vec(rho).copy()
                w.scale(2 / self.dt)
                w.axpy(-0.5 / self.dt, petsc_vec(self.rho_prev))
                M.mult(w, b)
                w.destroy()
            else:
                tmp = b.duplicate()
                M.mult(petsc_vec(rho), b)
                b.scale(1 / self.dt)
                K.mult(petsc_vec(rho), tmp)
                b.axpy(-0.5, tmp)
                tmp.destroy()
            if self._source is not None:
                self.time.value = self.t + (0.5 if name == "crank_nicolson" else 1.0) * self.dt
                g = dolfinx.fem.petsc.assemble_vector(self._source)
                g.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
                b.axpy(1.0, g)
                g.destroy()
            its = solve(ksp, b, petsc_vec(self._work), self._what())
            self._work.x.scatter_forward()
            new = self._work.x.array
        b.destroy()
        self.rho_prev.x.array[:] = rho.x.array
        rho.x.array[:] = new
        self.t += self.dt
        self.steps += 1
        self.record(ksp_its=its)
        self._check_step()

    def _what(self) -> str:
        return f"Fokker-Planck step {self.steps + 1} (t={self.t + self.dt:.6g}, dt={self.dt:g})"

    def _check_step(self) -> None:
        h = self.history
        if not all(math.isfinite(h[k][-1]) for k in ("mass", "free_energy")) or \
                not np.all(np.isfinite(self.rho.x.array)):
            raise FloatingPointError(f"non-finite density after step {self.steps} (t={self.t:.6g}, "
                                     f"dt={self.dt:g}); reduce dt or check the potential")
        drift = abs(h["mass"][-1] - self._mass0) / abs(self._mass0)
        if drift > self.mass_check_tol:
            raise FloatingPointError(f"mass drifted by {drift:.3e} (relative) by step {self.steps} "
                                     f"(t={self.t:.6g}); tighten the KSP tolerance (-{self.prefix}ksp_rtol)"
                                     f" or reduce dt={self.dt:g}")

    def record(self, ksp_its: int) -> None:
        mass = self.functionals.mass()
        F = self.functionals.free_energy()
        h = self.history
        h["t"].append(self.t)
        h["mass"].append(mass)
        h["free_energy"].append(F)
        h["relative_entropy"].append(self.functionals.relative_entropy(mass, F))
        h["kl_reference"].append(self.functionals.kl(self._reference) if self._reference else math.nan)
        h["min_rho"].append(self.functionals.min_value())
        h["ksp_its"].append(int(ksp_its))

    def run(self, t_end: float, callback: Callable | None = None, checkpoint=None,
            progress: bool = False) -> dict:
        """Step until t >= t_end (within 1e-9 dt). callback(solver) after each step;
        checkpoint: a solvers.checkpoint.Checkpointer, saved every its `every` steps and at the end."""
        nsteps = int(math.ceil((t_end - self.t) / self.dt - 1e-9))
        t0 = _time.perf_counter()
        for k in range(nsteps):
            self.step()
            if callback is not None:
                callback(self)
            if checkpoint is not None and (self.steps % checkpoint.every == 0 or k == nsteps - 1):
                checkpoint.save(self)
            if progress and self.comm.rank == 0 and (k + 1) % max(1, nsteps // 10) == 0:
                h = self.history
                print(f"  step {self.steps:5d}  t={self.t:8.4f}  F={h['free_energy'][-1]: .6f}  "
                      f"KL={h['relative_entropy'][-1]:.3e}  min rho={h['min_rho'][-1]: .2e}", flush=True)
        return {"steps": nsteps, "seconds": _time.perf_counter() - t0}

    # ------------------------------------------------------------------ diagnostics
    @property
    def num_dofs(self) -> int:
        return self.V.dofmap.index_map.size_global

    def l2_error(self, exact) -> float:
        """||rho - exact||_L2 with exact a callable x -> UFL expression (high-order quadrature)."""
        e = self.rho - exact(self.x)
        q = 2 * self.degree + 6
        form = dolfinx.fem.form(e * e * ufl.dx(metadata={"quadrature_degree": q}))
        return math.sqrt(self.comm.allreduce(dolfinx.fem.assemble_scalar(form)))

    def l2_norm(self, expr) -> float:
        form = dolfinx.fem.form(expr(self.x) ** 2 * ufl.dx(metadata={"quadrature_degree": 2 * self.degree + 6}))
        return math.sqrt(self.comm.allreduce(dolfinx.fem.assemble_scalar(form)))

    def destroy(self) -> None:
        for k in self._ksp.values():
            k.destroy()
        for m in self._mats.values():
            m.destroy()
        self._ksp, self._mats = {}, {}
