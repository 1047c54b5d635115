"""The graphon gradient flow W_t = -DR(W) with the box constraint, on a mesh of [0, 1]^2.

The graphon lives on dolfinx's n x n quadrilateral mesh of the unit square, as a DG0 Function (a step
graphon: exactly the n x n matrix, so projected Euler steps equal the matrix gradient descent of
fpjko.samplers.graphon to round-off) or a Q1 Function (nodal values on the (n+1)^2 grid points; the kernel
integral int W(u, z) W(z, v) dz and the homomorphism densities by the trapezoidal rule, second order in
1/n for smooth graphons). DR is a kernel integral: every rank gathers the n x n (or (n+1) x (n+1)) array
(8 n^2 bytes), applies fpjko.samplers.graphon's formulas with the quadrature weights, and keeps its own
cells or nodes. Time stepping: projected explicit Euler, W <- P(W - tau DR(W)) (the flow is the gradient
flow of R restricted to the box; for t(K3) - t(K2) DR is Lipschitz with constant <= 6 on [0, 1]-valued
graphons, so tau <= 0.2 is stable).
"""

from __future__ import annotations

import math

import dolfinx.fem
import numpy as np

from fpjko import meshes
from fpjko.common import checks
from fpjko.common.collective import collectively, same_everywhere
from fpjko.solvers.core.protocol import Solver
from fpjko.samplers.graphon import GraphonObjective


class GraphonFlow(Solver):
    """The graphon gradient flow W_t = -DR(W), projected on the box, by projected explicit Euler steps of tau.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        A uniform n x n quadrilateral mesh of [0, 1]^2 (meshes.unit_square(comm, n)).
    objective : fpjko.samplers.graphon.GraphonObjective
        Its target may be a callable target(u, v).
    tau : float
        The step.
    degree : int
        0 (DG0, step graphons) or 1 (Q1, continuous).
    box : (float, float)
        (a, b), the values a graphon may take.
    record_every : int
        Steps between history records (and always the last step of run).

    Notes
    -----
    History: the core keys (mass NaN: no density; energy: the objective R(W)) and edge_density, triangle_density.
    """

    label = "graphon flow steps"
    extra_keys = ("edge_density", "triangle_density")
    step_name = "tau"

    def __init__(self, mesh, objective: GraphonObjective, tau: float, degree: int = 0, box=(0.0, 1.0),
                 record_every: int = 1):
        self._init_protocol(mesh.comm, None, locals())
        n = self.n = meshes.unit_square_cells(mesh)
        self.tau = checks.positive_number("tau", tau)
        self.record_every = checks.integer("record_every", record_every, 1)
        self.degree = checks.one_of("degree", degree, (0, 1))
        self.box = (checks.number("box[0]", box[0]), checks.number("box[1]", box[1]))
        if not self.box[0] < self.box[1]:
            raise ValueError(f"box must be an interval a < b, got {box}")
        self.objective = objective
        self.mesh = mesh
        self.V = dolfinx.fem.functionspace(self.mesh, ("DG", 0) if degree == 0 else ("Lagrange", 1))
        self.W = dolfinx.fem.Function(self.V, name="W")
        self.m = n if degree == 0 else n + 1                     # points per side
        X = self.V.tabulate_dof_coordinates()[:, :2]
        idx = np.floor(X * n).astype(int) if degree == 0 else np.rint(X * n).astype(int)
        idx = np.clip(idx, 0, self.m - 1)
        self._ij = idx                                            # local dof -> (i, j)
        self._own = self.V.dofmap.index_map.size_local
        # the points of the graphon's values (cell centres, or nodes) and their quadrature weights
        self.points = (np.arange(self.m) + (0.5 if degree == 0 else 0.0)) / n
        if degree == 0:
            self.weights = np.full(self.m, 1.0 / n)
        else:
            self.weights = np.full(self.m, 1.0 / n)
            self.weights[[0, -1]] = 0.5 / n
        self._A = None                                            # the graphon as a matrix, the same on every rank

    # ---------------------------------------------------------------- matrix <-> Function
    def matrix(self) -> np.ndarray:
        """The graphon's cell or node values, on every rank.

        Returns
        -------
        numpy.ndarray, shape (m, m)
        """
        own = slice(0, self._own)
        parts = self.comm.allgather((self._ij[own], self.W.x.array[own]))
        A = np.empty((self.m, self.m))
        for ij, v in parts:
            A[ij[:, 0], ij[:, 1]] = v
        return A

    def _set(self, A: np.ndarray) -> None:
        self._A = A
        self.W.x.array[:] = A[self._ij[:, 0], self._ij[:, 1]]

    def set_initial(self, W0) -> None:
        """Set the initial graphon and start a new run.

        Parameters
        ----------
        W0 : callable or ndarray
            A callable W0(u, v) (numpy, symmetric) or an (m, m) symmetric array (m = n for DG0, n + 1 for Q1);
            values outside the box, not finite or not symmetric are errors naming the entry.
        """
        Solver.set_initial(self, W0)

    def _set_initial(self, W0) -> None:
        from fpjko.samplers.graphon import check_matrix

        def values():
            if callable(W0):
                p = self.points
                return np.asarray(W0(p[:, None], p[None, :]), float) * np.ones((self.m, self.m))
            A = np.asarray(W0, float)
            if A.shape != (self.m, self.m):
                raise ValueError(f"initial graphon has shape {A.shape}, this mesh needs {(self.m, self.m)}")
            return A

        # the graphon is the same on every rank: evaluated and compared collectively, then checked
        A = collectively(self.comm, values)
        same_everywhere(self.comm, "GraphonFlow.set_initial", {"W0": A})
        self._set(check_matrix(A, self.box))

    # ---------------------------------------------------------------- quadrature
    def densities(self, A=None) -> tuple[float, float]:
        """(t(K2), t(K3)) by the mesh's quadrature.

        Parameters
        ----------
        A : numpy.ndarray, shape (m, m), optional
            Graphon values at the points (default: the current graphon).

        Returns
        -------
        edge, triangle : float
        """
        A = self.matrix() if A is None else A
        w = self.weights
        Aw = A * w[None, :]
        return float(w @ A @ w), float(np.einsum("ij,jk,ki->", Aw, Aw, Aw))

    def gradient(self, A: np.ndarray) -> np.ndarray:
        """DR at the points: the objective's formulas with int dz -> sum_z w_z.

        Parameters
        ----------
        A : numpy.ndarray, shape (m, m)

        Returns
        -------
        numpy.ndarray, shape (m, m)
        """
        R = self.objective
        return R.gradient(A, weights=self.weights, target=self._target() if R.least_squares else None)

    def _target(self) -> np.ndarray:
        """W* at the points (a callable target evaluated there; a matrix taken as given)."""
        R, p = self.objective, self.points
        if callable(R.target):
            return np.asarray(R.target(p[:, None], p[None, :]), float) * np.ones((self.m, self.m))
        return R.target_matrix(self.m)

    def value(self, A: np.ndarray) -> float:
        """R(W) by the mesh's quadrature.

        Parameters
        ----------
        A : numpy.ndarray, shape (m, m)

        Returns
        -------
        float
        """
        R = self.objective
        return R.value(A, weights=self.weights, target=self._target() if R.least_squares else None)

    def _measure(self) -> dict:
        A = self._A
        e, tri = self.densities(A)
        return {"mass": math.nan, "energy": self.value(A), "edge_density": e, "triangle_density": tri}

    def _advance(self) -> dict:
        A = np.clip(self._A - self.tau * self.gradient(self._A), *self.box)
        if not np.all(np.isfinite(A)):
            raise FloatingPointError(f"graphon flow blew up at t={self.t + self.tau:g} (tau={self.tau}): reduce tau")
        self._set(A)
        return {"converged": True, "iterations": 0}

    def _functions(self) -> dict:
        return {"W": self.W}

    def _restore(self, state: dict) -> None:
        self._A = self.matrix()

    def _fingerprint(self) -> dict:
        R = self.objective
        target = self._target() if R.least_squares else None
        return {"n": self.n, "degree": self.degree, "box": list(self.box),
                "objective": [R.edges, R.triangles, sorted((int(k), float(v)) for k, v in R.cycles.items()),
                              R.least_squares],
                "target_moments": None if target is None else _target_moments(target, self.points)}


def _target_moments(T: np.ndarray, points: np.ndarray) -> list:
    """A target's values T (m, m) at the points (u_i, v_j) against the test functions of fpjko.solvers.core.moments
    (1, T, u, v, u^2, u v, v^2 and waves): a target and its reflection differ."""
    from fpjko.solvers.core import moments

    U, Vv = np.meshgrid(points, points, indexing="ij")
    return moments.nodal(T.ravel(), np.ones(T.size), np.column_stack([U.ravel(), Vv.ravel()]), None)
