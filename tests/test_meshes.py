"""Mesh builders: sizes, measure, Delaunay quality, bad sizes."""

import math

import dolfinx.fem
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from fpjko import meshes
from fpjko.meshes.builders import cell_size


def measure(msh):
    return MPI.COMM_WORLD.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ufl.dx(domain=msh))))


def test_interval_rectangle_box_measure_and_size():
    comm = MPI.COMM_WORLD
    m = meshes.interval(comm, -1.0, 2.0, 0.1)
    assert m.topology.index_map(1).size_global == 30 and abs(measure(m) - 3.0) < 1e-13
    r = meshes.rectangle(comm, [-1, 0], [1, 3], 0.25)
    assert r.topology.index_map(2).size_global == 2 * 8 * 12 and abs(measure(r) - 6.0) < 1e-12
    assert cell_size(r) <= 0.25 * math.sqrt(2) + 1e-12
    b = meshes.box(comm, [0, 0, 0], [1, 2, 1], 0.5)
    assert b.topology.index_map(3).size_global == 6 * 2 * 4 * 2 and abs(measure(b) - 2.0) < 1e-12


def test_disk_area_converges_second_order(slope):
    hs = [0.2, 0.1, 0.05]
    errs = [abs(measure(meshes.disk(MPI.COMM_WORLD, 1.5, h)) - math.pi * 1.5**2) for h in hs]
    assert 1.8 < slope(hs, errs) < 2.2, errs
    d = meshes.disk(MPI.COMM_WORLD, 1.5, 0.1, center=(1.0, -2.0))
    x = d.geometry.x
    r = np.hypot(x[:, 0] - 1.0, x[:, 1] + 2.0)
    assert r.max() <= 1.5 + 1e-12 and cell_size(d) < 2.5 * 0.1


def test_l_shape_measure_cells_and_nonobtuse():
    """The L: three quarters of the rectangle's area and cells, no node inside the cut quarter, and a stiffness
    matrix with no positive off-diagonal entry (the two-point schemes' weights are >= 0)."""
    import dolfinx.fem.petsc

    comm = MPI.COMM_WORLD
    m = meshes.l_shape(comm, [-1, -1], [1, 2], 0.25)
    assert m.topology.index_map(2).size_global == 2 * 8 * 12 * 3 // 4 and abs(measure(m) - 4.5) < 1e-12
    x = m.geometry.x
    assert not np.any((x[:, 0] > 1e-12) & (x[:, 1] > 0.5 + 1e-12)), "a node in the cut quarter"
    V = dolfinx.fem.functionspace(m, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx))
    A.assemble()
    ip, cols, vals = A.getValuesCSR()
    r0 = A.getOwnershipRange()[0]
    rows = r0 + np.repeat(np.arange(len(ip) - 1), np.diff(ip))
    assert vals[rows != cols].max() <= 1e-13
    with pytest.raises(ValueError, match="2D corners"):
        meshes.l_shape(comm, [0, 0, 0], [1, 1, 1], 0.1)


@pytest.mark.parametrize("h", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_size(h):
    with pytest.raises(ValueError, match="h="):
        meshes.rectangle(MPI.COMM_WORLD, [0, 0], [1, 1], h)
