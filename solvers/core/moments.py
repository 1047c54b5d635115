"""Moments of a problem's fixed fields (a potential, a diffusion tensor, a drift, a source, a boundary flux): the
numbers by which a checkpoint's fingerprint tells two problems apart (fpjko.solvers.core.protocol).

A moment is int_Omega g dx (or int_{boundary} g ds) of a UFL scalar g. All the moments of one field are one
vector form against a DG0 vector test function with one component per moment, compiled once: an assembly gives
every cell's contributions (ghosts added to their owners), summed over the owned cells and over the ranks. The
cells and their quadrature points do not depend on the partition, so the moments agree on any number of ranks up
to the order of the sums: round-off, far inside check_fingerprint's tolerance (relative 1e-8 on lists, with an
absolute floor of 1e-10 of the list's largest entry, so a moment that is 0 up to round-off, int b for an odd b,
compares as 0).

A field is summarised by
    scalar f       int f, int f^2, int f x_k                          (2 + d numbers)
    vector b       int b_i, int b_i^2, int b_i x_k                    (2 d + d^2)
    matrix D       int D_ij, int D_ij^2, int D_ij x_k for i <= j      (symmetric D: (2 + d) d (d + 1) / 2)
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.la
import numpy as np
import ufl
from mpi4py import MPI

MAX_DEGREE = 8          # the quadrature degree of the moments: UFL's estimate, at most this


def scalar(f, x, d: int) -> list:
    """The integrands of a scalar field's moments: f, f^2, f x_k.

    Parameters
    ----------
    f : UFL expression
        A scalar.
    x : ufl.SpatialCoordinate
    d : int
        The geometric dimension.

    Returns
    -------
    list of UFL expressions
        2 + d scalars.
    """
    return [f, f * f] + [f * x[k] for k in range(d)]


def vector(b, x, d: int) -> list:
    """The integrands of a vector field's moments: b_i, then b_i^2, then b_i x_k.

    Parameters
    ----------
    b : UFL expression
        A vector of length d.
    x : ufl.SpatialCoordinate
    d : int

    Returns
    -------
    list of UFL expressions
        2 d + d^2 scalars.
    """
    return ([b[i] for i in range(d)] + [b[i] * b[i] for i in range(d)]
            + [b[i] * x[k] for i in range(d) for k in range(d)])


def matrix(D, x, d: int) -> list:
    """The integrands of a symmetric matrix field's moments: D_ij, D_ij^2, D_ij x_k for i <= j.

    Parameters
    ----------
    D : UFL expression
        A d x d matrix (None: the identity).
    x : ufl.SpatialCoordinate
    d : int

    Returns
    -------
    list of UFL expressions
        (2 + d) d (d + 1) / 2 scalars.
    """
    D = ufl.Identity(d) if D is None else D
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    return ([D[i, j] for i, j in pairs] + [D[i, j] * D[i, j] for i, j in pairs]
            + [D[i, j] * x[k] for i, j in pairs for k in range(d)])


def json_numbers(values) -> list:
    """Finite values as floats, the others as their repr (a NaN compares equal to itself in a fingerprint).

    Parameters
    ----------
    values : array_like

    Returns
    -------
    list
    """
    return [float(v) if math.isfinite(v) else repr(float(v)) for v in np.ravel(np.asarray(values, float))]


class Moments:
    """int g_k dx (or ds) over a mesh for UFL scalars g_k: one form, compiled once, assembled at every call.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
    integrands : list of UFL expressions or numbers
        The scalars g_k (a field's `scalar`, `vector` or `matrix` list).
    boundary : bool
        Integrate over the exterior facets (ds) instead of the cells (dx).
    """

    def __init__(self, mesh, integrands: list, boundary: bool = False):
        comps = [ufl.as_ufl(g) for g in integrands]
        self.count = len(comps)
        self.comm = mesh.comm
        self._form = None
        if all(isinstance(g, ufl.constantvalue.Zero) for g in comps):
            return                                      # a zero field: nothing to compile
        W = dolfinx.fem.functionspace(mesh, ("DG", 0, (self.count,)))
        g = ufl.as_vector(comps)
        degree = min(MAX_DEGREE, ufl.algorithms.estimate_total_polynomial_degree(g))
        measure = (ufl.ds if boundary else ufl.dx)(domain=mesh, metadata={"quadrature_degree": degree})
        self._form = dolfinx.fem.form(ufl.inner(g, ufl.TestFunction(W)) * measure)
        self._owned = W.dofmap.index_map.size_local

    def __call__(self) -> list:
        """The moments now (collective: the coefficients' current values, e.g. of a time Constant).

        Returns
        -------
        list
            `count` floats (a non-finite one as its repr), the same on every rank.
        """
        out = np.zeros(self.count)
        if self._form is not None:
            vec = dolfinx.fem.assemble_vector(self._form)
            vec.scatter_reverse(dolfinx.la.InsertMode.add)
            out = vec.array[: self._owned * self.count].reshape(-1, self.count).sum(axis=0)
        out = np.ascontiguousarray(out, dtype=float)
        self.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return json_numbers(out)


PROBE_TIMES = (0.0, 0.2718281828459045, 0.9142135623730951)   # fixed, not special for sin, cos or exp of t


def at_times(moments: Moments, time, times=PROBE_TIMES) -> list:
    """A time-dependent field's moments at fixed probe times, one list (the time Constant is restored).

    Parameters
    ----------
    moments : Moments
        Of a field that reads the time from `time`.
    time : dolfinx.fem.Constant
        The field's time.
    times : tuple of float

    Returns
    -------
    list
        len(times) * moments.count floats.
    """
    saved = float(time.value)
    out = []
    try:
        for t in times:
            time.value = t
            out += moments()
    finally:
        time.value = saved
    return out
