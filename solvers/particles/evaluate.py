"""Point evaluation of Functions on a distributed mesh (collective: every rank gets all values)."""

from __future__ import annotations

import dolfinx.fem
import dolfinx.geometry
import numpy as np
from mpi4py import MPI


def locate_cells(mesh, points: np.ndarray) -> np.ndarray:
    """For points (N, 3), the local index of an owned cell containing each point, or -1."""
    tdim = mesh.topology.dim
    n_owned = mesh.topology.index_map(tdim).size_local
    tree = dolfinx.geometry.bb_tree(mesh, tdim, np.arange(n_owned, dtype=np.int32))
    cand = dolfinx.geometry.compute_collisions_points(tree, points)
    coll = dolfinx.geometry.compute_colliding_cells(mesh, cand, points)
    off = coll.offsets
    cells = np.full(len(points), -1, dtype=np.int32)
    has = off[1:] > off[:-1]
    cells[has] = coll.array[off[:-1][has]]
    return cells


def evaluate_on_points(u: dolfinx.fem.Function, points: np.ndarray) -> np.ndarray:
    """u at points (the same on every rank); NaN outside the mesh.

    Points on cell faces shared by ranks are averaged (equal for continuous u).

    Parameters
    ----------
    u : dolfinx.fem.Function
    points : numpy.ndarray, shape (N, 3)

    Returns
    -------
    numpy.ndarray, shape (N,) or (N, value_size)
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    mesh = u.function_space.mesh
    cells = locate_cells(mesh, points)
    found = cells >= 0
    size = int(np.prod(u.ufl_shape)) if u.ufl_shape else 1
    vals = np.zeros((len(points), size))
    if found.any():
        vals[found] = np.asarray(u.eval(points[found], cells[found])).reshape(-1, size)
    count = found.astype(float)
    comm = mesh.comm
    total = np.zeros_like(vals)
    ntot = np.zeros_like(count)
    comm.Allreduce(vals, total, op=MPI.SUM)
    comm.Allreduce(count, ntot, op=MPI.SUM)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / ntot[:, None]
    out[ntot == 0] = np.nan
    return out[:, 0] if size == 1 else out.reshape(len(points), *u.ufl_shape)
