"""Empirical measures of particles on the (distributed) FE mesh, and distances to FE densities.

Particles are rows of x (n_local, gdim), each rank holding its own share (e.g. samplers.Streams).
Every point is located once on the distributed mesh (one owning rank, also on shared faces):

- histogram: DG0 density, cell count / (n |cell|), integral = fraction of particles inside, exactly;
- project: L2 projection onto a Lagrange space, M u = b with b_i = (1/n) sum_p phi_i(x_p); since the
  basis sums to one, int u = 1 to solver tolerance (lumped=True: u_i = b_i / m_i, also >= 0);
- density_as_measure: an FE density as a weighted cloud of quadrature points, for the Wasserstein
  distances of fpjko.metrics.distances; l1_distance and kl_divergence between two FE densities.
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.la
import numpy as np
import ufl
from mpi4py import MPI

from fpjko.common.collective import agree
from fpjko.solvers.core import linear, validation
from fpjko.solvers.core.compat import petsc_vec, point_ownership
from fpjko.solvers.fokker_planck.edge_averaged import lumped_mass


OUTSIDE = ("raise", "ignore")


def _problem(x, gdim: int) -> str | None:
    """What is wrong with this rank's particles x, or None."""
    try:
        x = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as e:
        return f"particles must be a float array (n, {gdim}): {e}"
    if gdim == 1 and x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2 or x.shape[1] != gdim:
        return (f"particles must have shape (n, {gdim}) on this {gdim}D mesh, got shape {x.shape}"
                + (" (a 1D array is only read as (n, 1) on a 1D mesh)" if x.ndim == 1 else ""))
    if not np.all(np.isfinite(x)):
        i = int(np.argmax(~np.isfinite(x).all(axis=1)))
        return f"particle {i} is not finite: x={x[i]}"
    return None


def _pad3(comm, x: np.ndarray, gdim: int) -> np.ndarray:
    """Particles (n_local, gdim) padded to 3 coordinates; the check is collective (every rank
    raises if any rank's particles are malformed)."""
    agree(comm, _problem(x, gdim))
    x = np.asarray(x, dtype=float).reshape(-1, gdim)
    p = np.zeros((len(x), 3))
    p[:, :gdim] = x
    return p


def locate(mesh, x: np.ndarray, outside: str = "raise"):
    """Owned (points (m, 3), local cells (m,)) on this rank, and the global particle count n.

    outside='raise' names the first particle outside the mesh; 'ignore' drops such particles (they
    still count in n, so the histogram's mass is the fraction inside)."""
    comm = mesh.comm
    validation.one_of("outside", outside, OUTSIDE)
    p = _pad3(comm, x, mesh.geometry.dim)
    n = comm.allreduce(len(p), op=MPI.SUM)
    if n == 0:
        raise ValueError("no particles on any rank (n = 0): an empirical measure needs at least one")
    src, pts, cells = point_ownership(mesh, p)
    lost = int(np.sum(src < 0))
    lost_all = comm.allreduce(lost, op=MPI.SUM)
    if lost_all and outside == "raise":
        first = comm.allgather(p[src < 0][0, :mesh.geometry.dim] if lost else None)
        ex = next(f for f in first if f is not None)
        raise ValueError(f"{lost_all} of {n} particles lie outside the mesh, e.g. x={np.array2string(ex, precision=6)}; "
                         "enlarge the domain or pass outside='ignore'")
    return pts, cells, n


def cell_volumes(mesh) -> np.ndarray:
    V0 = dolfinx.fem.functionspace(mesh, ("DG", 0))
    v = ufl.TestFunction(V0)
    vec = dolfinx.fem.assemble_vector(dolfinx.fem.form(v * ufl.dx))
    return vec.array[: V0.dofmap.index_map.size_local].copy()


def histogram(mesh, x: np.ndarray, outside: str = "raise") -> dolfinx.fem.Function:
    """DG0 histogram density of the particles (all ranks' particles together)."""
    pts, cells, n = locate(mesh, x, outside)
    V0 = dolfinx.fem.functionspace(mesh, ("DG", 0))
    nc = V0.dofmap.index_map.size_local
    counts = np.bincount(cells, minlength=nc).astype(float)
    h = dolfinx.fem.Function(V0, name="histogram")
    dofs = V0.dofmap.list[:nc, 0]
    h.x.array[dofs] = counts / (n * cell_volumes(mesh)[dofs])
    h.x.scatter_forward()
    return h


def _reference_coords(mesh, pts: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Pull back points to the reference cell (affine simplices)."""
    tdim, gdim = mesh.topology.dim, mesh.geometry.dim
    geo = mesh.geometry.x[:, :gdim]
    nodes = mesh.geometry.dofmap[cells][:, : tdim + 1]
    x0 = geo[nodes[:, 0]]
    J = np.stack([geo[nodes[:, k + 1]] - x0 for k in range(tdim)], axis=2)      # (m, gdim, tdim)
    if gdim == tdim:
        return np.linalg.solve(J, (pts[:, :gdim] - x0)[..., None])[..., 0]
    return np.einsum("mij,mj->mi", np.linalg.pinv(J), pts[:, :gdim] - x0)


def particle_load(V, x: np.ndarray, outside: str = "raise") -> dolfinx.fem.Function:
    """b_i = (1/n) sum_p phi_i(x_p), assembled over ranks (owned entries valid)."""
    mesh = V.mesh
    if V.element.needs_dof_transformations or V.dofmap.index_map_bs != 1:
        raise ValueError("particle projection needs a scalar Lagrange space of degree <= 2 on simplices")
    if mesh.topology.cell_name() not in ("interval", "triangle", "tetrahedron"):
        raise ValueError(f"particle projection needs simplices, got {mesh.topology.cell_name()}")
    pts, cells, n = locate(mesh, x, outside)
    b = dolfinx.fem.Function(V)
    if len(cells):
        X = _reference_coords(mesh, pts, cells)
        phi = V.element.basix_element.tabulate(0, X)[0, :, :, 0]                 # (m, ndofs)
        dofs = V.dofmap.list[cells]
        np.add.at(b.x.array, dofs.ravel(), phi.ravel() / n)
    b.x.scatter_reverse(dolfinx.la.InsertMode.add)
    b.x.scatter_forward()
    return b


def project(V, x: np.ndarray, lumped: bool = False, outside: str = "raise",
            petsc_options: dict | None = None) -> dolfinx.fem.Function:
    """L2 projection of the empirical measure onto V (lumped: nodal, nonnegative)."""
    b = particle_load(V, x, outside)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    u_h = dolfinx.fem.Function(V, name="projection")
    if lumped:
        if V.element.basix_element.degree != 1:
            raise ValueError(f"lumped projection needs P1 (the row sums of the P{V.element.basix_element.degree} "
                             "mass matrix vanish at the vertices); use lumped=False")
        u_h.x.array[:] = b.x.array / lumped_mass(V)
        u_h.x.scatter_forward()
        return u_h
    M = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(u * v * ufl.dx))
    M.assemble()
    ksp = linear.make_ksp(M, "proj_", petsc_options)
    linear.solve(ksp, petsc_vec(b), petsc_vec(u_h), "L2 projection of particles")
    u_h.x.scatter_forward()
    ksp.destroy()
    M.destroy()
    return u_h


def _assemble(integrand, mesh, quadrature_degree: int | None = None) -> float:
    md = {"quadrature_degree": quadrature_degree} if quadrature_degree else {}
    f = dolfinx.fem.form(integrand * ufl.dx(domain=mesh, metadata=md))
    return mesh.comm.allreduce(dolfinx.fem.assemble_scalar(f), op=MPI.SUM)


def integral(u) -> float:
    return _assemble(u, u.function_space.mesh)


def l1_distance(u, v, quadrature_degree: int = 8) -> float:
    """int |u - v| dx (high-order quadrature; the kink of |.| limits it to O(h^2) accuracy)."""
    return _assemble(abs(u - v), u.function_space.mesh, quadrature_degree)


def kl_divergence(p, q, quadrature_degree: int = 8, floor: float = 1e-300) -> float:
    """KL(p || q) = int p log(p / q) with 0 log 0 = 0; q is floored at `floor`."""
    integrand = ufl.conditional(ufl.gt(p, 0), p * ufl.ln(ufl.max_value(p, floor) / ufl.max_value(q, floor)), 0)
    return _assemble(integrand, p.function_space.mesh, quadrature_degree)


def density_as_measure(rho, quadrature_degree: int = 6, gather: bool = True, neg_tol: float = 1e-8):
    """The density rho as a weighted cloud: quadrature points (m, gdim) and weights rho |J| w (m,),
    normalised to sum 1. Weights below -neg_tol * max are an error; smaller negatives are set to 0.
    gather=True returns the whole cloud on every rank."""
    import basix

    mesh = rho.function_space.mesh
    cell = basix.CellType[mesh.topology.cell_name()]
    Xq, wq = basix.make_quadrature(cell, quadrature_degree)
    nc = mesh.topology.index_map(mesh.topology.dim).size_local
    cells = np.arange(nc, dtype=np.int32)
    gdim = mesh.geometry.dim
    xe = dolfinx.fem.Expression(ufl.SpatialCoordinate(mesh), Xq)
    ve = dolfinx.fem.Expression(rho * abs(ufl.JacobianDeterminant(mesh)), Xq)
    pts = np.asarray(xe.eval(mesh, cells)).reshape(nc * len(wq), gdim)
    w = (np.asarray(ve.eval(mesh, cells)).reshape(nc, len(wq)) * wq[None, :]).ravel()
    comm = mesh.comm
    if gather and comm.size > 1:
        pts = np.concatenate(comm.allgather(pts), axis=0)
        w = np.concatenate(comm.allgather(w))
    wmax = comm.allreduce(float(np.abs(w).max(initial=0)), op=MPI.MAX)
    bad = None
    if len(w) and not np.all(np.isfinite(w)):
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        bad = f"density is not finite at x={pts[i]} (weight {w[i]})"
    elif len(w) and w.min() < -neg_tol * wmax:
        i = int(np.argmin(w))
        bad = f"density is negative at x={pts[i]} (weight {w[i]:.3e}); it is not a probability density"
    agree(comm, bad)                                   # every rank raises (the cloud may be split over ranks)
    w = np.maximum(w, 0.0)
    total = w.sum() if gather else comm.allreduce(w.sum(), op=MPI.SUM)     # gathered: the whole cloud
    if not (math.isfinite(total) and total > 0):       # the same total on every rank
        raise ValueError(f"density has total mass {float(total)!r}: a zero density is no probability measure")
    return pts, w / total


def cdf_1d(rho, sub: int = 4, gauss: int = 4, neg_tol: float = 1e-8):
    """CDF of a 1D FE density on a grid refining each cell `sub` times (Gauss quadrature of rho on every
    sub-interval); collective, the whole grid on every rank. For fpjko.metrics.distances.wasserstein_1d_cdf."""
    from fpjko.solvers.particles.evaluate import evaluate_on_points

    mesh = rho.function_space.mesh
    if mesh.topology.dim != 1:
        raise ValueError(f"cdf_1d needs a 1D mesh, got dimension {mesh.topology.dim}")
    verts = np.unique(np.concatenate(mesh.comm.allgather(mesh.geometry.x[:, 0])))
    t = np.linspace(0, 1, sub + 1)
    grid = np.unique(np.concatenate([verts[:-1, None] + np.diff(verts)[:, None] * t[None, :-1], verts[-1:, None]],
                                    axis=None))
    gq, gw = np.polynomial.legendre.leggauss(gauss)
    h = np.diff(grid)
    mid = 0.5 * (grid[1:] + grid[:-1])
    pts = np.zeros((len(h) * gauss, 3))
    pts[:, 0] = (mid[:, None] + 0.5 * h[:, None] * gq[None, :]).ravel()
    vals = evaluate_on_points(rho, pts).reshape(len(h), gauss)
    mass = 0.5 * h * (vals @ gw)
    if mass.min() < -neg_tol * np.abs(mass).max():
        i = int(np.argmin(mass))
        raise ValueError(f"density is negative near x={mid[i]:.6g} (cell mass {mass[i]:.3e})")
    cdf = np.concatenate([[0.0], np.cumsum(np.maximum(mass, 0.0))])
    return grid, cdf / cdf[-1]
