"""Stationary Fokker-Planck densities without time stepping, and their probability currents.

The stationary problem K rho = 0 (K the no-flux operator, whose columns sum to zero) is solved with
the unit-mass constraint as the bordered system

    [ K    m ] [ rho    ]   [ 0 ]
    [ m^T  0 ] [ lambda ] = [ 1 ],      m_i = int phi_i dx,

non-singular when the stationary density is unique (then lambda = 0). It is assembled as one PETSc
AIJ matrix (the extra row lives on the last rank) and solved by LU (MUMPS) by default.
From rho_ss: Phi = -beta^-1 log rho_ss (so rho_ss = exp(-beta Phi)), the current
J = -(rho grad f - rho b + beta^-1 div(D rho)), its L2 projection J_h, div J_h, and j = J / rho_ss.

With an interaction W (McKean-Vlasov), `mean_field_stationary` solves the self-consistency
rho = exp(-beta (f + W * rho)) / Z (D = I, gradient drift) as a fixed point on the nodal values,
accelerated by Anderson mixing; several stationary states may exist (phase transitions), and the
initial guess picks the branch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.common import checks
from fpjko.common.collective import same_everywhere
from fpjko.solvers.core.compat import interpolate, petsc_vec
from fpjko.solvers.core.linear import make_ksp, solve
from fpjko.solvers.fokker_planck.edge_averaged import lumped_mass
from fpjko.common.warn import warn as _warn


@dataclass
class Stationary:
    rho: dolfinx.fem.Function          # unit-mass stationary density
    phi: dolfinx.fem.Function          # -beta^-1 log rho (rho clipped at 1e-300)
    current: dolfinx.fem.Function      # L2 projection of J onto vector Lagrange of the same degree
    velocity: dolfinx.fem.Function     # j = J_h / rho (rho clipped at 1e-12 max rho)
    residual: float                    # ||K rho||_2 / (||K||_F ||rho||_2)
    div_current: float                 # ||div J_h||_L2
    current_norm: float                # ||J_h||_L2
    mass: float
    ksp_its: int


def _bordered(K: PETSc.Mat, m: np.ndarray) -> PETSc.Mat:
    """[[K, m], [m^T, 0]] as an AIJ matrix; every rank keeps its rows, the last rank also owns the
    constraint row (it gathers m, one vector)."""
    comm = K.getComm().tompi4py()
    N = K.getSize()[0]
    r0, r1 = K.getOwnershipRange()
    indptr, cols, vals = K.getValuesCSR()
    counts = np.diff(indptr)
    # each owned row gets one more entry, column N, appended (columns stay sorted)
    new_ptr = np.concatenate([[0], np.cumsum(counts + 1)])
    new_cols = np.empty(new_ptr[-1], dtype=PETSc.IntType)
    new_vals = np.empty(new_ptr[-1], dtype=PETSc.ScalarType)
    pos = np.arange(len(cols)) + np.repeat(np.arange(len(counts)), counts)
    new_cols[pos], new_vals[pos] = cols, vals
    new_cols[new_ptr[1:] - 1], new_vals[new_ptr[1:] - 1] = N, m
    last = comm.rank == comm.size - 1
    m_all = comm.gather(m, root=comm.size - 1)
    if last:
        row = np.concatenate([np.concatenate(m_all), [0.0]])
        new_ptr = np.concatenate([new_ptr, [new_ptr[-1] + N + 1]])
        new_cols = np.concatenate([new_cols, np.arange(N + 1, dtype=PETSc.IntType)])
        new_vals = np.concatenate([new_vals, row])
    n_loc = (r1 - r0) + (1 if last else 0)
    A = PETSc.Mat().createAIJ(((n_loc, N + 1), (n_loc, N + 1)),
                              csr=(new_ptr.astype(PETSc.IntType), new_cols, new_vals), comm=K.getComm())
    A.assemble()
    return A


def project(expr, V, prefix: str = "proj_") -> dolfinx.fem.Function:
    """L2 projection of a UFL expression onto V (LU)."""
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(ufl.inner(u, v) * ufl.dx))
    A.assemble()
    b = dolfinx.fem.petsc.assemble_vector(dolfinx.fem.form(ufl.inner(expr, v) * ufl.dx))
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    out = dolfinx.fem.Function(V)
    ksp = make_ksp(A, prefix)
    solve(ksp, b, petsc_vec(out), "L2 projection")
    out.x.scatter_forward()
    ksp.destroy(), A.destroy(), b.destroy()
    return out


def stationary_density(solver, petsc_options: dict | None = None, prefix: str | None = None) -> Stationary:
    """The unit-mass stationary density of a FokkerPlanckSolver's operator, with its current.

    Parameters
    ----------
    solver : FokkerPlanckSolver
    petsc_options : dict, optional
        Options of the bordered stationary solve.
    prefix : str, optional
        Its PETSc options prefix (default: the solver's prefix + 'ss_').

    Returns
    -------
    Stationary
        rho, phi = -beta^-1 log rho, the current J_h and velocity J_h / rho, the residual, ||div J_h||, ||J_h||,
        the mass.
    """
    same_everywhere(solver.comm, "stationary_density", {"petsc_options": petsc_options, "prefix": prefix})
    if getattr(solver, "interaction", None) is not None:
        raise ValueError("the solver has an interaction W: its stationary states solve a nonlinear "
                         "self-consistency; use mean_field_stationary(solver, guess)")
    V, comm, n = solver.V, solver.comm, solver.n_owned
    rho = dolfinx.fem.Function(V, name="rho_ss")
    its = 0
    if solver.method == "sg":       # the discrete equilibrium is the nodal Maxwellian (exactly)
        mass = comm.allreduce(float(np.sum(solver.m_lumped[:n] * solver.maxwellian[:n])))
        rho.x.array[:] = solver.maxwellian / mass
        residual = 0.0
    else:
        K = solver._mats["K"]
        v = ufl.TestFunction(V)
        mvec = dolfinx.fem.petsc.assemble_vector(dolfinx.fem.form(v * ufl.dx))
        mvec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        A = _bordered(K, mvec.array_r[:n].copy())
        rhs, sol = A.createVecs()
        rhs.set(0.0)
        if comm.rank == comm.size - 1:
            rhs.setValue(K.getSize()[0], 1.0)
        rhs.assemble()
        ksp = make_ksp(A, prefix or solver.prefix + "ss_", petsc_options)
        its = solve(ksp, rhs, sol, "stationary Fokker-Planck (bordered) solve")
        rho.x.array[:n] = sol.array_r[:n]
        rho.x.scatter_forward()
        r = K.createVecLeft()
        K.mult(petsc_vec(rho), r)
        residual = r.norm() / (K.norm(PETSc.NormType.FROBENIUS) * petsc_vec(rho).norm())
        for obj in (ksp, A, rhs, sol, r, mvec):
            obj.destroy()
    dx = ufl.dx(metadata={"quadrature_degree": 2 * solver.degree + 2})
    mass = comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(rho * dx)))
    phi = interpolate(dolfinx.fem.Function(V, name="Phi"),
                      -ufl.ln(ufl.max_value(rho, 1e-300)) / solver.beta)
    d = solver.mesh.geometry.dim
    W = dolfinx.fem.functionspace(solver.mesh, ("Lagrange", solver.degree, (d,)))
    J = project(solver.current(rho), W, prefix=solver.prefix + "proj_")
    J.name = "J"
    rmax = comm.allreduce(float(np.max(rho.x.array[:n])) if n else 0.0, op=MPI.MAX)
    j = interpolate(dolfinx.fem.Function(W, name="j"), J / ufl.max_value(rho, 1e-12 * rmax))

    def norm(e):
        return math.sqrt(comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(ufl.inner(e, e) * dx))))

    return Stationary(rho=rho, phi=phi, current=J, velocity=j, residual=float(residual),
                      div_current=norm(ufl.div(J)), current_norm=norm(J), mass=mass, ksp_its=its)


@dataclass
class MeanFieldStationary:
    rho: dolfinx.fem.Function          # unit-mass solution of rho = exp(-beta (f + W * rho)) / Z (nodal)
    converged: bool                    # the stopping test max|G(rho) - rho| <= tol max|rho| fired
    iterations: int
    residuals: list = field(default_factory=list)     # max|G(rho_k) - rho_k| / max|rho_k| per iteration
    free_energy: float = math.nan      # F = int f rho + 1/2 iint W rho rho + beta^-1 int rho log rho


def mean_field_stationary(solver, guess=None, tol: float = 1e-10, max_iter: int = 500, memory: int = 5,
                          warn: bool = True) -> MeanFieldStationary:
    """A stationary state of the McKean-Vlasov equation of `solver` (D = I, no extra drift).

    The nodal fixed point rho = G(rho) = I_h exp(-beta (f + W * rho)) / Z, Z = int I_h exp(...), with Anderson
    mixing of depth `memory` (falling back to the plain Picard step where mixing would make a value negative).
    Stops when max|G(rho) - rho| <= tol max|rho|; if max_iter is reached first it warns and returns
    converged=False.

    Parameters
    ----------
    solver : FokkerPlanckSolver
        With an interaction.
    guess : dolfinx.fem.Function, callable or UFL expression, optional
        The start (default: the solver's current rho); for several stationary states the guess chooses the branch.
    tol : float
        The stopping test.
    max_iter : int
    memory : int
        Anderson depth (0: Picard).
    warn : bool
        Warn when max_iter is reached.

    Returns
    -------
    MeanFieldStationary
        rho, converged, iterations, residuals (one per iteration), free_energy.
    """
    same_everywhere(solver.comm, "mean_field_stationary", {"guess": guess, "tol": tol, "max_iter": max_iter,
                                                           "memory": memory, "warn": warn})
    tol = checks.positive_number("tol", tol)
    max_iter = checks.integer("max_iter", max_iter, 1)
    memory = checks.integer("memory", memory, 0)
    if solver.interaction is None:
        raise ValueError("mean_field_stationary needs a solver with an interaction; use stationary_density")
    if solver.D is not None or solver.b is not None:
        raise ValueError("mean_field_stationary solves rho = exp(-beta (f + W * rho)) / Z, valid for D = I and "
                         "a gradient drift only; time-step the solver to equilibrium otherwise")
    comm, n, V = solver.comm, solver.n_owned, solver.V
    w = lumped_mass(V)[:n]                                     # int phi_i: int I_h g = sum_i w_i g_i
    f = solver.f.x.array
    rho = dolfinx.fem.Function(V, name="rho_mf")
    if guess is None:
        rho.x.array[:] = solver.rho.x.array
    elif isinstance(guess, dolfinx.fem.Function):
        rho.interpolate(guess)
    else:
        interpolate(rho, guess)
    inter = solver.interaction

    def G(x_owned):
        rho.x.array[:n] = x_owned
        rho.x.scatter_forward()
        inter.update(rho)
        e = f + inter.nodal()
        emin = comm.allreduce(float(np.min(e[:n])) if n else math.inf, op=MPI.MIN)
        g = np.exp(-solver.beta * (e[:n] - emin))
        return g / comm.allreduce(float(np.dot(w, g)))

    def gmax(a):
        return comm.allreduce(float(np.max(np.abs(a))) if len(a) else 0.0, op=MPI.MAX)

    def gdot(a, b):
        return comm.allreduce(a.T @ b)

    x = rho.x.array[:n].copy()
    X, Gs, residuals, converged = [], [], [], False
    for _ in range(max_iter):
        gx = G(x)
        res = gmax(gx - x) / max(gmax(x), 1e-300)
        residuals.append(res)
        if res <= tol:
            x, converged = gx, True
            break
        X, Gs = (X + [x])[-(memory + 1):], (Gs + [gx])[-(memory + 1):]
        x = gx
        if len(X) > 1:                      # Anderson (type II): least-squares combination of the last steps
            R = [g - y for g, y in zip(Gs, X)]
            dR = np.stack([R[j + 1] - R[j] for j in range(len(R) - 1)], axis=1)
            dG = np.stack([Gs[j + 1] - Gs[j] for j in range(len(R) - 1)], axis=1)
            A = gdot(dR, dR)
            gam = np.linalg.lstsq(A + 1e-14 * np.trace(A) * np.eye(len(A)), gdot(dR, R[-1]), rcond=None)[0]
            mixed = gx - dG @ gam
            if comm.allreduce(int(np.any(mixed < 0)), op=MPI.MAX):   # keep rho >= 0: Picard, restart
                X, Gs = [], []
            else:
                x = mixed
    rho.x.array[:n] = x
    rho.x.scatter_forward()
    if not converged and warn:
        _warn(None, f"mean_field_stationary did not converge in {max_iter} iterations "
                      f"(residual {residuals[-1]:.3e} > tol={tol:g})", RuntimeWarning, stacklevel=2)
    # free energy of the result, with the solver's own functionals (rho temporarily swapped in)
    saved = solver.rho.x.array.copy()
    solver.rho.x.array[:] = rho.x.array
    solver.interaction.update(solver.rho)
    F = solver.functionals.free_energy()
    solver.rho.x.array[:] = saved
    solver.interaction.update(solver.rho)
    return MeanFieldStationary(rho=rho, converged=converged, iterations=len(residuals), residuals=residuals,
                               free_energy=F)
