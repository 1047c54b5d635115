"""Fokker-Planck solver: rho_t = div(rho grad(f + W * rho) - rho b + beta^-1 div(D rho)) (+ source), no flux.

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
              scheme='bdf2': second order in dt; a step whose solution goes negative (below 1e-15 of the
              maximum: round-off, set to zero) is redone by backward Euler (self.sg_fallbacks).

Without interaction or a density-dependent D, matrices are assembled once; each step is one linear
solve through a PETSc KSP whose options live under a per-problem prefix (default 'fp_'; e.g.
-fp_ksp_type gmres -fp_pc_type hypre). solver='auto' (default) takes LU below AUTO_ITERATIVE_DOFS
global dofs and Krylov + algebraic multigrid above (its set-up done once for a fixed operator): the policy of
fpjko.solvers.core.linear.StepSolver, with its predictor and exact mass restoration.
Mass, free energy, relative entropy to exp(-beta f)/Z, min(rho) and KSP iterations are recorded
after every record_every-th step (default every step; and always at the end of run()) in `history`.

McKean-Vlasov interaction (`interaction=W`, see fpjko.solvers.fokker_planck.interaction): the field
psi = W * rho is linear in rho, so it is extrapolated from the two previous levels at the cost of one
pass over rho per step, psi* = psi(rho*) with rho* = rho_n for backward Euler, 2 rho_n - rho_{n-1}
for BDF2 and 3/2 rho_n - 1/2 rho_{n-1} for Crank-Nicolson (first, second, second order in dt).
  interaction_scheme='semi-implicit' (default): the flux rho^{n+1} grad psi* is implicit in the density
            with the field psi* given, so the operator is re-assembled (and re-factorised) every step;
            no step-size restriction from the interaction (a linear advection-diffusion step).
  interaction_scheme='explicit': the flux rho* grad psi* goes to the right-hand side, so the matrix and
            its factorisation are reused (cheapest per step), but it is stable only for
            dt <~ 2 beta^-1 / max|grad psi|^2 (explicit advection with implicit diffusion), and never
            with Crank-Nicolson (refused).
  method='sg': psi(rho_n) is lagged into the Slotboom potential f + psi (first order); rho >= 0 and,
            measured, F non-increasing for every dt.
Mass is conserved exactly by all of them (the test function 1 sees no flux).
F = int f rho + 1/2 iint W rho rho + beta^-1 int rho log rho is recorded (the interaction energy also
on its own); for which dt it is non-increasing is measured in tests/test_interaction.py (README).
A diffusion that depends on the density (a coefficients.StateDependentDiffusion, e.g. the
two-layer network's SGD covariance) is evaluated at the same extrapolated density and the operator
is re-assembled every step.
"""

from __future__ import annotations

import math
from typing import Callable

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.solvers.core import moments, validation
from fpjko.solvers.core.compat import interpolate, petsc_vec
from fpjko.solvers.core.diagnostics import DensityDiagnostics
from fpjko.solvers.core.functionals import Functionals
from fpjko.solvers.core.linear import StepSolver
from fpjko.solvers.core.protocol import DensitySolver
from fpjko.solvers.fokker_planck import coefficients, edge_averaged
from fpjko.solvers.fokker_planck.interaction import as_interaction, check_even
from fpjko.solvers.fokker_planck.interaction import fingerprint as interaction_fingerprint
from fpjko.common.warn import warn

SCHEMES = ("backward_euler", "bdf2", "crank_nicolson")
METHODS = ("galerkin", "sg")
INTERACTION_SCHEMES = ("semi-implicit", "explicit")
EXTRA_KEYS = ("interaction_energy", "relative_entropy", "kl_reference", "min_rho")
# (weight of rho_n, weight of rho_{n-1}) of the extrapolated density the explicit terms see
EXTRAPOLATION = {"backward_euler": (1.0, 0.0), "bdf2": (2.0, -1.0), "crank_nicolson": (1.5, -0.5),
                 "sg": (1.0, 0.0), "sg_bdf2": (1.0, 0.0)}


class FokkerPlanckSolver(DensitySolver, DensityDiagnostics):
    """Time stepper for rho_t = div(rho grad(f + W * rho) - rho b + beta^-1 div(D rho)), no flux.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
    potential : callable or dolfinx.fem.Function, optional
        f: x -> UFL expression, x the mesh's SpatialCoordinate (so `lambda x: 0.5 * (x[0]**2 + x[1]**2)`); its
        gradient enters the weak form exactly. Or a scalar Function on the mesh. None means f = 0.
    beta : float
        Inverse temperature.
    degree : int
        Lagrange degree.
    dt : float
        The time step.
    scheme : {'bdf2', 'backward_euler', 'crank_nicolson'}
    method : {'galerkin', 'sg'}
        'sg': the structure-preserving Scharfetter-Gummel scheme (P1, rho >= 0).
    petsc_options : dict, optional
        Options of the step solves (under the prefix; the command line wins).
    prefix : str, optional
        PETSc options prefix (default 'fp_').
    quadrature_degree : int, optional
    check_mesh : bool
        For 'sg': refuse an obtuse mesh.
    mass_check_tol : float
        The relative mass drift that raises.
    diffusion : optional
        D(x), see fpjko.solvers.fokker_planck.coefficients (None: identity). Checked SPD at quadrature points. A
        coefficients.StateDependentDiffusion makes D depend on rho (re-assembled every step).
    drift : optional
        An extra, not necessarily gradient, drift b(x) (callable x -> UFL vector, constant or vector Function):
        the total drift is -grad f + b.
    source, boundary_flux : callable, optional
        (x, t) -> UFL scalar, t a dolfinx Constant: a source g in rho_t + div J = g and the outward flux J.n on
        the boundary (for manufactured solutions).
    interaction : optional
        W, see fpjko.solvers.fokker_planck.interaction.as_interaction: a number k (W = k|z|^2/2), a matrix K
        (z^T K z / 2), a numpy callable W(z), or an Interaction object. None: no interaction.
    interaction_scheme : {'semi-implicit', 'explicit'}
    solver : {'auto', 'direct', 'iterative'}
        The linear-solver policy (fpjko.solvers.core.linear.StepSolver).
    record_every : int
        Steps between history records (and always the last step of run).

    Notes
    -----
    History: the protocol's core keys (energy is the free energy F, iterations the KSP iterations) and
    interaction_energy, relative_entropy, kl_reference, min_rho.
    """

    default_mass_tol = 1e-2
    label = "Fokker-Planck steps"
    default_prefix = "fp_"
    extra_keys = EXTRA_KEYS

    def __init__(self, mesh, potential: Callable | None = None, beta: float = 1.0, degree: int = 1,
                 dt: float = 1e-2, scheme: str = "bdf2", method: str = "galerkin",
                 petsc_options: dict | None = None, prefix: str | None = None,
                 quadrature_degree: int | None = None, check_mesh: bool = True,
                 mass_check_tol: float = 1e-8, diffusion=None, drift=None,
                 source: Callable | None = None, boundary_flux: Callable | None = None,
                 interaction=None, interaction_scheme: str = "semi-implicit", solver: str = "auto",
                 record_every: int = 1):
        self._init_protocol(mesh.comm, prefix, locals())
        self.beta = validation.positive_number("beta", beta)
        self.solver = validation.one_of("solver", solver, ("auto", "direct", "iterative"))
        self.record_every = validation.integer("record_every", record_every, 1)
        self.sg_fallbacks = 0              # SG BDF2 steps taken as backward Euler to keep rho >= 0
        self.dt = validation.positive_number("dt", dt)
        self.scheme = validation.one_of("scheme", scheme, SCHEMES)
        self.method = validation.one_of("method", method, METHODS)
        degree = validation.integer("degree", degree, 1)
        if quadrature_degree is not None:
            quadrature_degree = validation.integer("quadrature_degree", quadrature_degree, 0)
        self.quadrature_degree = quadrature_degree
        mass_check_tol = validation.tolerance("mass_check_tol", mass_check_tol)
        if method == "sg" and (degree != 1 or scheme not in ("backward_euler", "bdf2")):
            raise ValueError(f"method='sg' is P1 with backward Euler (rho >= 0, the free energy decaying) or BDF2 "
                             f"(second order, rho >= 0 by a fallback); got degree={degree}, scheme={scheme!r}")
        self.mesh, self.degree = mesh, degree
        self.petsc_options = dict(petsc_options or {})
        self.mass_check_tol = mass_check_tol
        self.comm = mesh.comm
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
        self.n_owned = self.V.dofmap.index_map.size_local
        self.rho = dolfinx.fem.Function(self.V, name="rho")
        self.rho_prev = dolfinx.fem.Function(self.V, name="rho_prev")   # for BDF2
        self._rho_star = dolfinx.fem.Function(self.V, name="rho_star")  # extrapolated, for explicit terms
        self.x = ufl.SpatialCoordinate(mesh)
        self.f_expr = coefficients.as_ufl_scalar(potential, mesh, self.x)
        self._D_state = diffusion if isinstance(diffusion, coefficients.StateDependentDiffusion) else None
        self.D = coefficients.as_ufl_matrix(diffusion if self._D_state is None else diffusion.field, mesh, self.x)
        self.b = coefficients.as_ufl_vector(drift, mesh, self.x)
        if self.b is not None:
            coefficients.check_finite(mesh, self.b, max(2, 2 * degree), "drift b")
        if method == "sg" and (self.D is not None or self.b is not None):
            raise ValueError("method='sg' is for D = I and a gradient drift; use method='galerkin' "
                             "with diffusion/drift")
        self.lambda_min_D = (coefficients.check_spd(mesh, self.D, degree=max(2, 2 * degree))
                             if self.D is not None and self._D_state is None else 1.0)
        self.interaction = as_interaction(interaction, mesh.geometry.dim)
        self.interaction_scheme = validation.one_of("interaction_scheme", interaction_scheme, INTERACTION_SCHEMES)
        if self.interaction is not None and interaction_scheme == "explicit" and scheme == "crank_nicolson":
            raise ValueError("interaction_scheme='explicit' with scheme='crank_nicolson' (explicit AB2 transport "
                             "by grad psi) is unstable for every dt measured; use the semi-implicit default or bdf2")
        if self.interaction is not None:
            self.interaction.bind(self.V)
            check_even(self.interaction, mesh.geometry.dim, self.comm)
        self._s = self._s_prev = None                   # interaction states of rho_n and rho_{n-1}
        self._implicit_psi = self.interaction is not None and interaction_scheme == "semi-implicit"
        # K changes every step: a density-dependent D, or psi* in the operator
        self._reassemble_K = method == "galerkin" and (self._D_state is not None or self._implicit_psi)
        # the step matrix changes every step: the above, or the SG potential f + psi
        self._dynamic = self._reassemble_K or (method == "sg" and self.interaction is not None)
        self.time = dolfinx.fem.Constant(mesh, 0.0)     # the time seen by source/boundary_flux
        self._source = None
        self._g = source(self.x, self.time) if source is not None else None           # UFL scalars
        self._j = boundary_flux(self.x, self.time) if boundary_flux is not None else None
        if source is not None or boundary_flux is not None:
            v = ufl.TestFunction(self.V)
            L = 0
            if source is not None:
                L = L + self._g * v * ufl.dx
            if boundary_flux is not None:
                L = L - self._j * v * ufl.ds
            self._source = dolfinx.fem.form(L)
            self.mass_check_tol = np.inf                 # mass changes by design
        self._reference = None
        self.f = interpolate(dolfinx.fem.Function(self.V, name="f"), self.f_expr)
        validation.finite_field(self.comm, self.f.x.array[: self.n_owned],
                                self.V.tabulate_dof_coordinates()[: self.n_owned], "potential f")
        self._mats: dict[str, PETSc.Mat] = {}
        self.linear = StepSolver(self.comm, self.prefix, self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs,
                                 mesh.geometry.dim, self.solver, self.petsc_options, fixed=not self._dynamic,
                                 owner="FokkerPlanckSolver")
        self._warned_negative = False                   # the undershoot warning is given once
        self._warned_energy = False                     # and the energy-increase warning

        if method == "galerkin":
            u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
            dx = ufl.dx(metadata={"quadrature_degree": quadrature_degree}) if quadrature_degree else ufl.dx
            flux = self.flux(u, interaction=self._implicit_psi)
            self._mats["M"] = self._assemble(u * v * dx)
            self._K_form = dolfinx.fem.form(ufl.inner(flux, ufl.grad(v)) * dx)
            self._mats["K"] = self._assemble(self._K_form)
            psi = self.interaction.psi if self.interaction is not None else None
            self.functionals = Functionals(self.rho, self.f_expr, self.f.x.array, self.beta,
                                           "quadrature", quadrature_degree=quadrature_degree, psi=psi,
                                           mass_matrix=self._mats["M"])
            if psi is not None and not self._implicit_psi:   # the explicit flux, on the right-hand side
                self._L_int = dolfinx.fem.form(-ufl.inner(self._rho_star * ufl.grad(psi), ufl.grad(v)) * dx)
        else:
            dofs, Ke = edge_averaged.p1_element_stiffness(self.V)
            if check_mesh:
                edge_averaged.check_nonobtuse(self.V, dofs, Ke)
            self._sg_dofs, self._sg_Ke = dofs, Ke
            self._set_slotboom(self.f.x.array)
            self.m_lumped = edge_averaged.lumped_mass(self.V)
            self.functionals = Functionals(self.rho, self.f_expr, self.f.x.array, self.beta, "lumped",
                                           lumped_mass=self.m_lumped,
                                           psi=self.interaction.nodal if self.interaction is not None else None)
        self._work = dolfinx.fem.Function(self.V, name="work")   # u (sg) or the new rho (galerkin)

    # ------------------------------------------------------------------ set-up
    def flux(self, u, interaction: bool = False):
        """-J(u) = u grad f - u b + beta^-1 (D grad u + u div D) (+ u grad psi): the weak form is (u_t, v) + (flux, grad v).

        Parameters
        ----------
        u : UFL expression
        interaction : bool
            Include u grad psi.

        Returns
        -------
        UFL expression
            A vector.
        """
        F = u * ufl.grad(self.f_expr)
        if interaction and self.interaction is not None:
            F = F + u * ufl.grad(self.interaction.psi)
        if self.b is not None:
            F = F - u * self.b
        if self.D is None:
            return F + ufl.grad(u) / self.beta
        return F + (ufl.dot(self.D, ufl.grad(u)) + u * ufl.div(self.D)) / self.beta

    def current(self, u=None):
        """The probability current J = -(rho grad(f + psi) - rho b + beta^-1 div(D rho)) (psi = W * rho_n).

        Parameters
        ----------
        u : dolfinx.fem.Function or UFL expression, optional
            The density (default: the current rho).

        Returns
        -------
        UFL expression
            A vector.
        """
        return -self.flux(self.rho if u is None else u, interaction=True)

    def set_reference(self, rho_ref: dolfinx.fem.Function) -> None:
        """Record KL(rho_t || rho_ref) in history['kl_reference'].

        Parameters
        ----------
        rho_ref : dolfinx.fem.Function
            On the solver's mesh, e.g. the stationary density.
        """
        if rho_ref.function_space.mesh is not self.mesh:
            raise ValueError("reference density lives on a different mesh than the solver: mismatched meshes")
        self._reference = self.functionals.kl_form(rho_ref)
        h = self.history
        if h["t"]:
            h["kl_reference"][-1] = self.functionals.kl(self._reference)

    def _assemble(self, a) -> PETSc.Mat:
        A = dolfinx.fem.petsc.assemble_matrix(a if isinstance(a, dolfinx.fem.Form) else dolfinx.fem.form(a))
        A.assemble()
        return A

    def _operator(self, name: str) -> PETSc.Mat:
        """The step matrix of `name` from the current K (galerkin) or L and Maxwellian (sg)."""
        dt = self.dt
        if name in ("sg", "sg_bdf2"):
            A = self._mats["L"].copy()
            d = A.createVecLeft()
            a_m = 1.5 if name == "sg_bdf2" else 1.0
            d.array[:] = a_m * self.m_lumped[: self.n_owned] * self.maxwellian[: self.n_owned] / dt
            A.setDiagonal(d, addv=PETSc.InsertMode.ADD_VALUES)
            d.destroy()
            return A
        a_m, a_k = {"backward_euler": (1 / dt, 1.0), "bdf2": (1.5 / dt, 1.0),
                    "crank_nicolson": (1 / dt, 0.5)}[name]
        A = self._mats["M"].copy()
        A.scale(a_m)
        A.axpy(a_k, self._mats["K"], PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        return A

    def _system(self, name: str) -> None:
        """The step matrix `name` and its KSP, built and factorised on first use (and again every step when the
        operator depends on the density)."""
        if name not in self.linear or self._dynamic:
            A = self._operator(name)
            old = self._mats.pop("A_" + name, None)
            self._mats["A_" + name] = A
            self.linear.operator(name, A, symmetric=name.startswith("sg"))
            if old is not None:
                old.destroy()

    @property
    def linear_solver(self) -> str | None:
        """What solves the steps, from the KSP as built (None before the first step); see StepSolver."""
        return self.linear.description

    def _size(self) -> tuple[int, int]:
        """(global dofs, the dof count from which solver='auto' goes iterative for this mesh's dimension)."""
        return self.linear.ndofs, self.linear.limit

    # ------------------------------------------------------------------ density-dependent terms
    def _refresh_state(self) -> None:
        """Interaction states of rho and rho_prev (after set_initial or resume); psi = W * rho."""
        if self.interaction is not None:
            self._s_prev = self.interaction.state(self.rho_prev)
            self._s = self.interaction.update(self.rho)
        if self._D_state is not None:
            self._D_state.update(self.rho)

    def _extrapolated_terms(self, name: str) -> None:
        """Set rho*, psi(rho*) and D(rho*) for the step `name` (see the module doc)."""
        if self.interaction is None and self._D_state is None:
            return
        c0, c1 = EXTRAPOLATION[name]
        self._rho_star.x.array[:] = c0 * self.rho.x.array + c1 * self.rho_prev.x.array
        if self.interaction is not None:
            self.interaction.set_state(c0 * self._s + c1 * self._s_prev)
        if self._D_state is not None:
            self._D_state.update(self._rho_star)
        if self._reassemble_K:
            K = self._mats["K"]
            K.zeroEntries()
            dolfinx.fem.petsc.assemble_matrix(K, self._K_form)
            K.assemble()
        if self.method == "sg":             # lagged Slotboom potential f + psi(rho_n)
            self._set_slotboom(self.f.x.array + self.interaction.nodal())

    def _set_slotboom(self, f_nodal: np.ndarray) -> None:
        """The SG operator L and the Maxwellian exp(-beta (f - min f)) of a nodal potential (local + ghosts)."""
        old = self._mats.pop("L", None)
        if old is not None:
            old.destroy()
        self._mats["L"] = edge_averaged.edge_weighted_laplacian(self.V, f_nodal, self.beta, self._sg_dofs, self._sg_Ke)
        fmin = self.comm.allreduce(float(np.min(f_nodal[: self.n_owned])) if self.n_owned else math.inf, op=MPI.MIN)
        self.maxwellian = np.exp(-self.beta * (f_nodal - fmin))

    def _set_initial(self, rho0, normalize: bool = False, mass_tol: float = 1e-2) -> None:
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
        self.linear.restart()
        self._refresh_state()
        self._mass0 = self.functionals.mass()

    # ------------------------------------------------------------------ stepping
    def _advance(self) -> dict:
        """One time step dt (Solver.step)."""
        rho, n = self.rho, self.n_owned
        if self.method == "sg":
            name = "sg_bdf2" if (self.scheme == "bdf2" and self.steps > 0) else "sg"
            while True:
                # BDF2: (3/2 rho^{n+1} - 2 rho^n + 1/2 rho^{n-1}) / dt = -L u^{n+1} (an M-matrix). Its right-hand
                # side 2 rho^n - 1/2 rho^{n-1} can be negative where rho falls by more than 4x in a step; if the
                # solution then goes negative, the step is redone by backward Euler (rho >= 0 always; counted
                # in self.sg_fallbacks)
                self._extrapolated_terms(name)
                self._system(name)
                b = self._mats["L"].createVecLeft()
                src = (2.0 * rho.x.array[:n] - 0.5 * self.rho_prev.x.array[:n]) if name == "sg_bdf2" else rho.x.array[:n]
                b.array[:] = self.m_lumped[:n] * src / self.dt
                its = self._solve(name, b, (1.5 if name == "sg_bdf2" else 1.0) / self.dt,
                                  self.m_lumped[:n] * self.maxwellian[:n])
                new = self.maxwellian * self._work.x.array
                # negatives below `floor` of the maximum are round-off of the mass sum (1e-15; far tails of a
                # drift-dominated density) or, on the Krylov path, the solve's error (its relative residual):
                # set to zero, with the mass put back by scaling; larger ones send a BDF2 step back to
                # backward Euler
                krylov = self.linear.krylov(name)
                floor = max(1e-15, self.linear.last_residual if krylov else 0.0)
                top = self.comm.allreduce(float(np.max(new[:n], initial=0.0)), op=MPI.MAX)
                if name == "sg" or not self.comm.allreduce(int(np.any(new[:n] < -floor * top)), op=MPI.SUM):
                    self._clip(new, n, krylov)
                    break
                b.destroy()
                name, self.sg_fallbacks = "sg", self.sg_fallbacks + 1
        else:
            name = "backward_euler" if (self.scheme == "bdf2" and self.steps == 0) else self.scheme
            self._extrapolated_terms(name)
            self._system(name)
            if name == "bdf2" and "backward_euler" in self.linear:     # the start-up system is not needed again
                self.linear.drop("backward_euler")
                self._mats.pop("A_backward_euler").destroy()
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
            if self.interaction is not None and not self._implicit_psi:
                g = dolfinx.fem.petsc.assemble_vector(self._L_int)
                g.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
                b.axpy(1.0, g)
                g.destroy()
            its = self._solve(name, b, (1.5 if name == "bdf2" else 1.0) / self.dt, self.functionals.mass_weights)
            new = self._work.x.array
        b.destroy()
        self.rho_prev.x.array[:] = rho.x.array
        rho.x.array[:] = new
        if self.interaction is not None:
            self._s_prev, self._s = self._s, self.interaction.update(rho)
        return {"converged": True, "iterations": its}

    def _unrecorded_step(self) -> None:
        """The functionals are skipped, not the check for NaN."""
        bad = self.comm.allreduce(int(not np.all(np.isfinite(self.rho.x.array[: self.n_owned]))), op=MPI.SUM)
        if bad:
            raise FloatingPointError(f"non-finite density after step {self.steps} (t={self.t:.6g}, "
                                     f"dt={self.dt:g}); reduce dt or check the potential")

    def _solve(self, name: str, b: PETSc.Vec, a_m: float, weights: np.ndarray) -> int:
        """Solve the step `name` into self._work (ghosts updated) by the StepSolver policy (predictor, exact
        mass restoration: see StepSolver.solve); returns the iterations."""
        its = self.linear.solve(name, b, petsc_vec(self._work), self.steps, self.dt, a_m, weights, self._what())
        self._work.x.scatter_forward()
        return its

    def _clip(self, new: np.ndarray, n: int, rescale: bool) -> None:
        """Set the negative values of `new` (local + ghosts) to zero; rescale=True puts the mass they carried back."""
        w = self.m_lumped[:n]
        before = self.comm.allreduce(float(w @ new[:n]), op=MPI.SUM) if rescale else 0.0
        np.maximum(new, 0.0, out=new)
        if rescale:
            after = self.comm.allreduce(float(w @ new[:n]), op=MPI.SUM)
            if after > 0:
                new *= before / after

    def _what(self) -> str:
        return f"Fokker-Planck step {self.steps + 1} (t={self.t + self.dt:.6g}, dt={self.dt:g})"

    def _after_record(self) -> None:
        h = self.history
        if not all(math.isfinite(h[k][-1]) for k in ("mass", "energy")) or \
                not np.all(np.isfinite(self.rho.x.array)):
            raise FloatingPointError(f"non-finite density after step {self.steps} (t={self.t:.6g}, "
                                     f"dt={self.dt:g}); reduce dt or check the potential")
        self._check_undershoot()
        self._check_energy()
        drift = abs(h["mass"][-1] - self._mass0) / abs(self._mass0)
        if drift > self.mass_check_tol:
            raise FloatingPointError(f"mass drifted by {drift:.3e} (relative) by step {self.steps} "
                                     f"(t={self.t:.6g}); tighten the KSP tolerance (-{self.prefix}ksp_rtol)"
                                     f" or reduce dt={self.dt:g}")

    def _check_energy(self) -> None:
        """Warn once when the free energy of a gradient flow (D = I, no extra drift, no source) increases by more
        than 1e-6 of its size between records: the flow never increases it, so the step is unstable (an explicit
        interaction beyond its step limit) or the discretisation does not resolve the drift."""
        h = self.history
        if (self._warned_energy or len(h["energy"]) < 2 or self.D is not None or self._D_state is not None
                or self.b is not None or self._source is not None):
            return
        F0, F1 = h["energy"][-2], h["energy"][-1]
        if F1 > F0 + 1e-6 * max(abs(F0), abs(F1), 1.0):
            self._warned_energy = True
            hint = ("interaction_scheme='explicit' is stable only for dt <~ 2 beta^-1 / max|grad psi|^2: reduce dt or "
                    "use the semi-implicit default" if self.interaction is not None and not self._implicit_psi else
                    "reduce dt" + (" or use method='sg' (F decays for every dt)" if self.method == "galerkin" else ""))
            warn(self.comm, f"the free energy increased from {F0:.6g} to {F1:.6g} by step {self.steps} (t={self.t:.4g}, "
                            f"dt={self.dt:g}), which the Fokker-Planck flow never does: {hint}", RuntimeWarning,
                 stacklevel=4)

    def _check_undershoot(self) -> None:
        """Warn once when the Galerkin density dips far below zero (an unresolved drift layer)."""
        if self.method != "galerkin" or self._warned_negative:
            return
        low = self.history["min_rho"][-1]
        top = self.comm.allreduce(float(self.rho.x.array[: self.n_owned].max(initial=-np.inf)), op=MPI.MAX)
        if low < -0.1 * top:
            self._warned_negative = True
            warn(self.comm, f"the Galerkin density undershoots: min rho = {low:.4g} at step {self.steps} "
                          f"(t={self.t:.4g}), {abs(low) / top:.1%} of max rho = {top:.4g}; the drift is not "
                          f"resolved on this mesh: refine it or use method='sg' (keeps rho >= 0)",
                          RuntimeWarning, stacklevel=3)

    def _measure(self) -> dict:
        mass = self.functionals.mass()
        F0 = self.functionals.free_energy(interaction=False)
        E = self.functionals.interaction_energy()
        return {"mass": mass, "energy": F0 + E, "interaction_energy": E,
                "relative_entropy": self.functionals.relative_entropy(mass, F0),
                "kl_reference": self.functionals.kl(self._reference) if self._reference else math.nan,
                "min_rho": self.functionals.min_value()}

    # ------------------------------------------------------------------ state
    def _functions(self) -> dict:
        return {"rho": self.rho, "rho_prev": self.rho_prev}

    def _state(self) -> dict:
        return {"scalars": {"mass0": self._mass0, "sg_fallbacks": self.sg_fallbacks}}

    def _restore(self, state: dict) -> None:
        self._mass0 = float(state["scalars"]["mass0"])
        self.sg_fallbacks = int(state["scalars"]["sg_fallbacks"])
        self.linear.restart()                   # the Krylov predictor restarts from the loaded state
        self._refresh_state()                   # psi = W * rho and D(rho) from the loaded densities

    def _fingerprint(self) -> dict:
        inter = self.interaction
        return {"degree": self.degree, "method": self.method, "scheme": self.scheme, "beta": self.beta,
                "num_dofs": self._size()[0], "gdim": self.mesh.geometry.dim,
                "quadrature_degree": self.quadrature_degree if self.method == "galerkin" else None,
                "interaction": interaction_fingerprint(inter, self.mesh.geometry.dim),
                "interaction_scheme": self.interaction_scheme if inter is not None else None,
                **self._field_moments()}

    def _field_moments(self) -> dict:
        """The fields' partition-independent numbers (fpjko.solvers.core.moments): potential_moments (int f, f^2,
        f x_i), diffusion (int D_ij, D_ij^2, D_ij x_k; None is the identity; a StateDependentDiffusion by its
        fingerprint()), drift (int b_i, b_i^2, b_i x_k; None is 0), source (int g, g^2, g x_k) and boundary_flux
        (the same over ds) at the probe times moments.PROBE_TIMES (None is 0). The fields do not change, so the
        forms are compiled and assembled once per solver, at the first fingerprint, not at every save."""
        if getattr(self, "_moments", None) is None:
            msh, x, d = self.mesh, self.x, self.mesh.geometry.dim
            b = ufl.as_vector([0.0] * d) if self.b is None else self.b
            g, j = (0 if e is None else e for e in (self._g, self._j))
            self._moments = {
                "potential_moments": moments.Moments(msh, moments.scalar(self.f_expr, x, d))(),
                "diffusion": (self._D_state.fingerprint() if self._D_state is not None else
                              moments.Moments(msh, moments.matrix(self.D, x, d))()),
                "drift": moments.Moments(msh, moments.vector(b, x, d))(),
                "source": moments.at_times(moments.Moments(msh, moments.scalar(g, x, d)), self.time),
                "boundary_flux": moments.at_times(moments.Moments(msh, moments.scalar(j, x, d), boundary=True),
                                                  self.time)}
        return self._moments

    def _release(self) -> None:
        self.linear.destroy()
        for m in self._mats.values():
            m.destroy()
        self._mats = {}
