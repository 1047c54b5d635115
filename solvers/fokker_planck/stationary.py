"""Stationary Fokker-Planck densities without time stepping, and their probability currents.

The stationary problem K rho = 0 (K the no-flux operator, whose columns sum to zero) is solved with
the unit-mass constraint as the bordered system

    [ K    m ] [ rho    ]   [ 0 ]
    [ m^T  0 ] [ lambda ] = [ 1 ],      m_i = int phi_i dx,

non-singular when the stationary density is unique (then lambda = 0). It is assembled as one PETSc
AIJ matrix (the extra row lives on the last rank) and solved by LU (MUMPS) by default.
From rho_ss: Phi = -beta^-1 log rho_ss (so rho_ss = exp(-beta Phi)), the current
J = -(rho grad f - rho b + beta^-1 div(D rho)), its L2 projection J_h, div J_h, and j = J / rho_ss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from solvers.core.compat import interpolate, petsc_vec
from solvers.core.linear import make_ksp, solve


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
    """The unit-mass stationary density of a FokkerPlanckSolver's operator, with its current."""
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
