"""The interaction field psi = W * rho of McKean-Vlasov equations, psi(x) = int W(x - y) rho(y) dy.

rho_t = div(rho grad(f + W * rho) - rho b + beta^-1 div(D rho)) is the limit of n particles with
dX_i = -grad f(X_i) dt - (1/n) sum_j grad W(X_i - X_j) dt + ... (fpjko.samplers.interacting). psi is
linear in rho, so every interaction here splits into
    state(rho)       a vector s, linear in rho, from one quadrature pass over rho (collective), and
    set_state(s)     which makes the UFL field `psi` equal to the field of that state.
Linearity lets a time stepper extrapolate psi (psi(2 rho_n - rho_{n-1}) = 2 psi_n - psi_{n-1}) at the
cost of one pass per step. Three kinds:

  PolynomialInteraction  W(z) = sum_a c_a z^a. W(x - y) expands into monomials of x times moments of
                         rho, so the state is the moments M_b = int y^b rho and psi is an exact
                         polynomial UFL expression in x (no interpolation error). O(dofs) per pass.
                         `quadratic(K)` is W(z) = z^T K z / 2.
  SeparableInteraction   W(x, y) = sum_m w_m phi_m(x) phi_m(y) (rank M, not necessarily a
                         function of x - y; e.g. the two-layer network's U(theta, theta')). The state
                         is c_m = int phi_m rho; psi is interpolated in a Lagrange space.
                         O(M dofs) time and memory per pass.
  KernelInteraction      any W(z) given as a numpy function. method='fft' (default): the quadrature masses
                         are deposited on a uniform grid, convolved with W by zero-padded FFTs and
                         interpolated at the dofs (fpjko.kernels): O(N + G log G) per pass, O(h^4)
                         against the direct sum for a smooth W, integrable singularities (log|z|)
                         by a cell average at 0. method='direct': psi at the nodes of a Lagrange space
                         is the quadrature sum over all cells, done in blocks that travel around the
                         ranks (a ring), memory O(dofs / ranks + block), time O(dofs^2) per pass.

The sources of every pass are the quadrature points of the owned cells (degree `quadrature_degree`,
default the density's degree + the polynomial degree where that makes the moments exact); the
energy 1/2 iint W rho rho = 1/2 int psi rho is assembled by the solver.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Callable

import basix
import dolfinx.fem
import numpy as np
import ufl
from mpi4py import MPI

from fpjko.solvers.core.compat import expression
from fpjko.solvers.core.validation import raise_collectively


class _Sources:
    """Quadrature points (nq, gdim) of the owned cells, their weights |J| w (nq,), and the values of
    a density at them (one compiled Expression per density Function)."""

    def __init__(self, mesh, degree: int):
        cell = basix.CellType[mesh.topology.cell_name()]
        self.Xref, wref = basix.make_quadrature(cell, max(1, int(degree)))
        self.mesh = mesh
        nc = mesh.topology.index_map(mesh.topology.dim).size_local
        self.cells = np.arange(nc, dtype=np.int32)
        gdim = mesh.geometry.dim
        x = ufl.SpatialCoordinate(mesh)
        xe = dolfinx.fem.Expression(x, self.Xref)
        je = dolfinx.fem.Expression(abs(ufl.JacobianDeterminant(mesh)), self.Xref)
        self.points = np.asarray(xe.eval(mesh, self.cells)).reshape(-1, gdim)
        self.weights = (np.asarray(je.eval(mesh, self.cells)).reshape(nc, len(wref)) * wref[None, :]).ravel()
        self._rho_expr: dict[int, dolfinx.fem.Expression] = {}

    def density(self, rho: dolfinx.fem.Function) -> np.ndarray:
        """rho(y_q) |J| w_q at the owned quadrature points, shape (nq,).

        For a scalar Lagrange space of degree <= 2 (no dof permutations) the values are the cell's dof values times
        the basis tabulated once at the reference points (a gather and a small matrix product); otherwise a compiled
        Expression."""
        key = id(rho)
        if key not in self._rho_expr:
            self._rho_expr[key] = self._tabulated(rho.function_space) or dolfinx.fem.Expression(rho, self.Xref)
        ev = self._rho_expr[key]
        if isinstance(ev, tuple):
            dofs, Phi = ev
            vals = (rho.x.array[dofs] @ Phi).ravel()
        else:
            vals = np.asarray(ev.eval(self.mesh, self.cells)).ravel()
        return vals * self.weights

    def _tabulated(self, V):
        el = V.element.basix_element
        if (V.dofmap.index_map_bs != 1 or el.discontinuous or el.degree > 2 or V.mesh is not self.mesh
                or el.family != basix.ElementFamily.P):
            return None
        Phi = np.asarray(el.tabulate(0, self.Xref))[0, :, :, 0].T          # (dofs per cell, nq)
        return V.dofmap.list[: len(self.cells)], Phi


class Interaction:
    """Base class: bind(V, V_psi) once, then state(rho) / set_state(s); `psi` is the UFL field."""

    kind = "interaction"
    psi = None

    def bind(self, V: dolfinx.fem.FunctionSpace, V_psi: dolfinx.fem.FunctionSpace | None = None):
        """Set up for densities in V.

        Parameters
        ----------
        V : dolfinx.fem.FunctionSpace
            The density's space.
        V_psi : dolfinx.fem.FunctionSpace, optional
            The space of psi = W * rho (default: V if it is continuous Lagrange).
        """
        raise NotImplementedError

    def state(self, rho: dolfinx.fem.Function) -> np.ndarray:
        """The state of psi = W * rho for a density, without changing psi.

        Parameters
        ----------
        rho : dolfinx.fem.Function

        Returns
        -------
        numpy.ndarray
            Linear in rho (moments, feature sums or nodal values, by the kind of W).
        """
        raise NotImplementedError

    def set_state(self, s: np.ndarray) -> None:
        """Set psi from a state (a linear combination of states is the state of that combination of densities).

        Parameters
        ----------
        s : numpy.ndarray
            As `state` returns it.
        """
        raise NotImplementedError

    def update(self, rho: dolfinx.fem.Function) -> np.ndarray:
        """psi <- W * rho.

        Parameters
        ----------
        rho : dolfinx.fem.Function

        Returns
        -------
        numpy.ndarray
            The state (see `state`).
        """
        s = self.state(rho)
        self.set_state(s)
        return s

    def nodal(self) -> np.ndarray:
        """psi at the dofs of V_psi.

        Returns
        -------
        numpy.ndarray, shape (n_local + n_ghosts,)
        """
        return self._psi_h.x.array

    def _lagrange_field(self, V, V_psi):
        if V_psi is None:
            if V.element.basix_element.discontinuous or V.dofmap.index_map_bs != 1:
                raise ValueError("the interaction field needs a continuous scalar Lagrange space V_psi "
                                 f"(the density's space {V.ufl_element()} is not one)")
            V_psi = V
        self.V_psi = V_psi
        self._psi_h = dolfinx.fem.Function(V_psi, name="psi")
        self._n_owned = V_psi.dofmap.index_map.size_local
        return V_psi


class PolynomialInteraction(Interaction):
    """W(z) = sum_a coeffs[a] prod_i z_i^a_i: psi exactly from the moments of rho.

    Parameters
    ----------
    coeffs : dict
        {exponent tuple of length d: coefficient}.
    quadrature_degree : int, optional
        Of the moments.
    """

    kind = "polynomial"

    def __init__(self, coeffs: dict, quadrature_degree: int | None = None):
        if not coeffs:
            raise ValueError("a polynomial interaction needs at least one coefficient")
        dims = {len(a) for a in coeffs}
        if len(dims) != 1:
            raise ValueError(f"exponent tuples of one length (the dimension) expected, got {sorted(coeffs)}")
        for a, c in coeffs.items():
            if any(int(e) != e or e < 0 for e in a) or not math.isfinite(c):
                raise ValueError(f"bad polynomial term {c!r} * z^{a}: exponents must be integers >= 0, "
                                 "coefficients finite")
        self.coeffs = {tuple(int(e) for e in a): float(c) for a, c in coeffs.items()}
        self.d = dims.pop()
        self.degree = max(sum(a) for a in self.coeffs)
        self.quadrature_degree = quadrature_degree
        # W(x - y) = sum_a c_a sum_{b <= a} prod_i binom(a_i, b_i) x_i^(a_i - b_i) (-y_i)^b_i
        #          = sum_g x^g sum_b T[g, b] M_b,  M_b = int y^b rho
        terms = {}
        for a, c in self.coeffs.items():
            for b in itertools.product(*(range(e + 1) for e in a)):
                g = tuple(ai - bi for ai, bi in zip(a, b))
                coef = c * math.prod(math.comb(ai, bi) for ai, bi in zip(a, b)) * (-1) ** sum(b)
                terms[(g, b)] = terms.get((g, b), 0.0) + coef
        self.moments = sorted({b for _, b in terms})
        self.monomials = sorted({g for g, _ in terms})
        T = np.zeros((len(self.monomials), len(self.moments)))
        gi = {g: i for i, g in enumerate(self.monomials)}
        bi = {b: j for j, b in enumerate(self.moments)}
        for (g, b), c in terms.items():
            T[gi[g], bi[b]] += c
        self.T = T

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """W(z) for z (..., d) (numpy), e.g. for particles."""
        z = np.asarray(z, float)
        return sum(c * np.prod(z ** np.array(a), axis=-1) for a, c in self.coeffs.items())

    def bind(self, V, V_psi=None):
        """Set up for densities in V (see Interaction.bind).

        Parameters
        ----------
        V : dolfinx.fem.FunctionSpace
        V_psi : dolfinx.fem.FunctionSpace, optional

        Returns
        -------
        Interaction
            self.
        """
        mesh = V.mesh
        if mesh.geometry.dim != self.d:
            raise ValueError(f"interaction W is {self.d}D but the mesh is {mesh.geometry.dim}D")
        k = V.element.basix_element.degree
        self._src = _Sources(mesh, self.quadrature_degree or k + self.degree)   # exact moments
        self.comm = mesh.comm
        self._Y = np.stack([np.prod(self._src.points ** np.array(b), axis=1) for b in self.moments], axis=1)
        self._a = dolfinx.fem.Constant(mesh, np.zeros(len(self.monomials)))
        x = ufl.SpatialCoordinate(mesh)
        mono = [math.prod([x[i] ** g[i] for i in range(self.d) if g[i]] or [1.0]) for g in self.monomials]
        self.psi = sum(self._a[i] * m for i, m in enumerate(mono))
        self._V_nodal = V_psi or (V if not V.element.basix_element.discontinuous else None)
        self._psi_h, self._nodal_expr, self._fresh = None, None, False
        return self

    def state(self, rho):
        """The moments int x^b rho of the density.

        Parameters
        ----------
        rho : dolfinx.fem.Function

        Returns
        -------
        numpy.ndarray, shape (n_moments,)
        """
        loc = self._src.density(rho) @ self._Y
        return self.comm.allreduce(loc, op=MPI.SUM)

    def set_state(self, s):
        """Set psi's coefficients from the moments.

        Parameters
        ----------
        s : numpy.ndarray, shape (n_moments,)
        """
        self._a.value[:] = self.T @ np.asarray(s, float)
        self._fresh = False

    def nodal(self):
        """psi interpolated in the density's Lagrange space (or V_psi), refreshed after set_state.

        Returns
        -------
        numpy.ndarray, shape (n_local + n_ghosts,)
        """
        if self._V_nodal is None:
            raise ValueError("nodal values of psi need a Lagrange space (bind with V_psi)")
        if self._psi_h is None:
            self._psi_h = dolfinx.fem.Function(self._V_nodal, name="psi")
            self._nodal_expr = expression(self.psi, self._V_nodal)
        if not self._fresh:
            self._psi_h.interpolate(self._nodal_expr)
            self._psi_h.x.scatter_forward()
            self._fresh = True
        return self._psi_h.x.array


def quadratic(K, d: int | None = None, **kw) -> PolynomialInteraction:
    """W(z) = z^T K z / 2.

    Parameters
    ----------
    K : float or array_like, shape (d, d)
        A scalar k (meaning k I) or a symmetric matrix.
    d : int, optional
        The dimension (needed for a scalar K).
    **kw
        Passed to PolynomialInteraction.

    Returns
    -------
    PolynomialInteraction
    """
    K = np.asarray(K, float)
    if K.ndim == 0:
        if d is None:
            raise ValueError("quadratic(k) with a scalar k needs the dimension d")
        K = float(K) * np.eye(d)
    d = K.shape[0]
    if K.shape != (d, d) or not np.allclose(K, K.T):
        raise ValueError(f"quadratic interaction needs a symmetric (d, d) matrix, got {K.tolist()}")
    coeffs = {}
    for i in range(d):
        for j in range(i, d):
            e = [0] * d
            e[i] += 1
            e[j] += 1
            c = K[i, i] / 2 if i == j else K[i, j]
            if c:
                coeffs[tuple(e)] = coeffs.get(tuple(e), 0.0) + c
    if not coeffs:
        coeffs[(0,) * d] = 0.0
    return PolynomialInteraction(coeffs, **kw)


class SeparableInteraction(Interaction):
    """W(x, y) = sum_m weights[m] phi_m(x) phi_m(y): psi from M feature integrals.

    Parameters
    ----------
    features : callable
        features(x), x of shape (n, d) -> (n, M), numpy.
    weights : array_like, shape (M,)
    quadrature_degree : int, optional
        Of the feature integrals.
    """

    kind = "separable"

    def __init__(self, features: Callable[[np.ndarray], np.ndarray], weights, quadrature_degree: int | None = None):
        self.features = features
        self.weights = np.atleast_1d(np.asarray(weights, float))
        if not np.all(np.isfinite(self.weights)):
            raise ValueError(f"separable interaction weights must be finite, got {self.weights}")
        self.quadrature_degree = quadrature_degree

    def _phi(self, x: np.ndarray) -> np.ndarray:
        P = np.asarray(self.features(x), float)
        if P.ndim != 2 or P.shape[0] != len(x) or (P.shape[1] != len(self.weights) and len(self.weights) != 1):
            raise ValueError(f"features(x) must return shape ({len(x)}, {len(self.weights)}), got {P.shape}")
        return P

    def bind(self, V, V_psi=None):
        """Set up for densities in V (see Interaction.bind).

        Parameters
        ----------
        V : dolfinx.fem.FunctionSpace
        V_psi : dolfinx.fem.FunctionSpace, optional

        Returns
        -------
        Interaction
            self.
        """
        V_psi = self._lagrange_field(V, V_psi)
        mesh = V.mesh
        gdim = mesh.geometry.dim
        self.comm = mesh.comm
        self._src = _Sources(mesh, self.quadrature_degree or 2 * V.element.basix_element.degree)
        problem = None
        try:                                # a rank without cells must fail with the others, not wait
            self._Phi_src = self._phi(self._src.points)                                 # (nq, M)
            self._Phi_dof = self._phi(V_psi.tabulate_dof_coordinates()[:, :gdim])       # (ndofs, M)
            self._phi(np.zeros((1, gdim)))
        except (ValueError, TypeError, IndexError) as e:
            problem = str(e)
        raise_collectively(self.comm, problem)
        self.psi = self._psi_h
        return self

    def state(self, rho):
        """The feature integrals int phi_m rho of the density.

        Parameters
        ----------
        rho : dolfinx.fem.Function

        Returns
        -------
        numpy.ndarray, shape (M,)
        """
        return self.comm.allreduce(self._src.density(rho) @ self._Phi_src, op=MPI.SUM)

    def set_state(self, s):
        """Set psi from the feature integrals.

        Parameters
        ----------
        s : numpy.ndarray, shape (M,)
        """
        self._psi_h.x.array[:] = self._Phi_dof @ (self.weights * np.asarray(s, float))


def kernel_sum(targets: np.ndarray, sources: np.ndarray, weights: np.ndarray, W: Callable,
               block: int = 2**22) -> np.ndarray:
    """sum_q W(targets_i - sources_q) weights_q for targets (n, d), sources (m, d), in blocks of about
    `block` pairs (memory O(block), time O(n m))."""
    n, m = len(targets), len(sources)
    out = np.zeros(n)
    if n == 0 or m == 0:
        return out
    rows = max(1, block // m) if m <= block else 1
    cols = m if m <= block else block
    for i0 in range(0, n, rows):
        ti = targets[i0:i0 + rows, None, :]
        acc = np.zeros(len(ti))
        for j0 in range(0, m, cols):
            acc += np.asarray(W(ti - sources[None, j0:j0 + cols, :])) @ weights[j0:j0 + cols]
        out[i0:i0 + rows] = acc
    return out


MIN_CELLS = {1: 1024, 2: 256, 3: 64}      # the default grid has at least these cells along the box's longest side


class KernelInteraction(Interaction):
    """A general W(z), vectorised in numpy: psi = W * rho at the dofs, by a grid and FFTs (default) or the direct sum.

    method='fft' (fpjko.kernels.GridConvolution): the quadrature masses rho(y_q) |J| w_q are deposited on a uniform
    grid over the mesh's bounding box (cubic weights by default), convolved with W sampled on the grid's differences
    (zero-padded FFTs, the spectrum computed once at bind) and interpolated at the dofs: O(N + G log G) per pass,
    error O(h^order) in the grid spacing h against the direct sum of the same quadrature for a smooth W. The
    spacing defaults to the dofs' spacing, (|mesh| / global dofs)^(1/d), or finer where that leaves fewer than
    MIN_CELLS cells along the box's longest side (256 in 2D). A kernel singular at 0 but integrable
    (log|z|, |z|^-s with s < d) gets the cell average of W at offset 0 (second order, measured); a singularity that
    is not integrable, or W not finite away from 0, is refused. Under MPI the deposits are summed over ranks
    (Allreduce) and every rank convolves the whole grid: memory O(N / ranks + G) per rank, results equal to
    serial up to round-off. method='direct': the O(N^2) quadrature sum (the reference), sources passed around the
    ranks in a ring, memory O(N / ranks + block).

    Parameters
    ----------
    W : callable
        W(z), z of shape (..., d) -> (...).
    quadrature_degree : int, optional
        Of the sources' quadrature (default: the density's degree).
    block : int
        Pair evaluations per block of the direct sum.
    method : {'fft', 'direct'}
    h : float, optional
        The grid spacing of method='fft' (default: the dofs' spacing, at most the box / MIN_CELLS).
    order : {2, 4}
        The grid transfer: cloud-in-cell or cubic Lagrange.
    memory_limit : float, optional
        Bytes the grid may take (default: half the machine's memory); a larger grid is refused before allocation.
    """

    kind = "kernel"

    def __init__(self, W: Callable[[np.ndarray], np.ndarray], quadrature_degree: int | None = None,
                 block: int = 2**22, method: str = "fft", h: float | None = None, order: int = 4,
                 memory_limit: float | None = None):
        if method not in ("fft", "direct"):
            raise ValueError(f"KernelInteraction method must be 'fft' or 'direct', got {method!r}")
        self.W, self.quadrature_degree, self.block = W, quadrature_degree, int(block)
        self.method, self.h, self.order, self.memory_limit = method, h, order, memory_limit
        self.grid = None

    def bind(self, V, V_psi=None):
        """Set up for densities in V (see Interaction.bind); method='fft' builds the grid and W's spectrum here.

        Parameters
        ----------
        V : dolfinx.fem.FunctionSpace
        V_psi : dolfinx.fem.FunctionSpace, optional

        Returns
        -------
        Interaction
            self.
        """
        V_psi = self._lagrange_field(V, V_psi)
        mesh = V.mesh
        self.comm = mesh.comm
        self._src = _Sources(mesh, self.quadrature_degree or V.element.basix_element.degree)
        self._targets = V_psi.tabulate_dof_coordinates()[: self._n_owned, : mesh.geometry.dim].copy()
        d = mesh.geometry.dim
        try:                                # the same probe on every rank, so all agree on the verdict
            w = np.asarray(self.W(np.full((1, 2, d), 0.5)), float)
            problem = None if w.shape == (1, 2) and np.all(np.isfinite(w)) else (
                f"W(z) for z of shape (1, 2, {d}) must return finite values of shape (1, 2), got {w.tolist()} "
                f"(shape {w.shape})")
        except Exception as e:              # noqa: BLE001  (any failure of the user's W)
            problem = f"W(z) failed on z of shape (1, 2, {d}): {type(e).__name__}: {e}"
        raise_collectively(self.comm, problem)
        if self.method == "fft":
            self.grid = self._make_grid(mesh, V_psi)
        self.psi = self._psi_h
        return self

    def _make_grid(self, mesh, V_psi):
        volume = self.comm.allreduce(float(np.sum(self._src.weights)), op=MPI.SUM)
        return self.grid_over(self.comm, mesh.geometry.x[:, : mesh.geometry.dim], volume,
                              V_psi.dofmap.index_map.size_global)

    def grid_over(self, comm, points: np.ndarray, volume: float, count: int):
        """The GridConvolution of this kernel over the bounding box of every rank's points (collective).

        The spacing is `h`, or by default the points' spacing (volume / count)^(1/d), at most the box's longest side
        / MIN_CELLS. Every rank builds the same grid from the same arguments, so the verdicts (memory, singularity,
        finiteness) agree; the construction is still collective.

        Parameters
        ----------
        comm : mpi4py.MPI.Comm
        points : numpy.ndarray, shape (m, d)
            This rank's points (sources and targets lie in their bounding box; m may be 0).
        volume : float
            The measure of the domain (summed over ranks).
        count : int
            The number of points over all ranks (dofs or nodes), for the default spacing.

        Returns
        -------
        fpjko.kernels.GridConvolution
        """
        from fpjko.common.collective import collectively
        from fpjko.kernels import GridConvolution

        d = points.shape[1]
        lo = np.array(np.min(points, axis=0) if len(points) else np.full(d, np.inf), float)
        hi = np.array(np.max(points, axis=0) if len(points) else np.full(d, -np.inf), float)
        comm.Allreduce(MPI.IN_PLACE, lo, op=MPI.MIN)                # buffers: the object allreduce cannot min arrays
        comm.Allreduce(MPI.IN_PLACE, hi, op=MPI.MAX)
        pad = 1e-9 * np.maximum(hi - lo, 1e-300)
        h = self.h
        if h is None:
            h = min((volume / count) ** (1.0 / d), float(np.max(hi - lo)) / MIN_CELLS[d])
        return collectively(comm, GridConvolution, self.W, lo - pad, hi + pad, h, order=self.order,
                            memory_limit=self.memory_limit)

    def state(self, rho):
        """psi at the owned dofs of V_psi (collective).

        Parameters
        ----------
        rho : dolfinx.fem.Function

        Returns
        -------
        numpy.ndarray, shape (n_owned,)
        """
        if self.grid is not None:
            return self.grid.apply(self._targets, self._src.points, self._src.density(rho), self.comm)
        return self.direct(rho)

    def direct(self, rho):
        """psi at the owned dofs by the direct quadrature sum (O(N^2); the sources of every rank pass once around
        the ring).

        Parameters
        ----------
        rho : dolfinx.fem.Function

        Returns
        -------
        numpy.ndarray, shape (n_owned,)
        """
        comm = self.comm
        y, w = self._src.points, self._src.density(rho)
        out = kernel_sum(self._targets, y, w, self.W, self.block)
        if comm.size > 1:
            dest, src = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
            for _ in range(comm.size - 1):
                y, w = comm.sendrecv((y, w), dest=dest, source=src)
                out += kernel_sum(self._targets, y, w, self.W, self.block)
        return out

    def set_state(self, s):
        """Set psi from nodal values at the owned dofs of V_psi.

        Parameters
        ----------
        s : numpy.ndarray, shape (n_owned,)
        """
        self._psi_h.x.array[: self._n_owned] = s
        self._psi_h.x.scatter_forward()


PROBES = 16            # points at which a checkpoint's fingerprint samples a kernel or the features


def probe_points(d: int) -> np.ndarray:
    """PROBES fixed points of [-2, 2]^d (the same on every rank and in every run), shape (PROBES, d)."""
    return np.random.default_rng(20261205).uniform(-2.0, 2.0, size=(PROBES, d))


def _json_values(values) -> list:
    """Finite floats stay numbers, the rest their repr (a NaN must compare equal to itself)."""
    return [float(v) if math.isfinite(v) else repr(float(v)) for v in np.ravel(np.asarray(values, float))]


def fingerprint(interaction, d: int) -> object:
    """What a checkpoint records of an interaction, enough to tell two interactions apart.

    Parameters
    ----------
    interaction : Interaction or None
    d : int
        The dimension.

    Returns
    -------
    dict or None
        None for none; else the kind and its numbers: a polynomial's coefficients, a separable interaction's
        weights and features at fixed probe points, a kernel's values at fixed probe differences (so k = 1 and
        k = 5, or two kernels, differ) and its method, grid spacing and transfer order; the sources' quadrature
        degree.
    """
    if interaction is None:
        return None
    out = {"kind": interaction.kind}
    z = probe_points(d)
    try:
        if isinstance(interaction, PolynomialInteraction):
            out["coeffs"] = [[list(a), c] for a, c in sorted(interaction.coeffs.items())]
        elif isinstance(interaction, SeparableInteraction):
            out["weights"] = _json_values(interaction.weights)
            out["features"] = _json_values(interaction.features(z))
        elif isinstance(interaction, KernelInteraction):
            out["values"] = _json_values(interaction.W(z))
            out["method"] = interaction.method
            if interaction.method == "fft":             # the grid's spacing and transfer (the direct sum has none)
                out["h"] = None if interaction.h is None else float(interaction.h)
                out["order"] = interaction.order
        out["quadrature_degree"] = getattr(interaction, "quadrature_degree", None)
    except Exception as e:          # the same on every rank: the probes and the callable are
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def check_even(interaction, d: int, comm=None) -> None:
    """Raise (on every rank) unless the interaction potential is even, W(z) = W(-z).

    The force between two particles is mutual only for an even W; an odd kernel such as W(z) = z_0 gives a flow that
    is no McKean-Vlasov equation of an interacting particle system. A polynomial is checked on its coefficients
    (no odd-degree term), a kernel at fixed probe points (the same on every rank); a separable W(x, y) =
    sum_m w_m phi_m(x) phi_m(y) is symmetric by construction.

    Parameters
    ----------
    interaction : Interaction or None
    d : int
        The dimension.
    comm : mpi4py.MPI.Comm, optional
    """
    problem = None
    if isinstance(interaction, PolynomialInteraction):
        odd = {a: c for a, c in interaction.coeffs.items() if sum(a) % 2 and c != 0.0}
        if odd:
            problem = (f"the interaction W(z) must be even, W(z) = W(-z): it has the odd-degree terms "
                       + ", ".join(f"{c:g} z^{a}" for a, c in sorted(odd.items())))
    elif isinstance(interaction, KernelInteraction):
        z = probe_points(d)
        try:
            a, b = np.asarray(interaction.W(z), float), np.asarray(interaction.W(-z), float)
            if a.shape != (len(z),) or b.shape != (len(z),):
                problem = f"W(z) for z of shape ({len(z)}, {d}) must return shape ({len(z)},), got {a.shape}"
            else:
                k = int(np.argmax(np.abs(a - b)))
                if not abs(a[k] - b[k]) <= 1e-10 * max(1.0, abs(a[k]), abs(b[k])):
                    problem = (f"the interaction kernel must be even, W(z) = W(-z): W({z[k].round(4).tolist()}) = "
                               f"{a[k]:.6g} but W(-z) = {b[k]:.6g}")
        except Exception as e:              # noqa: BLE001  (any failure of the user's W)
            problem = f"W(z) failed on z of shape ({len(z)}, {d}): {type(e).__name__}: {e}"
    raise_collectively(comm, problem)


def as_interaction(W, d: int) -> Interaction | None:
    """None, an Interaction, a number k (W = k |z|^2 / 2) or a (d, d) matrix K (z^T K z / 2), or a
    numpy callable W(z) (general kernel).

    bind keeps the field and its space on the object, so an Interaction that is already bound (given to another
    solver) comes back as a shallow copy for the caller to bind: binding it again would move the first solver's
    field to the second's space. An unbound one comes back as itself (the caller's object, bound by its solver)."""
    if W is None:
        return None
    if isinstance(W, Interaction):
        return copy.copy(W) if W.psi is not None else W
    if callable(W):
        return KernelInteraction(W)
    arr = np.asarray(W, float)
    if arr.ndim == 0:
        return quadratic(float(arr), d)
    return quadratic(arr)
