"""Moments of a problem's fixed fields (a potential, a diffusion tensor, a drift, a source, a boundary flux): the
numbers by which a checkpoint's fingerprint tells two problems apart (fpjko.solvers.core.protocol).

A moment is int_Omega g dx (or int_{boundary} g ds) of a UFL scalar g. All the moments of one field are one
vector form against a DG0 vector test function with one component per moment, compiled once: an assembly gives
every cell's contributions (ghosts added to their owners), summed over the owned cells and over the ranks. The
cells and their quadrature points do not depend on the partition, so the moments agree on any number of ranks up
to the order of the sums: round-off, far inside check_fingerprint's tolerance (relative 1e-8 on lists, with an
absolute floor of 1e-10 of the list's largest entry, so a moment that is 0 up to round-off, int b for an odd b,
compares as 0).

A field is summarised by its integrals against the test functions 1, g (itself), x_k, x_k x_l (k <= l) and
PROBES fixed trigonometric functions cos(<k_m, x> + c_m) (fixed random frequencies and phases): the second moments
and the waves tell apart fields that the first moments cannot (x0 x1 against -x0 x1 on a symmetric box):
    scalar f       f times each test function
    vector b       each b_i times each test function
    matrix D       each D_ij (i <= j) times each test function
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.la
import numpy as np
import ufl
from mpi4py import MPI

MAX_DEGREE = 8          # the quadrature degree of every moment


PROBES = 4              # trigonometric test functions per field


def _waves(d: int):
    rng = np.random.default_rng(20261207)
    K = rng.uniform(1.0, 3.0, (PROBES, d)) * rng.choice([-1.0, 1.0], (PROBES, d))
    return K, rng.uniform(0.0, 2 * math.pi, PROBES)


def nodal_tests(X: np.ndarray) -> np.ndarray:
    """The test functions of `tests` at points, for moments of nodal values (sum_i w_i f_i t(x_i)).

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)

    Returns
    -------
    numpy.ndarray, shape (n, number of test functions)
    """
    X = np.asarray(X, float)
    d = X.shape[1]
    K, c = _waves(d)
    quad = [X[:, k] * X[:, l] for k in range(d) for l in range(k, d)]
    return np.column_stack([X] + quad + [np.cos(X @ K.T + c)])


def nodal(values: np.ndarray, weights: np.ndarray, X: np.ndarray, comm) -> list:
    """A nodal field's moments: sum_i w_i f_i, sum_i w_i f_i^2 and sum_i w_i f_i t(x_i) for each test function,
    over the owned nodes of every rank (partition-independent up to round-off).

    Parameters
    ----------
    values, weights : numpy.ndarray, shape (n,)
        The owned nodes' values and weights (e.g. lumped masses; 1 for plain sums).
    X : numpy.ndarray, shape (n, d)
    comm : mpi4py.MPI.Comm or None
        None: the values are all of them (no sum over ranks).

    Returns
    -------
    list
    """
    f, w = np.asarray(values, float), np.asarray(weights, float)
    loc = np.concatenate([[w @ f, w @ (f * f)], (w * f) @ nodal_tests(X)])
    return json_numbers(loc if comm is None else comm.allreduce(loc, op=MPI.SUM))


def tests(x, d: int) -> list:
    """The test functions of every moment: x_k, x_k x_l (k <= l) and PROBES waves cos(<k_m, x> + c_m) with fixed
    frequencies |k_m| in [1, 3] per axis (signs and values drawn once, the same in every run) and phases c_m.

    Parameters
    ----------
    x : ufl.SpatialCoordinate
    d : int

    Returns
    -------
    list of UFL expressions
    """
    K, c = _waves(d)
    waves = [ufl.cos(sum(float(K[m, k]) * x[k] for k in range(d)) + float(c[m])) for m in range(PROBES)]
    return [x[k] for k in range(d)] + [x[k] * x[l] for k in range(d) for l in range(k, d)] + waves


def scalar(f, x, d: int) -> list:
    """The integrands of a scalar field's moments: f, f^2, and f times each of `tests`.

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
    """
    return [f, f * f] + [f * g for g in tests(x, d)]


def vector(b, x, d: int) -> list:
    """The integrands of a vector field's moments: b_i, then b_i^2, then b_i times each of `tests`.

    Parameters
    ----------
    b : UFL expression
        A vector of length d.
    x : ufl.SpatialCoordinate
    d : int

    Returns
    -------
    list of UFL expressions
    """
    t = tests(x, d)
    return [b[i] for i in range(d)] + [b[i] * b[i] for i in range(d)] + [b[i] * g for i in range(d) for g in t]


def matrix(D, x, d: int) -> list:
    """The integrands of a symmetric matrix field's moments: D_ij, D_ij^2, D_ij times each of `tests`, i <= j.

    Parameters
    ----------
    D : UFL expression
        A d x d matrix (None: the identity).
    x : ufl.SpatialCoordinate
    d : int

    Returns
    -------
    list of UFL expressions
    """
    D = ufl.Identity(d) if D is None else D
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    t = tests(x, d)
    return ([D[i, j] for i, j in pairs] + [D[i, j] * D[i, j] for i, j in pairs]
            + [D[i, j] * g for i, j in pairs for g in t])


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
        # one quadrature rule for every field (not UFL's estimate, which depends on how a field is given: a
        # constant and the same values as a P1 field must give the same numbers against the waves)
        measure = (ufl.ds if boundary else ufl.dx)(domain=mesh, metadata={"quadrature_degree": MAX_DEGREE})
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
