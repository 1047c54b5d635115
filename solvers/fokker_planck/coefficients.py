"""Diffusion tensors D(x) and drifts b(x) for the Fokker-Planck operator, and their checks.

D may be given as
  - None: the identity (isotropic case);
  - a constant array (d x d);
  - a callable x -> UFL matrix expression (x the SpatialCoordinate; `ufl.as_matrix([[...]])`),
    or x -> nested lists of UFL expressions;
  - a dolfinx Function in a tensor Lagrange space on the same mesh (a field, e.g. SGD's
    gradient covariance estimated at the nodes: see `tensor_field`).
It must be symmetric positive definite; `check_spd` evaluates it at quadrature points of every
cell and fails naming the first point where it is not.
"""

from __future__ import annotations

import math
import numbers

import basix
import dolfinx.fem
import numpy as np
import ufl
from mpi4py import MPI

from fpjko.solvers.core.validation import _fmt, raise_collectively


def as_ufl_matrix(D, mesh, x):
    """The UFL matrix for D (see module doc), or None for the identity."""
    d = mesh.geometry.dim
    if D is None:
        return None
    if isinstance(D, dolfinx.fem.Function):
        if D.function_space.mesh is not mesh:
            raise ValueError("diffusion field D lives on a different mesh than the solver: mismatched meshes")
        if D.ufl_shape != (d, d):
            raise ValueError(f"diffusion field D must have shape ({d}, {d}), got {D.ufl_shape}")
        return D
    if callable(D):
        expr = call_ufl(D, x, "diffusion D", mesh)
        expr = ufl.as_matrix(expr) if isinstance(expr, (list, tuple)) else ufl.as_ufl(expr)
    else:
        arr = np.asarray(D, dtype=float)
        if arr.shape != (d, d):
            raise ValueError(f"constant diffusion D must have shape ({d}, {d}), got {arr.shape}")
        expr = dolfinx.fem.Constant(mesh, arr)
    if expr.ufl_shape != (d, d):
        raise ValueError(f"diffusion D(x) must be a {d}x{d} matrix, got shape {expr.ufl_shape}")
    return expr


def as_ufl_vector(b, mesh, x, what="drift"):
    d = mesh.geometry.dim
    if b is None:
        return None
    if isinstance(b, dolfinx.fem.Function):
        if b.function_space.mesh is not mesh:
            raise ValueError(f"{what} field lives on a different mesh than the solver: mismatched meshes")
        expr = b
    elif callable(b):
        expr = call_ufl(b, x, what, mesh)
        expr = ufl.as_vector(expr) if isinstance(expr, (list, tuple)) else ufl.as_ufl(expr)
    else:
        expr = dolfinx.fem.Constant(mesh, np.asarray(b, dtype=float))
    if expr.ufl_shape != (d,):
        raise ValueError(f"{what} b(x) must be a vector of length {d}, got shape {expr.ufl_shape}")
    return expr


def check_finite(mesh, expr, degree: int, what: str) -> None:
    """Collective: ValueError naming the first quadrature point where expr is NaN or inf."""
    if ufl.domain.extract_unique_domain(expr) is None:      # a constant (UFL folds 0 * ... to Zero)
        return
    vals, X = evaluate_at_quadrature(mesh, expr, degree)
    bad = ~np.isfinite(vals).all(axis=tuple(range(1, vals.ndim)))      # per point; also for 0 points
    msg = None
    if bad.any():
        i = int(np.argmax(bad))
        msg = f"{what} is not finite at x={_fmt(X[i])}: {np.array2string(vals[i], precision=6)}"
    raise_collectively(mesh.comm, msg)


def evaluate_at_quadrature(mesh, expr, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, points): expr at the quadrature points of the owned cells, values of shape
    (n_points, *expr.ufl_shape), points of shape (n_points, gdim)."""
    from fpjko.solvers.core.compat import expression_at_points

    tdim = mesh.topology.dim
    cell = basix.CellType[mesh.topology.cell_name()]
    pts, _ = basix.make_quadrature(cell, degree)
    cells = np.arange(mesh.topology.index_map(tdim).size_local, dtype=np.int32)
    vals = expression_at_points(expr, pts, mesh, cells)
    X = expression_at_points(ufl.SpatialCoordinate(mesh), pts, mesh, cells)
    shape = expr.ufl_shape
    return vals.reshape(-1, *shape), X.reshape(-1, mesh.geometry.dim)


def spd_problem(vals: np.ndarray, X: np.ndarray, rtol: float = 1e-10, what: str = "diffusion D",
                semidefinite: bool = False) -> str | None:
    """A message naming the first point x (rows of X) where the matrices vals (n, d, d) are not finite,
    not symmetric or not positive definite (semidefinite: have an eigenvalue below -rtol times their size); None if
    all are. Local (no communication)."""
    if not np.all(np.isfinite(vals)):
        i = np.flatnonzero(~np.isfinite(vals).reshape(len(vals), -1).all(axis=1))[0]
        return f"{what} is not finite at x={_fmt(X[i])}: D={vals[i].tolist()}"
    if not len(vals):
        return None
    scale = np.abs(vals).reshape(len(vals), -1).max(axis=1)
    asym = np.abs(vals - np.swapaxes(vals, 1, 2)).reshape(len(vals), -1).max(axis=1)
    if np.any(asym > rtol * np.maximum(scale, 1e-300)):
        i = int(np.argmax(asym / np.maximum(scale, 1e-300)))
        return f"{what} is not symmetric at x={_fmt(X[i])}: D={np.round(vals[i], 6).tolist()}"
    eig = np.linalg.eigvalsh(vals)
    lo = eig[:, 0]
    if np.any(lo < -rtol * scale) if semidefinite else np.any(lo <= rtol * scale):
        i = int(np.argmin(lo / np.maximum(scale, 1e-300)))
        return (f"{what} is not positive {'semi-' if semidefinite else ''}definite at x={_fmt(X[i])}: eigenvalues "
                f"{_fmt(eig[i])}, D={np.round(vals[i], 6).tolist()}")
    return None


def check_spd(mesh, D, degree: int = 2, rtol: float = 1e-10) -> float:
    """Raise ValueError if D is not symmetric positive definite at some quadrature point (or at
    the nodes of a field); returns the smallest eigenvalue found."""
    comm = mesh.comm
    vals, X = evaluate_at_quadrature(mesh, D, degree)
    if isinstance(D, dolfinx.fem.Function):                    # nodal values too
        V = D.function_space
        n = V.dofmap.index_map.size_local
        d = mesh.geometry.dim
        nodal = D.x.array.reshape(-1, d, d)[:n]
        vals = np.concatenate([vals, nodal])
        X = np.concatenate([X, V.tabulate_dof_coordinates()[:n, :d]])
    raise_collectively(comm, spd_problem(vals, X, rtol))
    local_min = float(np.linalg.eigvalsh(vals)[:, 0].min()) if len(vals) else np.inf
    return comm.allreduce(local_min, op=MPI.MIN)


class StateDependentDiffusion:
    """A diffusion tensor that depends on the density, D = D(x; rho), held as a P1 tensor field.

    Subclasses fill `values(X, rho)` -> (n, d, d) at the field's nodes X (n, d); FokkerPlanckSolver calls
    `update(rho)` before each step with the (extrapolated) density and re-assembles its operator. A P1
    field that is SPD at the nodes is SPD everywhere (convex combinations), so the nodal check is
    complete; a failure names the node and the eigenvalues on every rank. A subclass whose D is a covariance that
    vanishes where the noise does (`semidefinite = True`, e.g. SGD's) is checked positive semi-definite: the
    equation is then degenerate parabolic there."""

    semidefinite = False

    def __init__(self, mesh, name: str = "D"):
        d = mesh.geometry.dim
        self.field = dolfinx.fem.Function(dolfinx.fem.functionspace(mesh, ("Lagrange", 1, (d, d))), name=name)
        V = self.field.function_space
        self.X = V.tabulate_dof_coordinates()[:, :d]
        self.n_owned = V.dofmap.index_map.size_local
        self.comm = mesh.comm

    def values(self, X: np.ndarray, rho) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """What a checkpoint records of this diffusion: its class and its parameters.

        The field changes with the density, so it is told apart by what defines it, not by its values: the
        numbers, strings and booleans among the public attributes (a subclass adds what these miss, e.g. a data
        set's moments).

        Returns
        -------
        dict
            JSON values.
        """
        out = {"class": type(self).__name__}
        for k, v in sorted(vars(self).items()):
            if k.startswith("_") or k in ("field", "X", "n_owned", "comm"):
                continue
            if isinstance(v, (bool, str)):
                out[k] = v
            elif isinstance(v, numbers.Real):
                out[k] = float(v) if math.isfinite(v) else repr(float(v))
        return out

    def update(self, rho) -> None:
        d = self.X.shape[1]
        vals = np.asarray(self.values(self.X, rho), float)
        if vals.shape != (len(self.X), d, d):
            raise ValueError(f"values(X, rho) must return shape ({len(self.X)}, {d}, {d}), got {vals.shape}")
        n = self.n_owned
        raise_collectively(self.comm, spd_problem(vals[:n], self.X[:n], what=f"diffusion {self.field.name}",
                                                  semidefinite=self.semidefinite))
        self.field.x.array[:] = vals.ravel()


def as_ufl_scalar(f, mesh, x, what: str = "potential"):
    """A potential as UFL: None (0), a callable of the SpatialCoordinate, or a scalar Function on the mesh."""
    if f is None:
        return dolfinx.fem.Constant(mesh, 0.0)
    if isinstance(f, dolfinx.fem.Function):
        if f.function_space.mesh is not mesh:
            raise ValueError(f"{what} Function lives on a different mesh than the solver: mismatched meshes")
        if f.ufl_shape != ():
            raise ValueError(f"{what} Function must be scalar, got shape {f.ufl_shape}")
        return f
    if callable(f):
        expr = call_ufl(f, x, what, mesh)
        if expr.ufl_shape != ():
            raise ValueError(f"{what}(x) must be a scalar, got a UFL expression of shape {expr.ufl_shape}")
        return expr
    raise TypeError(f"{what} must be None, a callable x -> UFL expression or a Function, got {type(f).__name__}")


def call_ufl(fn, x, what: str, mesh=None):
    """fn(x) for x the SpatialCoordinate, as UFL: numbers become constants; numpy functions (which cannot
    act on UFL) and other failures give an error naming `what`."""
    try:
        out = fn(x)
    except (TypeError, AttributeError, ValueError) as e:
        raise TypeError(f"{what}(x) must build a UFL expression from x = ufl.SpatialCoordinate(mesh) "
                        f"(use ufl.exp, ufl.sin, x[0]**2, ..., not numpy functions); calling it raised "
                        f"{type(e).__name__}: {e}") from None
    if isinstance(out, (list, tuple)):
        for item in np.ravel(np.array(out, dtype=object)):
            _finite_literals(ufl.as_ufl(item), what)
        return out
    if isinstance(out, numbers.Real) or (isinstance(out, np.ndarray) and out.shape == ()):
        if not np.isfinite(float(out)):
            raise ValueError(f"{what}(x) returned {float(out)!r}")
        return dolfinx.fem.Constant(mesh, float(out)) if mesh is not None else ufl.as_ufl(float(out))
    try:
        expr = ufl.as_ufl(out)
    except Exception:
        raise TypeError(f"{what}(x) must return a UFL expression, got {type(out).__name__}") from None
    _finite_literals(expr, what)
    return expr


def _finite_literals(expr, what: str) -> None:
    """A NaN/inf number or Constant inside a UFL expression would fail later in the C compiler."""
    from ufl.constantvalue import RealValue
    from ufl.corealg.traversal import unique_pre_traversal

    for node in unique_pre_traversal(expr):
        v = None
        if isinstance(node, RealValue):
            v = np.asarray(float(node))
        elif isinstance(node, dolfinx.fem.Constant):
            v = np.asarray(node.value)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError(f"{what}(x) contains the non-finite number {float(v.ravel()[~np.isfinite(v.ravel())][0])!r}")


def tensor_field(mesh, values_at, degree: int = 1, name: str = "D") -> dolfinx.fem.Function:
    """A d x d tensor Lagrange field from nodal values.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
    values_at : callable
        x of shape (d, n) -> values of shape (d, d, n) (e.g. fpjko.samplers.sgd_noise.gradient_covariance of
        per-sample gradients).
    degree : int
        Lagrange degree.
    name : str

    Returns
    -------
    dolfinx.fem.Function
    """
    d = mesh.geometry.dim
    T = dolfinx.fem.functionspace(mesh, ("Lagrange", degree, (d, d)))
    F = dolfinx.fem.Function(T, name=name)
    X = T.tabulate_dof_coordinates()[:, :d].T
    vals = np.asarray(values_at(X), dtype=float)
    if vals.shape != (d, d, X.shape[1]):
        raise ValueError(f"values_at must return shape ({d}, {d}, n), got {vals.shape}")
    F.x.array[:] = np.transpose(vals, (2, 0, 1)).ravel()
    F.x.scatter_forward()
    return F
