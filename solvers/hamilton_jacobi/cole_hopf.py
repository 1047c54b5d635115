"""Local entropy f_gamma = u(., gamma) of a loss f by the Cole–Hopf transform, on any dolfinx mesh.

Conventions (Chaudhari et al., "Deep relaxation"): for inverse temperature beta,

    u_t = -1/2 |grad u|^2 + (2 beta)^-1 Delta u,    u(x, 0) = f(x),

and w = exp(-beta u) solves the heat equation w_t = (2 beta)^-1 Delta w, so
u(x, t) = -beta^-1 log (G_{t/beta} * exp(-beta f))(x) with G_s the Gaussian of variance s. At t = gamma this
is the local entropy -beta^-1 log int exp(-beta f(y) - beta |x - y|^2 / (2 gamma)) dy plus the constant
(d / (2 beta)) log(2 pi gamma / beta); grad u = (x - <y>_x) / gamma.

Discretisation: w_h solves the FE heat equation (Lagrange degree p, lumped P1 mass by default so the step
matrix is an M-matrix and w_h > 0 for any dt; consistent mass for p > 1), backward Euler or BDF2 in time
(BDF2 falls back to backward Euler on a step whose solution is not positive), from the nodal values
exp(-beta f(x_i)); u_h = -beta^-1 log w_h at the nodes.

Floating point: exp(-beta f) under- and overflows long before beta = 1e3 (exp(-750) is 0 in double). Each
step is therefore solved for v = w^{n+1} / w^n, not for w: with D_n = diag(exp(-beta u^n)) the step
(a M + dt eps K) w^{n+1} = M (...) becomes (D_n^-1 A D_n) v = D_n^-1 M D_n (...), whose entries are
A_ij exp(-beta (u^n_j - u^n_i)): only differences of u between dofs of one cell enter an exponential, and
v is close to 1. It is the same linear heat step, exactly (a diagonal similarity), for every beta as long as
beta |u_j - u_i| < 700 across a cell (checked, with the cell named). u^{n+1} = u^n - beta^-1 log v.

Boundary: the natural no-flux condition of the heat equation, grad w . n = 0, which is grad u . n = 0. The
true u of the whole space has grad u . n != 0 at the boundary; the difference is the reflected heat
kernel, which changes u at distance delta from the boundary by about exp(-beta delta^2 / (2 gamma))
relative (tests/test_local_entropy.py measures it on two domain sizes). Keep the region of interest a few
sqrt(gamma / beta) inside the domain.
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.solvers.core import validation
from fpjko.solvers.core.compat import interpolate, petsc_vec
from fpjko.solvers.core.linear import make_ksp, solve
from fpjko.solvers.hamilton_jacobi.marching import TimeMarching
from fpjko.solvers.particles.evaluate import evaluate_on_points

MAX_EXPONENT = 700.0          # exp(700) ~ 1e304: the largest beta |u_j - u_i| a step accepts


class LocalEntropy(TimeMarching):
    """Viscous Hamilton-Jacobi / local entropy by Cole-Hopf.

    solve(gamma, steps) advances u from its current time to gamma in `steps` equal steps and returns the Function
    u (nodal values of f_gamma plus (d/(2 beta)) log(2 pi gamma / beta)); or the protocol: dt=, step(),
    run(t_end).

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        Any mesh.
    f : callable, UFL expression or dolfinx.fem.Function
        A numpy callable x (3, N) -> (N,), a UFL expression of the mesh's SpatialCoordinate or a Function
        (interpolated at the nodes).
    beta : float
        > 0.
    degree : int
        Lagrange degree.
    mass : {'lumped', 'consistent'}, optional
        'lumped' (P1 default: w > 0 for every dt) or 'consistent' (default for degree > 1).
    scheme : {'bdf2', 'backward_euler'}
    max_log_ratio : float
        The step control's bound on |log(w^{n+1}/w^n)| per sub-step.
    petsc_options : dict, optional
    prefix : str, optional
        PETSc options prefix (default 'le_').
    dt : float, optional
        The protocol's step.

    Notes
    -----
    History: the core keys (iterations: accepted sub-steps of the step control) and min_v, max_v (the range of
    w^{n+1}/w^n over the step's sub-steps); self.fallbacks counts BDF2 steps redone by backward Euler,
    self.rejected the sub-steps retried shorter.
    """

    default_prefix = "le_"
    extra_keys = ("min_v", "max_v")

    def __init__(self, mesh, f, beta: float, degree: int = 1, mass: str | None = None, scheme: str = "bdf2",
                 max_log_ratio: float = 50.0, petsc_options: dict | None = None, prefix: str | None = None,
                 dt: float | None = None):
        self._init_protocol(mesh.comm, prefix, locals())
        self.beta = validation.positive_number("beta", beta)
        self.degree = validation.integer("degree", degree, 1)
        self.mass = validation.one_of("mass", mass or ("lumped" if degree == 1 else "consistent"),
                                      ("lumped", "consistent"))
        if self.mass == "lumped" and degree != 1:
            raise ValueError(f"mass='lumped' is for degree 1 (P{degree} lumped masses are not positive); "
                             "use mass='consistent'")
        self.scheme = validation.one_of("scheme", scheme, ("bdf2", "backward_euler"))
        self.max_log_ratio = validation.positive_number("max_log_ratio", max_log_ratio)
        self.mesh = mesh
        self.petsc_options = dict(petsc_options or {})
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
        self.n = self.V.dofmap.index_map.size_local
        self.eps = 1.0 / (2.0 * self.beta)
        self.u = dolfinx.fem.Function(self.V, name="u")
        self._u_prev = dolfinx.fem.Function(self.V)
        self._coords = self.V.tabulate_dof_coordinates()         # u = f, checked, by _init_marching below
        self.fallbacks, self.rejected = 0, 0
        self._substeps = 0
        u_, v_ = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self._M = self._assemble(u_ * v_ * ufl.dx)
        self._K = self._assemble(ufl.inner(ufl.grad(u_), ufl.grad(v_)) * ufl.dx)
        if self.mass == "lumped":
            d = self._M.getRowSum()
            self._M.zeroEntries()
            self._M.setDiagonal(d)
            self._M.assemble()
            d.destroy()
        self._csr_M = self._M.getValuesCSR()
        self._csr_K = self._K.getValuesCSR()
        if not (np.array_equal(self._csr_M[0], self._csr_K[0]) and np.array_equal(self._csr_M[1], self._csr_K[1])):
            raise RuntimeError("mass and stiffness matrices have different sparsity patterns")
        indptr, cols = self._csr_M[0], self._csr_M[1]
        self._rows = np.repeat(np.arange(self.n), np.diff(indptr))
        ucols, self._inv = np.unique(cols, return_inverse=True)
        self._at_cols = PETSc.Vec().createSeq(len(ucols), comm=PETSc.COMM_SELF)
        iset = PETSc.IS().createGeneral(ucols.astype(PETSc.IntType), comm=PETSc.COMM_SELF)
        self._scatter = PETSc.Scatter().create(petsc_vec(self.u), iset, self._at_cols, None)
        iset.destroy()
        self._A = None
        self._ksp = None
        self._b = self._M.createVecLeft()
        self._v = self._M.createVecRight()
        self._last_dt = None
        self._grad = None                     # grad u in DG(p-1), for gradient()
        self._fp = {"beta": self.beta, "degree": self.degree, "mass": self.mass, "scheme": self.scheme,
                    "max_log_ratio": self.max_log_ratio, "num_dofs": self.V.dofmap.index_map.size_global}
        self._init_marching(f, dt)

    def _reset(self) -> None:
        self._u_prev.x.array[:] = self.u.x.array
        self._last_dt, self._substeps = None, 0
        self._step_info = {"min_v": 1.0, "max_v": 1.0}

    def _prev_function(self):
        return self._u_prev

    def _fingerprint(self) -> dict:
        return self._fp

    def _assemble(self, a) -> PETSc.Mat:
        A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(a))
        A.assemble()
        return A

    def _at(self, i: int) -> tuple:
        return tuple(round(float(c), 4) for c in self._coords[i][: self.mesh.geometry.dim])

    def _values_at_columns(self, u: dolfinx.fem.Function) -> np.ndarray:
        self._scatter.scatter(petsc_vec(u), self._at_cols, PETSc.InsertMode.INSERT_VALUES,
                              PETSc.ScatterMode.FORWARD)
        return self._at_cols.array[self._inv]

    def _factors(self, u_cols: np.ndarray, u_rows: np.ndarray) -> np.ndarray:
        """exp(-beta (u_j - u_i)) per nonzero, after checking the exponent stays in range."""
        z = -self.beta * (u_cols - u_rows)
        size = np.abs(z)
        k = int(np.argmax(size)) if len(z) else 0
        worst = float(size[k]) if len(z) else 0.0
        bad = worst > MAX_EXPONENT
        msg = (f"beta |u_j - u_i| = {worst:.4g} > {MAX_EXPONENT:g} between neighbouring dofs near "
               f"x={self._at(self._rows[k])} "
               f"(beta={self.beta:g}): exp of it overflows; refine the mesh there") if bad else None
        validation.raise_collectively(self.comm, msg)
        return np.exp(z)

    def _solve(self, a_m: float, dt: float, rhs: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """v from (D^-1 (a_m M + dt eps K) D) v = rhs, D = diag(exp(-beta u^n))."""
        data = (a_m * self._csr_M[2] + dt * self.eps * self._csr_K[2]) * factors
        indptr, cols = self._csr_M[0], self._csr_M[1]
        if self._A is None:
            self._A = PETSc.Mat().createAIJ(self._M.getSizes(), csr=(indptr, cols, data), comm=self.comm)
            self._A.assemble()
        else:
            self._A.setValuesCSR(indptr, cols, data)
            self._A.assemble()
        if self._ksp is None:
            # PETSc's own LU in serial: it does not pivot, and the transformed matrix (entries spanning e^+-30 and
            # more near steep walls) factors like A itself; MUMPS's pivoting and scaling can fail on it
            serial = {"pc_factor_mat_solver_type": "petsc"} if self.comm.size == 1 else {}
            self._ksp = make_ksp(self._A, self.prefix, {**serial, **self.petsc_options}, user=self.petsc_options)
        else:
            self._ksp.setOperators(self._A)
        self._b.array[:] = rhs
        solve(self._ksp, self._b, self._v, f"Cole-Hopf step {self.steps + 1} (t={self.t + dt:.6g})")
        return self._v.array.copy()

    def _attempt(self, dt: float):
        """v = w^{n+1} / w^n for a step dt, or None when it is not acceptable (v <= 0, or |log v| > max_log_ratio)."""
        u = self.u
        u_rows = u.x.array[self._rows]
        e = self._factors(self._values_at_columns(u), u_rows)
        Me = self._csr_M[2] * e
        starts = self._csr_M[0][:-1]
        v = None
        if self.scheme == "bdf2" and self._substeps > 0 and self._last_dt == dt:
            # w^{n-1} / w^n at the columns: exp(-beta (u^{n-1}_j - u^n_i)), differences over one step and one cell
            e_prev = self._factors(self._values_at_columns(self._u_prev), u_rows)
            rhs = np.add.reduceat(2.0 * Me - 0.5 * self._csr_M[2] * e_prev, starts) if len(Me) else np.zeros(0)
            v = self._solve(1.5, dt, rhs, e)
            if not self._acceptable(v):
                v, self.fallbacks = None, self.fallbacks + 1
        if v is None:
            v = self._solve(1.0, dt, np.add.reduceat(Me, starts) if len(Me) else np.zeros(0), e)
            if not self._acceptable(v):
                return None
        return v

    def _acceptable(self, v: np.ndarray) -> bool:
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = bool(np.all(v > 0.0) and np.all(np.abs(np.log(v)) <= self.max_log_ratio))
        return bool(self.comm.allreduce(int(ok), op=MPI.MIN))

    def _advance(self) -> dict:
        """Advance by dt: BDF2 (when scheme='bdf2' and the previous step had the same length) or backward Euler.

        Step control: a step whose solution is not positive (consistent mass) or changes u by more than
        max_log_ratio / beta somewhere is retried at a quarter of its length, which then grows back by doubling
        (self.rejected counts the retries). This bounds v (no overflow: near a steep wall of f, u falls
        at rate ~|grad f|^2 / 2 at first) and is the accuracy control at large beta, where one long implicit
        step carries exponentially weighted mass too far (the backward-Euler heat kernel has exponential, not
        Gaussian, tails)."""
        dt = self.dt
        remaining, h, tries, accepted, vmin, vmax = dt, dt, 0, 0, math.inf, -math.inf
        t = self.t
        while remaining > 1e-12 * dt:
            h = min(h, remaining)
            v = self._attempt(h)
            if v is None:
                tries += 1
                if tries > 80:
                    raise ValueError(f"Cole-Hopf step {self.steps + 1} (t={t:.6g}): no acceptable step down to "
                                     f"dt={h:.3g} (w^(n+1)/w^n not positive, or not finite: the transformed heat "
                                     "step overflows where beta h |grad u| is large); refine the mesh, use "
                                     "mass='lumped' (P1), or solve the HJ equation directly (ViscousHJ)")
                h, self.rejected = h / 4.0, self.rejected + 1
                continue
            tries = 0
            self._u_prev.x.array[:] = self.u.x.array
            self.u.x.array[: self.n] -= np.log(v) / self.beta
            self.u.x.scatter_forward()
            t += h
            self._substeps += 1
            accepted += 1
            self._last_dt = h
            remaining -= h
            vmin = min(vmin, self.comm.allreduce(float(np.min(v, initial=np.inf)), op=MPI.MIN))
            vmax = max(vmax, self.comm.allreduce(float(np.max(v, initial=-np.inf)), op=MPI.MAX))
            h = min(dt, 2.0 * h)
        self._step_info = {"min_v": vmin, "max_v": vmax}
        return {"converged": True, "iterations": accepted, **self._step_info}

    def constant(self, gamma: float | None = None) -> float:
        """(d / (2 beta)) log(2 pi gamma / beta): u(., gamma) minus the local entropy as defined by the integral.

        Parameters
        ----------
        gamma : float, optional
            Default: the current time.

        Returns
        -------
        float
        """
        gamma = self.t if gamma is None else gamma
        return self.mesh.geometry.dim / (2.0 * self.beta) * math.log(2.0 * math.pi * gamma / self.beta)

    def local_entropy(self) -> np.ndarray:
        """Nodal values of f_gamma = -beta^-1 log int exp(-beta f(y) - beta|x-y|^2/(2 gamma)) dy.

        Returns
        -------
        numpy.ndarray, shape (n_local + n_ghosts,)
        """
        return self.u.x.array - self.constant()

    def values(self, points: np.ndarray) -> np.ndarray:
        """u at points (collective; the same on every rank).

        Parameters
        ----------
        points : numpy.ndarray, shape (N, 3)

        Returns
        -------
        numpy.ndarray, shape (N,)
        """
        return evaluate_on_points(self.u, points)

    def gradient(self, points: np.ndarray) -> np.ndarray:
        """grad u = grad f_gamma = (x - <y>_x) / gamma at points (collective).

        Parameters
        ----------
        points : numpy.ndarray, shape (N, 3)

        Returns
        -------
        numpy.ndarray, shape (N, d)
        """
        d = self.mesh.geometry.dim
        if self._grad is None:
            self._grad = dolfinx.fem.Function(dolfinx.fem.functionspace(self.mesh, ("DG", self.degree - 1, (d,))))
        interpolate(self._grad, ufl.grad(self.u))
        return evaluate_on_points(self._grad, points).reshape(len(points), d)

    def _release(self) -> None:
        for obj in (self._A, self._ksp, self._M, self._K, self._b, self._v, self._at_cols, self._scatter):
            if obj is not None:
                obj.destroy()
