"""The few dolfinx APIs renamed between 0.9 (Debian trixie) and 0.10, behind one name each.

Feature detection, not version parsing: each helper looks at what the installed dolfinx offers.
"""

from __future__ import annotations

import dolfinx
import dolfinx.fem
import numpy as np


def interpolation_points(element) -> np.ndarray:
    """Reference interpolation points of a FiniteElement (a method in 0.9, a property in 0.10)."""
    pts = element.interpolation_points
    return pts() if callable(pts) else pts


def expression(expr, V) -> dolfinx.fem.Expression:
    """A compiled UFL expression evaluated at V's interpolation points."""
    return dolfinx.fem.Expression(expr, interpolation_points(V.element))


def interpolate(u: dolfinx.fem.Function, expr) -> dolfinx.fem.Function:
    """u <- nodal interpolation of a UFL expression, a numpy callable or another Function.

    A numpy callable's values are checked first (dolfinx reads them without a check: a wrong shape read memory out
    of bounds): shape (n,) for n points x of shape (3, n) (a scalar is broadcast), (value_size, n) for a vector or
    tensor space; an error is raised on every rank."""
    if isinstance(expr, dolfinx.fem.Function):
        u.interpolate(expr)
    elif callable(expr) and not _is_ufl(expr):
        from fpjko.common.collective import collectively

        size = int(np.prod(u.ufl_shape)) if u.ufl_shape else 1

        def checked(x):
            n = x.shape[1]
            v = np.asarray(expr(x), dtype=float)
            if v.ndim == 0:
                v = np.full(n, float(v)) if size == 1 else v
            want = (n,) if size == 1 else (size, n)
            if v.shape != want and not (size == 1 and v.shape == (1, n)):
                raise ValueError(f"the function {getattr(expr, '__name__', expr)!r} returned values of shape {v.shape} "
                                 f"at {n} points x of shape {x.shape}; expected {want}")
            return v

        collectively(u.function_space.mesh.comm, u.interpolate, checked)
    else:
        u.interpolate(expression(expr, u.function_space))
    u.x.scatter_forward()
    return u


def _is_ufl(obj) -> bool:
    import ufl.core.expr

    return isinstance(obj, ufl.core.expr.Expr)


def petsc_vec(u: dolfinx.fem.Function):
    """The PETSc Vec wrapping a Function's local array (x.petsc_vec since 0.8)."""
    return u.x.petsc_vec


def dolfinx_version() -> tuple[int, int]:
    major, minor = dolfinx.__version__.split(".")[:2]
    return int(major), int(minor)


def expression_at_points(expr, points: np.ndarray, mesh, cells: np.ndarray) -> np.ndarray:
    """Evaluate a UFL expression at reference points of the given cells: (n_cells, n_points * size).
    (Expression.eval takes the mesh first since 0.8.)"""
    e = dolfinx.fem.Expression(expr, points)
    return np.asarray(e.eval(mesh, cells))


def point_ownership(mesh, points: np.ndarray, padding: float = 1e-10):
    """Collective: the owning rank of each local point (-1 if none) and, for the points this rank
    owns, their coordinates (m, 3) and local cells. One owner per point even on shared faces.
    (dolfinx.geometry.determine_point_ownership in 0.10; only the C++ binding in 0.9.)"""
    import dolfinx.geometry

    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if hasattr(dolfinx.geometry, "determine_point_ownership"):
        data = dolfinx.geometry.determine_point_ownership(mesh, points, padding)
    else:
        import dolfinx.cpp.geometry

        data = dolfinx.cpp.geometry.determine_point_ownership(mesh._cpp_object, points, padding)
    get = (lambda name: getattr(data, name)() if callable(getattr(data, name)) else getattr(data, name))
    src = np.asarray(get("src_owner"))
    dest_pts = np.asarray(get("dest_points")).reshape(-1, 3)
    dest_cells = np.asarray(get("dest_cells"), dtype=np.int32)
    return src, dest_pts, dest_cells
