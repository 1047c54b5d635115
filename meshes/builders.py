"""Simplex meshes of intervals, rectangles, L-shaped domains, boxes and disks from a target cell size."""

from __future__ import annotations

import inspect
import math

import basix.ufl
import dolfinx.mesh
import numpy as np
import ufl
from mpi4py import MPI

from fpjko.common.collective import same_everywhere


_CREATE_MESH_PARAMS = list(inspect.signature(dolfinx.mesh.create_mesh).parameters)


def create_mesh(comm, cells: np.ndarray, x: np.ndarray, coordinate_element, ghosted: bool = True):
    """dolfinx.mesh.create_mesh with (cells, x, element) in whichever order this dolfinx wants.

    dolfinx 0.9 takes (comm, cells, x, e), 0.10 (comm, cells, e, x): feature detection.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    cells : numpy.ndarray of int64, shape (num_cells, nodes_per_cell)
        The cells given on this rank (all on rank 0 and none elsewhere is fine).
    x : numpy.ndarray, shape (num_points, gdim)
        The points given on this rank.
    coordinate_element : ufl.Mesh
        The coordinate element.
    ghosted : bool
        One layer of ghost cells across rank boundaries (GhostMode.shared_facet, as the built-in rectangle and
        box have), which interior-facet integrals (DG transport) need.

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    kw = {}
    if ghosted and comm.size > 1:
        kw["partitioner"] = dolfinx.mesh.create_cell_partitioner(dolfinx.mesh.GhostMode.shared_facet)
    if "x" in _CREATE_MESH_PARAMS and "e" in _CREATE_MESH_PARAMS:
        return dolfinx.mesh.create_mesh(comm, cells, x=x, e=coordinate_element, **kw)
    return dolfinx.mesh.create_mesh(comm, cells, x, coordinate_element, **kw)  # pragma: no cover


def _cells_for(length: float, h: float, name: str) -> int:
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"mesh size h must be a positive finite number, got h={h!r}")
    if not (np.isfinite(length) and length > 0):
        raise ValueError(f"{name} must have positive finite extent, got {length!r}")
    n = math.ceil(length / h - 1e-12)
    check_size(n, f"{name} (length {length:g}) with h={h:g}")
    return max(1, int(n))


BYTES_PER_CELL = 600        # mesh, topology and a P1 solver's share, measured order of magnitude


def check_size(cells: float, what: str) -> None:
    """Refuse a mesh whose estimated memory (BYTES_PER_CELL a cell) is over fpjko.common.sizes.memory_limit(), before
    building it: a MemoryError naming the cells and the estimate."""
    from fpjko.common.sizes import check_memory

    check_memory(f"{what}: {cells:.3g} cells", cells * BYTES_PER_CELL, "use a larger h")


def _given_cells(cells, k: int, what: str) -> list:
    """cells per side as given (an int for every side, or k ints), checked."""
    from fpjko.common import checks

    vals = [cells] * k if np.ndim(cells) == 0 else list(cells)
    if len(vals) != k:
        raise ValueError(f"{what}: cells must be one integer or {k} integers, got {cells!r}")
    return [checks.integer("cells", c, 1) for c in vals]


def interval(comm: MPI.Comm, a: float, b: float, h: float, cells: int | None = None) -> dolfinx.mesh.Mesh:
    """[a, b] split into ceil((b - a) / h) equal cells (or `cells`).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    a, b : float
        The ends, a < b.
    h : float
        The largest cell size.
    cells : int, optional
        The number of cells instead (e.g. exactly twice a coarser mesh's).

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    same_everywhere(comm, "meshes.interval", {"a": a, "b": b, "h": h, "cells": cells})
    n = _cells_for(b - a, h, f"interval [{a}, {b}]") if cells is None else _given_cells(cells, 1, "interval")[0]
    check_size(n, f"interval [{a}, {b}] with {n} cells")
    return dolfinx.mesh.create_interval(comm, n, [a, b])


def rectangle(comm: MPI.Comm, lower, upper, h: float, diagonal: str = "right", cells=None) -> dolfinx.mesh.Mesh:
    """The rectangle [lower, upper] with right triangles of legs at most h.

    The default 'right' diagonal gives a non-obtuse (Delaunay) triangulation, as the structure-preserving scheme
    needs; 'crossed' also is.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    lower, upper : array_like, shape (2,)
        Opposite corners.
    h : float
        The largest leg.
    diagonal : {'right', 'left', 'crossed'}
    cells : int or (int, int), optional
        Cells per side instead of those of h.

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    same_everywhere(comm, "meshes.rectangle", {"lower": lower, "upper": upper, "h": h, "diagonal": diagonal,
                                               "cells": cells})
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    n = ([_cells_for(upper[i] - lower[i], h, f"rectangle side {i}") for i in range(2)] if cells is None else
         _given_cells(cells, 2, "rectangle"))
    check_size(2.0 * n[0] * n[1] * (2 if diagonal == "crossed" else 1), f"rectangle {n[0]} x {n[1]} with h={h:g}")
    diag = {"right": dolfinx.mesh.DiagonalType.right, "left": dolfinx.mesh.DiagonalType.left,
            "crossed": dolfinx.mesh.DiagonalType.crossed}[diagonal]
    return dolfinx.mesh.create_rectangle(comm, [lower, upper], n, dolfinx.mesh.CellType.triangle,
                                         diagonal=diag)


def box(comm: MPI.Comm, lower, upper, h: float, cells=None) -> dolfinx.mesh.Mesh:
    """The box [lower, upper] split into tetrahedra (6 per cube of side at most h).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    lower, upper : array_like, shape (3,)
        Opposite corners.
    h : float
        The largest edge of the cubes.
    cells : int or (int, int, int), optional
        Cubes per side instead of those of h.

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    same_everywhere(comm, "meshes.box", {"lower": lower, "upper": upper, "h": h, "cells": cells})
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    n = ([_cells_for(upper[i] - lower[i], h, f"box side {i}") for i in range(3)] if cells is None else
         _given_cells(cells, 3, "box"))
    check_size(6.0 * n[0] * n[1] * n[2], f"box {n[0]} x {n[1]} x {n[2]} with h={h:g}")
    return dolfinx.mesh.create_box(comm, [lower, upper], n, dolfinx.mesh.CellType.tetrahedron)


def disk_points(radius: float, h: float, center=(0.0, 0.0)) -> np.ndarray:
    """Concentric rings of points spaced about h apart, the outermost on the circle.

    Parameters
    ----------
    radius, h : float
    center : array_like, shape (2,)

    Returns
    -------
    numpy.ndarray, shape (num_points, 2)
    """
    nr = _cells_for(radius, h, f"disk radius {radius}")
    check_size(2 * math.pi * nr * nr, f"disk of radius {radius} with h={h:g}")
    pts = [np.zeros((1, 2))]
    for k in range(1, nr + 1):
        r = radius * k / nr
        m = max(6, int(round(2 * math.pi * r / (radius / nr))))
        th = 2 * math.pi * (np.arange(m) + 0.5 * (k % 2)) / m
        pts.append(np.column_stack([r * np.cos(th), r * np.sin(th)]))
    return np.vstack(pts) + np.asarray(center, float)


def disk(comm: MPI.Comm, radius: float, h: float, center=(0.0, 0.0)) -> dolfinx.mesh.Mesh:
    """A polygonal disk: the Delaunay triangulation of concentric rings of points.

    Delaunay triangulations of convex point sets have non-negative cotangent edge weights, as the
    structure-preserving scheme needs. Rank 0 builds the triangulation; dolfinx distributes it.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    radius : float
    h : float
        The spacing of the rings and of the points on them.
    center : array_like, shape (2,)

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    same_everywhere(comm, "meshes.disk", {"radius": radius, "h": h, "center": center})
    nr = _cells_for(radius, h, f"disk radius {radius}")         # every rank checks the size: rank 0 builds alone
    check_size(2 * math.pi * nr * nr, f"disk of radius {radius} with h={h:g}")
    return delaunay_mesh(comm, disk_points(radius, h, center) if comm.rank == 0 else None)


def delaunay_mesh(comm: MPI.Comm, x) -> dolfinx.mesh.Mesh:
    """The Delaunay triangulation of rank 0's points in the plane, its triangles counter-clockwise; dolfinx
    distributes it. Collective.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    x : array_like, shape (num_points, 2)
        The points, on rank 0 (ignored on the others).

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    from scipy.spatial import Delaunay

    if comm.rank == 0:
        x = np.asarray(x, float)
        tri = Delaunay(x).simplices.astype(np.int64)
        a, b, c = x[tri[:, 0]], x[tri[:, 1]], x[tri[:, 2]]
        det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        tri[det < 0] = tri[det < 0][:, [0, 2, 1]]
    else:
        x, tri = np.zeros((0, 2)), np.zeros((0, 3), dtype=np.int64)
    element = ufl.Mesh(basix.ufl.element("Lagrange", "triangle", 1, shape=(2,)))
    return create_mesh(comm, tri, x, element)


def l_shape(comm: MPI.Comm, lower, upper, h: float) -> dolfinx.mesh.Mesh:
    """The L-shaped domain: the rectangle [lower, upper] without its upper-right quarter, in right triangles of legs
    at most h (the rectangle's 'right' diagonal: non-obtuse, so the two-point schemes' weights are >= 0). A
    non-convex domain: a W2 geodesic between its arms bends around the re-entrant corner. Rank 0 builds the
    triangulation; dolfinx distributes it.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    lower, upper : array_like, shape (2,)
        Opposite corners of the rectangle; the re-entrant corner is at their midpoint.
    h : float
        The largest leg.

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    same_everywhere(comm, "meshes.l_shape", {"lower": lower, "upper": upper, "h": h})
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    if lower.shape != (2,) or upper.shape != (2,):
        raise ValueError(f"l_shape needs 2D corners, got lower={lower.tolist()}, upper={upper.tolist()}")
    half = [_cells_for((upper[i] - lower[i]) / 2, h, f"l_shape half side {i}") for i in range(2)]
    n = [2 * c for c in half]
    check_size(2.0 * n[0] * n[1] * 0.75, f"l_shape {n[0]} x {n[1]} with h={h:g}")
    if comm.rank == 0:
        gx, gy = (np.linspace(lower[i], upper[i], n[i] + 1) for i in range(2))
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        i, j = (a.ravel() for a in np.meshgrid(np.arange(n[0]), np.arange(n[1]), indexing="ij"))
        keep = ~((i >= half[0]) & (j >= half[1]))
        i, j = i[keep], j[keep]
        node = lambda a, b: a * (n[1] + 1) + b          # noqa: E731
        v0, v1, v2, v3 = node(i, j), node(i + 1, j), node(i, j + 1), node(i + 1, j + 1)
        tri = np.concatenate([np.column_stack([v0, v1, v3]), np.column_stack([v0, v3, v2])]).astype(np.int64)
        used = np.unique(tri)
        x = np.column_stack([X.ravel(), Y.ravel()])[used]
        tri = np.searchsorted(used, tri).astype(np.int64)
    else:
        x, tri = np.zeros((0, 2)), np.zeros((0, 3), dtype=np.int64)
    element = ufl.Mesh(basix.ufl.element("Lagrange", "triangle", 1, shape=(2,)))
    return create_mesh(comm, tri, x, element)


def boundary_dofs(V) -> np.ndarray:
    """The owned dofs of V on the exterior facets of its mesh.

    Parameters
    ----------
    V : dolfinx.fem.FunctionSpace

    Returns
    -------
    numpy.ndarray of int32, shape (num_owned_boundary_dofs,)
    """
    import dolfinx.fem

    msh = V.mesh
    fdim = msh.topology.dim - 1
    msh.topology.create_connectivity(fdim, msh.topology.dim)
    dofs = dolfinx.fem.locate_dofs_topological(V, fdim, dolfinx.mesh.exterior_facet_indices(msh.topology))
    return dofs[dofs < V.dofmap.index_map.size_local]


def cell_size(msh: dolfinx.mesh.Mesh) -> float:
    """The largest cell diameter over all ranks.

    Parameters
    ----------
    msh : dolfinx.mesh.Mesh

    Returns
    -------
    float
    """
    tdim = msh.topology.dim
    n = msh.topology.index_map(tdim).size_local
    h = msh.h(tdim, np.arange(n, dtype=np.int32)) if n else np.zeros(1)
    return msh.comm.allreduce(float(np.max(h)) if len(h) else 0.0, op=MPI.MAX)


def space_time(comm: MPI.Comm, lower, upper, h: float, nt: int) -> dolfinx.mesh.Mesh:
    """The space-time cylinder [lower, upper] x [0, 1] (time the last coordinate) of the dynamic JKO step.

    Triangles for 1D space, tetrahedra for 2D space (the Benamou-Brenier step of fpjko.solvers.JKOSolver).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    lower, upper : array_like, shape (d,)
        The spatial box, d = 1 or 2.
    h : float
        The largest spatial cell size.
    nt : int
        Time layers (>= 1).

    Returns
    -------
    dolfinx.mesh.Mesh
        A (d + 1)-dimensional mesh.
    """
    lower, upper = np.atleast_1d(np.asarray(lower, float)), np.atleast_1d(np.asarray(upper, float))
    if nt < 1:
        raise ValueError(f"need at least one time layer, got nt={nt}")
    n = [_cells_for(upper[i] - lower[i], h, f"side {i}") for i in range(len(lower))]
    lo, hi = [*lower, 0.0], [*upper, 1.0]
    if len(lower) == 1:
        return dolfinx.mesh.create_rectangle(comm, [lo, hi], [n[0], nt], dolfinx.mesh.CellType.triangle)
    if len(lower) == 2:
        return dolfinx.mesh.create_box(comm, [lo, hi], [n[0], n[1], nt], dolfinx.mesh.CellType.tetrahedron)
    raise ValueError(f"space-time meshes for 1D or 2D space, got {len(lower)}D")


def _extent(msh: dolfinx.mesh.Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box (lower, upper) of the mesh's geometry over all ranks (gdim coordinates)."""
    gdim = msh.geometry.dim
    x = msh.geometry.x[:, :gdim]
    lo = np.ascontiguousarray(np.min(x, axis=0) if len(x) else np.full(gdim, np.inf), dtype=float)
    hi = np.ascontiguousarray(np.max(x, axis=0) if len(x) else np.full(gdim, -np.inf), dtype=float)
    glo, ghi = np.empty_like(lo), np.empty_like(hi)
    msh.comm.Allreduce(lo, glo, op=MPI.MIN)
    msh.comm.Allreduce(hi, ghi, op=MPI.MAX)
    return glo, ghi


def space_time_of(spatial: dolfinx.mesh.Mesh, nt: int) -> dolfinx.mesh.Mesh:
    """The space-time cylinder over a spatial mesh's bounding box, with its largest cell size and nt time layers.

    Parameters
    ----------
    spatial : dolfinx.mesh.Mesh
        An interval or rectangle mesh; the result lives on its communicator.
    nt : int
        Time layers (>= 1).

    Returns
    -------
    dolfinx.mesh.Mesh
        See `space_time`.
    """
    lo, hi = _extent(spatial)
    return space_time(spatial.comm, lo, hi, cell_size(spatial), nt)


def check_space_time(msh: dolfinx.mesh.Mesh) -> None:
    """Raise (on every rank) unless msh is a space-time cylinder.

    Parameters
    ----------
    msh : dolfinx.mesh.Mesh
        Must have full dimension, its last coordinate (time) spanning [0, 1].

    Raises
    ------
    ValueError
        Naming the mesh's dimensions and the range of its last coordinate.
    """
    gdim, tdim = msh.geometry.dim, msh.topology.dim
    lo, hi = _extent(msh)
    if tdim != gdim or gdim < 2 or abs(lo[-1]) > 1e-12 or abs(hi[-1] - 1.0) > 1e-12:
        raise ValueError(f"not a space-time mesh (time the last coordinate on [0, 1]): a {tdim}D mesh in {gdim}D with "
                         f"last coordinate on [{lo[-1]:g}, {hi[-1]:g}]; build it with meshes.space_time or "
                         f"meshes.space_time_of(spatial_mesh, nt)")


def unit_square(comm: MPI.Comm, n: int) -> dolfinx.mesh.Mesh:
    """[0, 1]^2 in n x n quadrilaterals: the mesh of the graphon solvers (one cell per block of a step graphon).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    n : int
        Cells per side (>= 1).

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"unit_square needs n >= 1 cells per side, got n={n!r}")
    check_size(int(n) ** 2, f"unit_square with n={n}")
    return dolfinx.mesh.create_unit_square(comm, int(n), int(n), dolfinx.mesh.CellType.quadrilateral)


def unit_square_cells(msh: dolfinx.mesh.Mesh) -> int:
    """n of a uniform n x n quadrilateral mesh of [0, 1]^2 (meshes.unit_square); anything else is refused.

    Parameters
    ----------
    msh : dolfinx.mesh.Mesh

    Returns
    -------
    int
        Cells per side.
    """
    tdim = msh.topology.dim
    lo, hi = _extent(msh)
    cells = msh.topology.index_map(tdim).size_global
    n = math.isqrt(cells)
    quad = msh.topology.cell_type == dolfinx.mesh.CellType.quadrilateral
    if not (quad and msh.geometry.dim == 2 and n * n == cells and np.allclose(lo, 0) and np.allclose(hi, 1)
            and abs(cell_size(msh) - math.sqrt(2) / n) < 1e-9):
        raise ValueError(f"the graphon solvers need a uniform n x n quadrilateral mesh of [0, 1]^2 "
                         f"(meshes.unit_square(comm, n)); got {cells} {msh.topology.cell_type.name} cells on "
                         f"[{lo[0]:g}, {hi[0]:g}] x [{lo[-1]:g}, {hi[-1]:g}]")
    return n
