"""Edge-averaged (Scharfetter-Gummel / EAFE) P1 operator for the flux J = -beta^-1 M grad(rho / M).

With the Maxwellian M = exp(-beta f) and the Slotboom variable u = rho / M, the no-flux
Fokker-Planck operator becomes the symmetric weighted graph Laplacian

    (L u)_i = sum_j  w_ij (u_i - u_j),   w_ij = omega_ij * beta^-1 * H_ij,

where omega_ij = -K_ij are the P1 stiffness (cotangent) edge weights and H_ij is the harmonic
mean of M along the edge, exact for f linear on the edge:

    H_ij = (1/|E| int_E M^-1 ds)^-1 = exp(-beta min(f_i, f_j)) * B(beta |f_i - f_j|),  B(s) = s / (e^s - 1).

With the lumped mass m_i, backward Euler reads (diag(m M)/dt + L) u^{n+1} = m rho^n / dt. On a
mesh with omega_ij >= 0 (non-obtuse / Delaunay) the matrix is a symmetric M-matrix, so rho stays
non-negative, lumped mass is conserved exactly, and the lumped free energy decays every step.
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc


def bernoulli(s: np.ndarray) -> np.ndarray:
    """B(s) = s / (exp(s) - 1), with B(0) = 1, for s >= 0."""
    s = np.asarray(s, dtype=float)
    out = np.ones_like(s)
    nz = s > 1e-300
    with np.errstate(over="ignore"):          # expm1 -> inf gives B = 0, the right limit
        out[nz] = s[nz] / np.expm1(s[nz])
    return out


def p1_element_stiffness(V: dolfinx.fem.FunctionSpace) -> tuple[np.ndarray, np.ndarray]:
    """(dofs, K_e) over owned cells: dofs (nc, d+1) local dof indices, K_e (nc, d+1, d+1) the
    element stiffness matrices of the Laplacian for affine simplices."""
    msh = V.mesh
    tdim, gdim = msh.topology.dim, msh.geometry.dim
    if tdim != gdim:
        raise ValueError(f"edge-averaged assembly needs tdim == gdim, got {tdim} != {gdim}")
    nc = msh.topology.index_map(tdim).size_local
    dofs = V.dofmap.list[:nc]
    X = V.tabulate_dof_coordinates()[:, :gdim][dofs]             # (nc, d+1, d)
    J = X[:, 1:, :] - X[:, :1, :]                                 # rows: edge vectors
    Jinv = np.linalg.inv(J)
    G = np.empty((nc, tdim + 1, gdim))
    G[:, 1:, :] = np.transpose(Jinv, (0, 2, 1))                   # grad of barycentric coords
    G[:, 0, :] = -G[:, 1:, :].sum(axis=1)
    vol = np.abs(np.linalg.det(J)) / math.factorial(tdim)
    return dofs, vol[:, None, None] * np.einsum("cik,cjk->cij", G, G)


def _assemble(V, dofs, Ae) -> PETSc.Mat:
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    A = dolfinx.fem.petsc.create_matrix(dolfinx.fem.form(u * v * ufl.dx))
    A.zeroEntries()
    nc, k = dofs.shape
    A.setValuesLocalRCV(dofs.astype(PETSc.IntType), dofs.astype(PETSc.IntType),
                        Ae.reshape(nc, k * k), addv=PETSc.InsertMode.ADD_VALUES)
    A.assemble()
    return A


def edge_weighted_laplacian(V, f_nodal: np.ndarray, beta: float, dofs=None, Ke=None) -> PETSc.Mat:
    """The matrix L above, from local (owned + ghost) nodal values of f."""
    if dofs is None:
        dofs, Ke = p1_element_stiffness(V)
    bf = beta * f_nodal[dofs]                                     # (nc, d+1)
    lo = np.minimum(bf[:, :, None], bf[:, None, :])
    gap = np.abs(bf[:, :, None] - bf[:, None, :])
    bmin = beta * float(V.mesh.comm.allreduce(np.min(f_nodal) if len(f_nodal) else np.inf, op=MPI.MIN))
    H = np.exp(-(lo - bmin)) * bernoulli(gap)                    # harmonic mean of M/exp(-bmin)
    Ae = Ke * H / beta
    idx = np.arange(dofs.shape[1])
    Ae[:, idx, idx] = 0.0
    Ae[:, idx, idx] = -Ae.sum(axis=2)
    return _assemble(V, dofs, Ae)


def check_nonobtuse(V, dofs, Ke, tol: float = 1e-12) -> None:
    """Raise if an assembled P1 stiffness off-diagonal is positive (a negative edge weight), naming
    the edge; then the M-matrix property, and with it positivity, is not guaranteed."""
    K = _assemble(V, dofs, Ke)
    indptr, cols, vals = K.getValuesCSR()
    r0 = K.getOwnershipRange()[0]
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    diag = np.zeros(len(indptr) - 1)
    on = cols == rows + r0
    diag[rows[on]] = vals[on]
    bad = (~on) & (vals > tol * diag[rows])
    nbad = V.mesh.comm.allreduce(int(bad.sum()))
    K.destroy()
    if nbad:
        x = V.tabulate_dof_coordinates()
        i = np.flatnonzero(bad)[0] if bad.any() else None
        where = (f" (e.g. an edge at the node x=({', '.join(f'{c:.4g}' for c in x[rows[i]])}))"
                 if i is not None else "")
        raise ValueError(f"the mesh has {nbad} edges with negative cotangent weight{where}: it is not "
                         "non-obtuse/Delaunay, so the structure-preserving scheme cannot guarantee "
                         "rho >= 0; use meshes.rectangle/disk or pass check_mesh=False")


def lumped_mass(V) -> np.ndarray:
    """Row sums of the P1 mass matrix (int phi_i dx), local array with ghosts updated."""
    v = ufl.TestFunction(V)
    m = dolfinx.fem.Function(V)
    b = dolfinx.fem.petsc.assemble_vector(dolfinx.fem.form(v * ufl.dx))
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    n = V.dofmap.index_map.size_local
    m.x.array[:n] = b.array_r[:n]
    m.x.scatter_forward()
    b.destroy()
    return m.x.array.copy()
