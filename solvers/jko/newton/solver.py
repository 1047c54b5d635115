"""JKO steps on any P1 mesh by Newton's method on the fully discrete step on the mesh's edge graph.

The choice (why not ALG2, why not a Monge-Ampere or back-and-forth solver)
---------------------------------------------------------------------------
ALG2 (fpjko.solvers.jko.alg2) solves the Benamou-Brenier step on a space-time box with a first-order
splitting: its iteration count grows with the resolution and it cannot use a given spatial mesh.
The back-and-forth method needs FFTs on a uniform periodic grid; Monge-Ampere solvers need second
derivatives that P1 on a general mesh does not have. The scheme here is the fully discrete JKO step
on the two-point-flux (edge) structure of the P1 stiffness matrix, as in the variational finite-volume
schemes of Cances, Gallouet and Todeschi (Numer. Math. 2020) and the LJKO / interior-point solvers of
Natale and Todeschi: a convex problem whose optimality system is solved by Newton's method, so the
number of iterations does not grow with the mesh, and every iteration is one sparse SPD solve
(conjugate gradients with algebraic multigrid), O(dofs) (measured: seconds per step ~ dofs^1.06, 0.43 s
per 2D step at 66k dofs on one core, benchmarks/jko_newton.py).

The discrete step
-----------------
Control volumes are the lumped masses m_i = int phi_i; transmissibilities w_ij = -int D grad phi_i .
grad phi_j (>= 0 on Delaunay meshes, D the constant metric, I by default). The transport cost from
rho_k to rho is one Benamou-Brenier time step on the graph,

    W_h^2(rho_k, rho) = min_F sum_edges F_ij^2 / (w_ij theta_ij)   s.t.  m_i (rho_i - rho_k,i) + sum_j F_ij = 0,

with the mobility theta_ij = (rbar_i + rbar_j) / 2 of rbar = (1 - s) rho_k + s rho: s = 1/2
('midpoint', the trapezoidal rule in pseudo-time, default) or s = 1 ('implicit', the scheme of
Cances-Gallouet-Todeschi). The step is

    rho_{k+1} = argmin_rho  W_h^2(rho_k, rho) / (2 tau) + E_h(rho),
    E_h(rho) = sum_i m_i (V_i rho_i + beta^-1 rho_i log rho_i + cm rho_i^m / (m - 1))
               + 1/2 sum_ij m_i m_j W(x_i - x_j) rho_i rho_j,

jointly convex in (rho, F) (the perspective F^2 / theta with theta affine in rho). Eliminating F with
the potential phi gives the saddle function
    l(rho, phi) = E_h(rho) - sum_i phi_i m_i (rho_i - rho_k,i) - tau/2 sum_edges w_ij theta_ij (phi_i - phi_j)^2,
and the optimality system (its gradient)
    G_i = m_i (rho_i - rho_k,i) + tau sum_j w_ij theta_ij (phi_i - phi_j) = 0           (mass balance)
    H_i = dE_h/drho_i - m_i phi_i - tau s/4 sum_j w_ij (phi_i - phi_j)^2 = 0             (optimality)
whose second line carries the discrete Hamilton-Jacobi term that makes it a minimizing movement
rather than a backward Euler step. Mass is conserved exactly (sum_i G_i = sum_i m_i (rho_i - rho_k,i)),
rho > 0 by the entropy or by a log barrier (below), and E_h(rho_{k+1}) + W_h^2 / (2 tau) <= E_h(rho_k), so
E_h decreases at every step.

Accuracy. One pseudo-time step is not the exact W2: with the midpoint mobility (the trapezoidal rule for
the geodesic's action) a Gaussian dilation 0.3 -> 0.43 has W_h^2 1.5% below W2^2 (the implicit mobility:
20%). The step then differs from the exact JKO step by O(tau^2) (measured slope 1.7-1.9 against the exact
discrete Gaussian step) plus O(h^2) (measured 1.98), and over [0, T] the iterates converge to the PDE at
O(tau), as the exact JKO iterates do. Near equilibrium, or for a wide Gaussian, the pseudo-time error is
small: from N((1, 0.5), 0.49 I) one OU step with tau = 0.1 on 256^2 nodes is 7e-4 from the exact step in L1.

Newton (with an entropy). rho is eliminated: for a given phi, rho_i solves H_i = 0 pointwise,
rho_i = exp(beta (phi_i + tau s/(4 m_i) sum_j w_ij (phi_i - phi_j)^2 - V_i - (W * rho)_i) - 1) (with a
porous term, a scalar Newton per node), the exact minimiser of l in rho. Newton's method then maximises
the concave dual phi -> l(rho(phi), phi): its gradient is -G and its Hessian -S,
    S = B D_h^-1 B^T + tau L,   B = M + tau C = dG/drho,   D_h = Hess E_h (diagonal),
L the theta-weighted graph Laplacian. S is SPD, formed by PETSc's sparse product (two rings of
neighbours), diagonally scaled, and solved by CG + BoomerAMG (HMIS coarsening; the -jko_ options
override) with a Krylov tolerance that follows the defect (inexact Newton), or a direct solve when the
Krylov solve breaks down. The constant mode of phi imposes the mass of rho_k exactly at every iterate
(a scalar equation, closed form for the entropy), so mass is conserved to round-off. The line search is
Armijo on the dual with a trust region of 5 / beta per node. The first guess is one backward-Euler
Scharfetter-Gummel step of the PDE on the same edges (in the Slotboom variable, one CG solve): 4-6
Newton iterations per step on Gaussian problems at every h (measured 4, 4, 4 on 33^2 ... 257^2 nodes).

Steep confining walls on a bounded domain (a double well on a disk, x^4 on [-5, 5]) leave nodes whose
density is hundreds of decades below the maximum. There (i) the first guess is replaced, outside the
bulk, by the Lipschitz extension of the bulk's phi (slope 2 (2 / (beta tau))^(1/2)), since the predictor's
tail would make the Hamilton-Jacobi term overflow; (ii) a graph Laplacian on the edges with density
below 1e-10 of the maximum is added to S, so the step there extends the bulk's smoothly; (iii) if 20
iterations do not converge, the step tau / 2 is solved first and starts tau (a homotopy in tau). Newton
then takes 3-20 iterations per step, up to 60 in the first steps (measured on the 2D double well at
h = 0.12, 0.06, 0.03 without growth in h): the exponentially small tails converge linearly, about a
factor e per iteration. A step that moves mass out of a region entirely (vacuum) is the hard case for
this method; the homotopy and the warning when a step does not converge are the safeguards.

Newton without an entropy (porous medium alone, rho = 0 on a region). The dual is then only C^1 (rho(q) =
(q_+ / k)^(1/(m-1)) has a kink at the free boundary) and its Newton iteration cycles between active
sets, so the (rho, phi) system is solved instead by a primal-dual interior-point Newton method: the
barrier -mu sum m_i log rho_i with mu from 1e-2 q* to tol q* (q* the pressure scale), the same Schur
complement with D_h = Hess(E_h + barrier), fraction-to-the-boundary steps and backtracking on the
residual norm: 30-45 iterations per step for m = 2 and 3 at every h (measured).

Interaction. W * rho is exact (the moment sums of a polynomial W, or the full double sum over the nodes
of a kernel: gathered, kept as a dense block up to 2^24 entries per rank). Its Hessian (dense) is left
out of the Newton matrix: an outer fixed point on W * rho, each pass warm-started and solved to a
tolerance that follows the change of W * rho, reaches the exact discrete step at a rate of about
tau |D^2 W| (9-20 Newton iterations in total in the tests).

Stopping test (what converges): the mass-balance defect sum_i |G_i| / mass <= tol (H = 0 holds exactly
for rho(phi); the interior-point path adds sum rho_i |H_i| / (q* mass) <= tol and mu <= tol q*), and with
an interaction the change of W * rho, sum m_i rho_i |dpsi_i| / mass <= tol. Each step records
iterations, linear_iterations, residual and converged in history, and warns when max_iter is reached
without meeting the test.

MPI. Each rank owns the rows of its nodes; the edges of its rows reach nodes that may be neither owned
nor dolfinx ghosts (a vertex shared only at a corner), so the values there come from a PETSc scatter of
the matrix's column layout. Serial and 2-rank runs give the same iterates (tests/test_jko_newton.py).

Anisotropic metric: a constant SPD D (the JKO step in the distance with cost (x - y)^T D^-1 (x - y),
i.e. rho_t = div(rho D grad dF/drho)) is allowed when the D-weighted stiffness matrix has no positive
off-diagonal entry (e.g. a diagonal D on an axis-aligned rectangle mesh); otherwise the offending edge
is named and the step refused. Negative transmissibilities of an isotropic non-Delaunay mesh are
clipped to zero with a warning (negative_weights='clip') or refused ('error').
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.solvers.core import linear, validation
from fpjko.solvers.core.compat import interpolate
from fpjko.solvers.fokker_planck.coefficients import call_ufl
from fpjko.solvers.fokker_planck.edge_averaged import bernoulli, lumped_mass
from fpjko.solvers.fokker_planck.interaction import PolynomialInteraction, as_interaction, kernel_sum
from fpjko.solvers.jko.alg2 import _numpy_kernel
from fpjko.solvers.core.protocol import DensitySolver
from fpjko.common.warn import warn

MOBILITY = {"midpoint": 0.5, "implicit": 1.0}
EXTRA_KEYS = ("interaction_energy", "w2", "linear_iterations", "residual", "min_rho", "energy_decrease")
DENSE_KERNEL_ENTRIES = 2**24          # a general W(x_i - x_j) matrix up to 128 MB per rank is kept


class NewtonJKO(DensitySolver):
    """JKO minimizing movement on a dolfinx mesh (P1 nodes), one Newton solve per step.

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        Any simplex mesh (interval, triangles, tetrahedra), distributed over its communicator.
    tau : float
        The JKO time step.
    potential : callable, optional
        V(x), x of shape (3, n) (numpy) or ufl.SpatialCoordinate (UFL); interpolated at the nodes.
    beta : float, optional
        Inverse temperature of the entropy beta^-1 int rho log rho (None: no entropy).
    m, cm : float, optional
        Porous-medium term cm int rho^m / (m - 1), m > 1 (the PDE rho_t = cm Lap rho^m + ...).
    interaction : optional
        W(x - y): a number k (k |z|^2 / 2), a (d, d) matrix, a PolynomialInteraction (exact moments)
        or a numpy callable W(z), z (..., d) (exact double sum over the nodes).
    D : array_like (d, d), optional
        Constant SPD mobility metric (see the module docstring for which meshes allow it).
    mobility : {'midpoint', 'implicit'}
    tol, max_iter : the Newton stopping test (above) and its iteration cap.
    petsc_options : dict, optional
        Options of the Schur-complement solve (under the prefix; the command line wins).
    negative_weights : {'clip', 'error'}
        What to do with negative transmissibilities of a non-Delaunay mesh (isotropic case).
    predictor : bool
        Start each step's Newton iteration from one backward-Euler Scharfetter-Gummel step (default; with an
        entropy) rather than from the previous step's potential.
    prefix : str, optional
        PETSc options prefix of its solves (default 'njko_'; the fallback LU and the predictor add 'fallback_'
        and 'pred_').

    History: the core keys (energy: E(rho), iterations: Newton iterations) and interaction_energy, w2 (the
    step's transport distance), linear_iterations, residual, min_rho, energy_decrease.
    """

    default_mass_tol = 1e-6
    label = "JKO steps (Newton)"
    default_prefix = "njko_"
    extra_keys = EXTRA_KEYS
    step_name = "tau"

    def __init__(self, mesh, tau: float, potential=None, beta: float | None = None, m: float | None = None,
                 cm: float = 1.0, interaction=None, D=None, mobility: str = "midpoint", tol: float = 1e-8,
                 max_iter: int = 60, petsc_options: dict | None = None, negative_weights: str = "clip",
                 predictor: bool = True, prefix: str | None = None):
        self._init_protocol(mesh.comm, prefix)
        self.tau = validation.positive_number("tau", tau)
        self.eps = 1.0 / validation.positive_number("beta", beta) if beta is not None else 0.0
        if m is not None and not validation.number("m", m) > 1:
            raise ValueError(f"porous-medium exponent must be > 1, got m={m}")
        if self.eps == 0.0 and m is None:
            raise ValueError("E needs an entropy (beta) or a porous-medium term (m): a potential alone "
                             "concentrates to a point mass")
        self.m, self.cm = m, validation.positive_number("cm", cm)
        self.s = MOBILITY[validation.one_of("mobility", mobility, tuple(MOBILITY))]
        self.tol = validation.positive_number("tol", tol)
        self.max_iter = validation.integer("max_iter", max_iter, 1)
        self.predictor = bool(predictor)
        validation.one_of("negative_weights", negative_weights, ("clip", "error"))
        self.mesh = mesh
        self.d = mesh.geometry.dim
        if mesh.topology.dim != self.d:
            raise ValueError(f"JKO needs a mesh of full dimension, got a {mesh.topology.dim}D mesh in {self.d}D")
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        im = self.V.dofmap.index_map
        self.n = im.size_local
        self.X = self.V.tabulate_dof_coordinates()                    # (local, 3)
        self.ml = lumped_mass(self.V)                                 # local with ghosts
        self.volume = self.comm.allreduce(float(self.ml[: self.n].sum()))
        self.rho = dolfinx.fem.Function(self.V, name="rho")
        self.phi = dolfinx.fem.Function(self.V, name="phi")
        self.rho_k = dolfinx.fem.Function(self.V, name="rho_k")
        pot = self._nodal(potential, "potential") if potential is not None else np.zeros(len(self.X))
        self._interaction(interaction)
        self._graph(D, negative_weights)
        self.V_nodal = self._ghost(pot[: self.n])              # arrays in the edge layout (below) from here
        self._potential_fp = [self.comm.allreduce(float(self.ml[: self.n] @ (pot[: self.n] ** k))) for k in (1, 2)]
        self._fp = {"beta": beta, "m": m, "cm": self.cm, "mobility": mobility, "tol": self.tol,
                    "max_iter": self.max_iter, "predictor": self.predictor, "negative_weights": negative_weights,
                    "D": None if D is None else np.asarray(D, float).tolist(),
                    "interaction": None if interaction is None else
                    (np.asarray(interaction, float).tolist() if not callable(interaction) and
                     not hasattr(interaction, "kind") else getattr(interaction, "kind", "callable"))}
        self._solver(petsc_options)

    # ------------------------------------------------------------------ set-up
    def _nodal(self, fn, what: str) -> np.ndarray:
        """Nodal values (local, with ghosts) of a numpy or UFL callable."""
        u = dolfinx.fem.Function(self.V)
        try:
            vals = np.asarray(fn(self.X.T), dtype=float)
            u.x.array[:] = np.broadcast_to(vals, (len(self.X),))
        except Exception:
            interpolate(u, call_ufl(fn, ufl.SpatialCoordinate(self.mesh), what, self.mesh))
        u.x.scatter_forward()
        validation.finite_field(self.comm, u.x.array[: self.n], self.X[: self.n], what)
        return u.x.array.copy()

    def _interaction(self, interaction):
        self.W = _numpy_kernel(as_interaction(interaction, self.d))
        self._Wmat = None
        if self.W is None or isinstance(self.W, PolynomialInteraction):
            return
        xs = self.comm.allgather(self.X[: self.n, : self.d])
        self._xall = np.concatenate(xs)
        if self.n * len(self._xall) <= DENSE_KERNEL_ENTRIES:
            self._Wmat = np.asarray(self.W(self.X[: self.n, None, : self.d] - self._xall[None, :, :]), float)

    def _graph(self, D, negative_weights):
        """The directed edges (i owned, j) of the stiffness pattern with weights w_ij, in the edge layout:
        the owned nodes, then the other columns of the owned rows (a PETSc scatter fills them; dolfinx's
        ghosts do not cover nodes that share only a vertex with this rank's cells)."""
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        if D is None:
            a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
            self.D = None
        else:
            Dm = np.atleast_2d(np.asarray(D, float))
            if Dm.shape != (self.d, self.d) or not np.all(np.isfinite(Dm)) or not np.allclose(Dm, Dm.T):
                raise ValueError(f"D must be a finite symmetric ({self.d}, {self.d}) matrix, got {Dm.tolist()}")
            ev = np.linalg.eigvalsh(Dm)
            if ev.min() <= 0:
                raise ValueError(f"D must be positive definite: eigenvalue {ev.min():.4g} of D = {Dm.tolist()}")
            self.D = Dm
            a = ufl.inner(ufl.dot(ufl.as_matrix(Dm.tolist()), ufl.grad(u)), ufl.grad(v)) * ufl.dx
        A = dolfinx.fem.petsc.assemble_matrix(dolfinx.fem.form(a))
        A.assemble()
        indptr, cols, vals = A.getValuesCSR()
        self._pattern = A
        self._indptr, self._cols = indptr, cols
        rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(indptr))
        r0 = A.getOwnershipRange()[0]
        gcols = cols.astype(np.int64)
        owned = (gcols >= r0) & (gcols < r0 + self.n)
        extra = np.unique(gcols[~owned])
        lcols = np.where(owned, gcols - r0, self.n + np.searchsorted(extra, gcols))
        self._gvec = A.createVecRight()
        self._xvec = PETSc.Vec().createSeq(len(extra), comm=PETSc.COMM_SELF)
        iset = PETSc.IS().createGeneral(extra.astype(PETSc.IntType), comm=PETSc.COMM_SELF)
        self._scatter = PETSc.Scatter().create(self._gvec, iset, self._xvec, None)
        off = lcols != rows
        self._diag_pos = np.flatnonzero(~off)
        validation.raise_collectively(self.comm, None if len(self._diag_pos) == self.n else
                                      "stiffness pattern without a full diagonal", RuntimeError)
        self._off_pos = np.flatnonzero(off)
        self.ei, self.ej = rows[off], lcols[off]
        w = -vals[off]
        Xe = np.column_stack([self._ghost(self.X[: self.n, c]) for c in range(self.d)])   # edge layout
        scale = self.comm.allreduce(float(np.abs(w).max(initial=0.0)), op=MPI.MAX)
        bad = w < -1e-10 * scale
        nbad = self.comm.allreduce(int(bad.sum()))
        if nbad:
            k = int(np.argmin(w)) if bad.any() else -1
            worst = (float(w[k]), Xe[self.ei[k]], Xe[self.ej[k]]) if k >= 0 else None
            worst = next(x for x in self.comm.allgather(worst) if x is not None)
            what = (f"{nbad // 2 or 1} edges have a negative transmissibility (worst {worst[0]:.3g} on the edge "
                    f"{np.round(worst[1], 4).tolist()} - {np.round(worst[2], 4).tolist()})")
            if self.D is not None:
                raise ValueError(f"the metric D = {self.D.tolist()} is not allowed on this mesh: {what}; the "
                                 "two-point scheme needs a mesh whose D-weighted stiffness has no positive "
                                 "off-diagonal entry (e.g. a diagonal D on an axis-aligned rectangle mesh)")
            if negative_weights == "error":
                raise ValueError(f"the mesh is not Delaunay: {what}")
            warn(None, f"JKO: the mesh is not Delaunay: {what}; clipped to 0 (the scheme stays convex, "
                          "positive and mass-conserving but loses consistency on those edges)", RuntimeWarning,
                          stacklevel=3)
        self.w = np.maximum(w, 0.0)
        self._elen = np.linalg.norm(Xe[self.ei] - Xe[self.ej], axis=1)
        self._row_start = np.flatnonzero(np.r_[True, np.diff(self.ei) != 0]) if len(self.ei) else np.zeros(0, int)
        self._rows_with_edges = self.ei[self._row_start] if len(self.ei) else np.zeros(0, int)

    def _solver(self, petsc_options):
        self._B = self._pattern.duplicate()
        self._L = self._pattern.duplicate()
        self._Bs = self._pattern.duplicate()
        self._S = None
        opts = {**linear.iterative_solver_options(symmetric=True, rtol=1e-10), "ksp_norm_type": "unpreconditioned"}
        if opts["pc_type"] == "hypre" and (petsc_options or {}).get("pc_type", "hypre") == "hypre":
            # measured about 15% faster than BoomerAMG's defaults on these Schur complements
            opts.update({"pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i",
                         "pc_hypre_boomeramg_P_max": 4, "pc_hypre_boomeramg_agg_nl": 1})
        opts.update(petsc_options or {})
        self._ksp_options = opts
        self._adapt_rtol = "ksp_rtol" not in (petsc_options or {}) and not PETSc.Options().hasName(self.prefix + "ksp_rtol")
        self._ksp = None
        self._lu, self._fallbacks = None, 0
        self._vecs = {k: self._pattern.createVecRight() for k in ("dphi", "rhs", "dinv", "scale")}
        self._P, self._pksp = self._pattern.duplicate(), None

    # ------------------------------------------------------------------ energy
    def _convolve(self, rho: np.ndarray) -> np.ndarray:
        """(W * rho)_i = sum_j W(x_i - x_j) m_j rho_j over all nodes (each once), at the owned nodes."""
        own = slice(0, self.n)
        mr = self.ml[own] * rho[own]
        if isinstance(self.W, PolynomialInteraction):
            Y = np.stack([np.prod(self.X[own, : self.d] ** np.array(b), axis=1) for b in self.W.moments], axis=1)
            mom = self.comm.allreduce(mr @ Y if self.n else np.zeros(len(self.W.moments)), op=MPI.SUM)
            Xg = np.stack([np.prod(self.X[own, : self.d] ** np.array(g), axis=1) for g in self.W.monomials], axis=1)
            return Xg @ (self.W.T @ mom)
        wts = np.concatenate(self.comm.allgather(mr))
        if self._Wmat is not None:
            return self._Wmat @ wts
        return kernel_sum(self.X[own, : self.d], self._xall, wts, self.W)

    def _local_energy(self, r: np.ndarray, ent: float | None = None) -> np.ndarray:
        """Per-unit-volume energy density at the owned nodes, without interaction (entropy coefficient
        `ent`, default beta^-1)."""
        ent = self.eps if ent is None else ent
        e = self.V_nodal[: self.n] * r
        if ent:
            pos = r > 0
            e = e + ent * np.where(pos, r * np.log(np.where(pos, r, 1.0)), 0.0)
        if self.m is not None:
            e = e + self.cm * r ** self.m / (self.m - 1)
        return e

    def _energy(self, rho) -> tuple[float, float]:
        """(E_h(rho), its interaction part), summed over ranks."""
        r, mo = rho[: self.n], self.ml[: self.n]
        ei = 0.5 * float(np.sum(mo * r * self._convolve(rho))) if self.W is not None else 0.0
        tot = self.comm.allreduce(np.array([float(mo @ self._local_energy(r)), ei]), op=MPI.SUM)
        return float(tot[0] + tot[1]), float(tot[1])

    def free_energy(self) -> float:
        return self._energy(self.rho.x.array)[0]

    def mass(self, rho=None) -> float:
        r = self.rho.x.array if rho is None else rho
        return self.comm.allreduce(float(self.ml[: self.n] @ r[: self.n]))

    def _invert(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rho with e'(rho) = q pointwise (e the local energy density without potential) and d rho / d q."""
        eps, m = self._ent, self.m
        if m is None:
            rho = np.exp(np.minimum(q / eps - 1.0, 700.0))
            return rho, rho / eps
        k = self.cm * m / (m - 1)
        if not eps:
            rho = ((np.maximum(q, 0.0) / k) ** (1.0 / (m - 1)))
            with np.errstate(divide="ignore"):
                drho = np.where(rho > 0, rho ** (2 - m) / (self.cm * m), 0.0)
            return rho, drho
        # eps (u + 1) + k exp((m - 1) u) = q in u = log rho: convex and increasing, so Newton converges
        # monotonically once above the root; the root is below both u_a = q/eps - 1 and u_b = log(q/k)/(m-1)
        # and their minimum is at most one Newton step away
        u = q / eps - 1.0
        pos = q > 0
        u = np.where(pos, np.minimum(u, np.log(np.where(pos, q, 1.0) / k) / (m - 1)), u)
        for _ in range(200):
            ex = k * np.exp(np.minimum((m - 1) * u, 700.0))
            F = eps * (u + 1.0) + ex - q
            du = F / (eps + (m - 1) * ex)
            u -= du
            if np.all(np.abs(du) <= 1e-13 * (1.0 + np.abs(u))):
                break
        else:
            warn(None, f"NewtonJKO: the pointwise inversion e'(rho) = q (entropy + porous medium) did not reach "
                          f"its tolerance in 200 Newton steps (last max |du| = {np.abs(du).max():.3e}, rank "
                          f"{self.comm.rank})", RuntimeWarning, stacklevel=3)
        rho = np.exp(np.minimum(u, 700.0))
        return rho, 1.0 / (eps / rho + self.cm * m * rho ** (m - 2))

    # ------------------------------------------------------------------ initial data
    def _set_initial(self, rho0, normalize: bool = False, mass_tol: float = 1e-6) -> None:
        if isinstance(rho0, dolfinx.fem.Function):
            if rho0.function_space.mesh is not self.mesh:
                raise ValueError("initial density lives on a different mesh than the solver: mismatched meshes")
            self.rho_k.interpolate(rho0)
            self.rho_k.x.scatter_forward()
            vals = self.rho_k.x.array.copy()
        elif callable(rho0):
            vals = self._nodal(rho0, "initial density")
        else:
            vals = np.asarray(rho0, float)
            validation.raise_collectively(self.comm, None if vals.shape in ((len(self.X),), (self.n,)) else
                                          f"initial density: expected {len(self.X)} local nodal values, got shape "
                                          f"{vals.shape}")
            u = dolfinx.fem.Function(self.V)
            u.x.array[: len(vals)] = vals
            u.x.scatter_forward()
            vals = u.x.array.copy()
        validation.finite_field(self.comm, vals[: self.n], self.X[: self.n], "initial density")
        mass = self.mass(vals)
        if normalize:
            if not (math.isfinite(mass) and mass > 0):
                raise ValueError(f"cannot normalise the initial density: its mass is {mass!r}")
            vals = vals / mass
        validation.check_density(self.comm, vals[: self.n], self.X[: self.n], self.mass(vals), "initial density",
                                 mass_tol, neg_tol=0.0)
        self.rho_k.x.array[:] = vals
        self.rho.x.array[:] = vals
        self._rk = self._ghost(vals[: self.n])
        # the potential's first guess: phi = dE/drho(rho_0) (where rho_0 = 0: its limit, floored)
        r = vals[: self.n]
        g = self.V_nodal[: self.n] + (self._convolve(vals) if self.W is not None else 0.0)
        if self.eps:
            g = g + self.eps * (np.log(np.maximum(r, 1e-300)) + 1.0)
        if self.m is not None:
            g = g + self.cm * self.m / (self.m - 1) * r ** (self.m - 1)
        self._phi = self._ghost(g)
        self.phi.x.array[: self.n] = g
        self.phi.x.scatter_forward()
        self.mass0 = self.mass(vals)
        self._steep = False
        self._step_info = {"w2": 0.0, "linear_iterations": 0, "residual": 0.0, "energy_decrease": math.nan}

    def _measure(self) -> dict:
        F, Fi = getattr(self, "_energy_cache", None) or self._energy(self.rho.x.array)
        self._energy_cache = None                       # E(rho) of this step, computed once
        return {"mass": self.mass(), "energy": F, "interaction_energy": Fi, "min_rho": self._min(self.rho.x.array),
                **self._step_info}

    def _functions(self) -> dict:
        return {"rho": self.rho, "phi": self.phi}

    def _state(self) -> dict:
        return {"scalars": {"mass0": self.mass0, "steep": bool(self._steep)}}

    def _restore(self, state: dict) -> None:
        self.mass0 = float(state["scalars"]["mass0"])
        self._steep = bool(state["scalars"]["steep"])
        self.rho_k.x.array[:] = self.rho.x.array
        self._rk = self._ghost(self.rho.x.array[: self.n])
        self._phi = self._ghost(self.phi.x.array[: self.n])
        self._step_info = {"w2": 0.0, "linear_iterations": 0, "residual": 0.0, "energy_decrease": math.nan}

    def _fingerprint(self) -> dict:
        return {**self._fp, "num_dofs": self.V.dofmap.index_map.size_global, "potential_moments": self._potential_fp}

    def _release(self) -> None:
        for k in (self._ksp, self._lu, self._pksp):
            if k is not None:
                k.destroy()
        for name in ("_B", "_L", "_Bs", "_S", "_P"):
            M = getattr(self, name, None)
            if M is not None:
                M.destroy()

    def _min(self, r) -> float:
        return self.comm.allreduce(float(r[: self.n].min(initial=np.inf)), op=MPI.MIN)

    # ------------------------------------------------------------------ the Newton step (in phi)
    def _newton_state(self, phi: np.ndarray, psi: np.ndarray) -> dict:
        """rho(phi) (exact minimiser in rho for this phi, with the mass of rho_k imposed through the
        constant mode of phi), and what the Newton step and the line search need."""
        ei, ej, w, n = self.ei, self.ej, self.w, self.n
        mo = self.ml[:n]
        dphi = phi[ei] - phi[ej]
        q = phi[:n] + 0.25 * self.tau * self.s * np.bincount(ei, w * dphi * dphi, minlength=n) / mo \
            - self.V_nodal[:n] - psi
        c = self._mass_shift(q)
        rho_own, drho = self._invert(q + c)
        phi = phi.copy()
        phi += c                                     # the same for every node: dphi, q's HJ term unchanged
        rho = self._ghost(rho_own)
        rk = self._rk
        rbar = (1 - self.s) * rk + self.s * rho
        th = 0.5 * (rbar[ei] + rbar[ej])
        G = mo * (rho_own - rk[:n]) + self.tau * np.bincount(ei, w * th * dphi, minlength=n)
        # the dual objective l(rho(phi), phi) with the interaction potential psi frozen
        loc = np.array([float(mo @ (self._local_energy(rho_own, self._ent) + psi * rho_own - phi[:n] * (rho_own - rk[:n]))),
                        float(np.sum(w * th * dphi * dphi))])
        tot = self.comm.allreduce(loc, op=MPI.SUM)
        psi_val = tot[0] - 0.25 * self.tau * tot[1]           # each edge twice in the directed sum
        res = self.comm.allreduce(float(np.abs(G).sum())) / self.mass0
        return dict(phi=phi, rho=rho, drho=drho, dphi=dphi, th=th, G=G, dual=psi_val, res=res, kin=tot[1])

    def _mass_shift(self, q: np.ndarray) -> float:
        """The constant c with sum_i m_i rho(q_i + c) = mass of rho_k (scalar safeguarded Newton)."""
        mo, M = self.ml[: self.n], self.mass0
        if self.m is None:                          # rho(q + c) = rho(q) e^(c / eps): closed form
            top = self.comm.allreduce(float(np.max(q, initial=-np.inf)), op=MPI.MAX)
            r, _ = self._invert(q - top)
            tot = self.comm.allreduce(float(mo @ r))
            return self.eps * math.log(M / tot) - top
        lo, hi, c = -np.inf, np.inf, 0.0
        for _ in range(200):
            r, dr = self._invert(q + c)
            mass, slope = self.comm.allreduce(np.array([float(mo @ r), float(mo @ dr)]), op=MPI.SUM)
            g = mass - M
            if abs(g) <= 1e-15 * M:
                break
            if g > 0:
                hi = c
            else:
                lo = c
            new = c - g / slope if slope > 0 else math.nan
            if not (lo < new < hi):
                if math.isfinite(lo) and math.isfinite(hi):
                    new = 0.5 * (lo + hi)
                else:
                    span = self.comm.allreduce(float(np.ptp(q)) if self.n else 0.0, op=MPI.MAX) + 1.0
                    new = c - span if g > 0 else c + span
            if new == c:
                break
            c = new
        else:                                       # the same on every rank (g is a global sum)
            warn(None, f"NewtonJKO: the mass shift did not converge in 200 safeguarded Newton steps (relative "
                          f"mass error {abs(g) / M:.3e})", RuntimeWarning, stacklevel=3)
        return c

    def _ghost(self, owned: np.ndarray) -> np.ndarray:
        """Owned values -> the edge layout (owned, then the other columns of the owned rows). Collective."""
        self._gvec.array[:] = owned
        self._scatter.scatter(self._gvec, self._xvec, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD)
        return np.concatenate([np.asarray(owned, float), self._xvec.array])

    def _set_csr(self, M: PETSc.Mat, diag, off):
        vals = np.empty(len(self._cols))
        vals[self._diag_pos] = diag
        vals[self._off_pos] = off
        M.setValuesCSR(self._indptr, self._cols, vals)
        M.assemble()

    def _direction(self, st: dict) -> tuple[np.ndarray, int]:
        """Newton direction in phi: S dphi = -G, S = B diag(drho/dq / m) B^T + tau L."""
        s, tau, ei, w, n = self.s, self.tau, self.ei, self.w, self.n
        mo = self.ml[:n]
        c_off = 0.5 * s * tau * w * st["dphi"]                   # tau d flux_i / d rho_j
        self._set_csr(self._B, mo + np.bincount(ei, c_off, minlength=n), c_off)
        wt = w * st["th"]
        dinv = st["drho"] / mo
        # a floor on the diagonal where both rho and the mobility vanish (empty region of a porous
        # medium): phi is arbitrary there and the rows would be zero
        if self.eps and self._steep:
            # where rho is negligible (< 1e-10 of its maximum, at either end of an edge) the rows of S are tiny
            # and the Newton step there is noise that rho(q) = exp(...) and the Hamilton-Jacobi term amplify
            # into spikes. A graph Laplacian on those edges, 100 times the largest such mobility, makes the
            # step there a smooth extension of the step in the bulk. Only once a run has shown such tails
            # (the first guess needed its Lipschitz extension, or a step needed more than 8 iterations): on
            # Gaussian problems it would cost 3-4 times more Krylov iterations for nothing
            r = st["rho"]
            rmax = self.comm.allreduce(float(np.max(r[:n], initial=0.0)), op=MPI.MAX)
            small = np.minimum(r[self.ei], r[self.ej]) < 1e-10 * rmax
            wt = wt + np.where(small, w * 1e-8 * rmax, 0.0)
        Ldiag = np.bincount(ei, wt, minlength=n)
        floor = 1e-14 * self.comm.allreduce(float(np.max(mo * mo * dinv + tau * Ldiag, initial=0.0)), op=MPI.MAX)
        self._set_csr(self._L, Ldiag + floor / tau, -wt)
        vd = self._vecs["dinv"]
        vd.array[:] = dinv
        self._B.copy(self._Bs, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        self._Bs.diagonalScale(R=vd)
        if self._S is not None and self.comm.size == 1:
            self._Bs.matTransposeMult(self._B, result=self._S)
        else:
            # in parallel the reused product keeps stale values (PETSc 3.22, MPIAIJ: measured, the Newton
            # iteration then converges only linearly): a fresh product each iteration
            if self._S is not None:
                self._S.destroy()
            self._S = self._Bs.matTransposeMult(self._B)
        self._S.axpy(tau, self._L, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        sc = self._vecs["scale"]
        # symmetric diagonal scaling: rows of S span many decades where rho does (Gaussian tails), and
        # the Krylov residual must resolve them all
        self._S.getDiagonal(sc)
        sc.array[:] = 1.0 / np.sqrt(sc.array)
        self._S.diagonalScale(L=sc, R=sc)
        if self._ksp is None:
            self._ksp = linear.make_ksp(self._S, self.prefix, self._ksp_options)
        else:
            self._ksp.setOperators(self._S)
        if self._adapt_rtol:
            # inexact Newton (Eisenstat-Walker type): the Krylov tolerance follows the defect, so the early
            # iterations are cheap and the last ones still converge quadratically
            self._ksp.setTolerances(rtol=min(1e-4, max(1e-10, 1e-2 * st["res"])))
        rhs, x = self._vecs["rhs"], self._vecs["dphi"]
        H = st.get("H")
        if H is None:
            rhs.array[:] = -st["G"]
        else:                                                      # primal-dual: -G + B D^-1 H
            x.array[:] = dinv * H
            self._B.mult(x, rhs)
            rhs.array[:] -= st["G"]
        rhs.array[:] *= sc.array
        x.set(0.0)
        try:
            its = linear.solve(self._ksp, rhs, x, "JKO Newton step (Schur complement)")
        except RuntimeError:
            # Krylov + AMG can break down when rho spans hundreds of decades (a steep potential's far tail);
            # this iteration's system is then factorised (counted in history as linear_fallbacks)
            if self._lu is None:
                self._lu = linear.make_ksp(self._S, self.prefix + "fallback_", linear.direct_solver_options())
            else:
                self._lu.setOperators(self._S)
            x.set(0.0)
            its = linear.solve(self._lu, rhs, x, "JKO Newton step (Schur complement, direct fallback)")
            self._fallbacks += 1
        x.array[:] *= sc.array
        if H is None:
            return self._ghost(x.array), its
        t = self._vecs["rhs"]
        self._B.multTranspose(x, t)
        drho = dinv * (t.array - H)
        return self._ghost(x.array), its, drho

    def _predictor(self, psi: np.ndarray) -> np.ndarray | None:
        """phi's first guess from one backward-Euler step of the Fokker-Planck equation with the entropy's
        diffusion, on the same edges (one CG + AMG solve). In the Slotboom variable u = rho / M,
        M = exp(-beta (V + W * rho_k - min V)), the Scharfetter-Gummel step is the SPD M-matrix system
            (diag(m M) / tau + beta^-1 L_H) u = m rho_k / tau,   (L_H)_ij = -w_ij H_ij,
        H_ij = exp(-beta min(V_i, V_j)) B(beta |V_i - V_j|) the harmonic mean of M on the edge, and
        phi = V + beta^-1 (log rho + 1) = min V + beta^-1 (log u + 1): no cancellation between V and
        beta^-1 log rho is lost in the tails (where rho underflows, u does not). rho_pred differs from the
        step by O(tau^2) in the bulk and its tails lie above the step's (the backward-Euler kernel decays
        exponentially), the side from which Newton's iteration does not overshoot. None without entropy."""
        if not self.eps:
            return None
        n, ei, ej, w, beta = self.n, self.ei, self.ej, self.w, 1.0 / self.eps
        pot = self._ghost(self.V_nodal[:n] + psi)
        vmin = self.comm.allreduce(float(np.min(pot[:n], initial=np.inf)), op=MPI.MIN)
        z = np.minimum(beta * (pot - vmin), 700.0)                 # M = exp(-z) >= e^-700
        H = np.exp(-np.minimum(z[ei], z[ej])) * bernoulli(np.abs(z[ei] - z[ej]))
        mo = self.ml[:n]
        wh = self.eps * w * H
        self._set_csr(self._P, mo * np.exp(-z[:n]) / self.tau + np.bincount(ei, wh, minlength=n), -wh)
        if self._pksp is None:
            opts = {**self._ksp_options, "ksp_rtol": 1e-8}
            self._pksp = linear.make_ksp(self._P, self.prefix + "pred_", opts)
        else:
            self._pksp.setOperators(self._P)
        rhs, x = self._vecs["rhs"], self._vecs["dphi"]
        rhs.array[:] = mo * self._rk[:n] / self.tau
        x.set(0.0)
        linear.solve(self._pksp, rhs, x, "JKO predictor (backward-Euler Fokker-Planck step)")
        # where rho_pred is negligible (< 1e-10 of its maximum) u is kept within its range over the rest:
        # there the backward-Euler tail can exceed the step's by many decades in a steep potential, and the
        # gradient of log u would make the Hamilton-Jacobi term of the first iterate overflow
        u = x.array
        r = u * np.exp(-z[:n])
        rmax = self.comm.allreduce(float(np.max(r, initial=0.0)), op=MPI.MAX)
        big = r >= 1e-10 * rmax
        ucap = self.comm.allreduce(float(np.max(u[big], initial=0.0)), op=MPI.MAX)
        umin = self.comm.allreduce(float(np.min(u[big], initial=np.inf)), op=MPI.MIN)
        u = np.clip(u, umin, ucap)              # and the Krylov round-off can leave u <= 0 far out
        g = vmin + self.eps * (np.log(u) + 1.0)
        if self.m is not None:
            r = u * np.exp(-z[:n])
            g += self.cm * self.m / (self.m - 1) * r ** (self.m - 1)
        g = self._ghost(g)
        # a first guess whose Hamilton-Jacobi term tau s/4 sum_j w (phi_i - phi_j)^2 / m_i is large where rho_pred
        # is small (a steep potential's tail, where grad phi_pred ~ grad V and the predictor's round-off is
        # amplified by log) makes rho(q) overflow into a spike that the mass constraint turns into garbage.
        # Then, outside the bulk (rho_pred >= 1e-3 of its maximum), phi is the L-Lipschitz extension of the
        # bulk's values, L = 2 (2 beta^-1 / tau)^(1/2), so the term stays below about 2 d / beta: the converged
        # step has phi << V and a moderate slope in such tails (measured)
        st = self._newton_state(g, psi)
        rmax = self.comm.allreduce(float(np.max(st["rho"][:n], initial=0.0)), op=MPI.MAX)
        pmax = self.comm.allreduce(float(np.max(r, initial=0.0)), op=MPI.MAX)
        if rmax > 10 * pmax:
            self._steep = True
            g = self._ghost(self._envelope(g, r >= 1e-3 * pmax, 2.0 * math.sqrt(2.0 * self.eps / self.tau)))
        return g

    def _envelope(self, phi: np.ndarray, source: np.ndarray, L: float) -> np.ndarray:
        """phi on the `source` nodes, elsewhere its L-Lipschitz (McShane) extension min_k phi_k + L d(i, k) over the
        graph (edge lengths |x_i - x_j|): Bellman-Ford sweeps until nothing changes on any rank."""
        n, big = self.n, np.inf
        val = np.where(source, phi[:n], big)
        for _ in range(10 * n + 10):
            v = self._ghost(val)
            cand = np.full(n, big)
            if len(self.ei):
                cand[self._rows_with_edges] = np.minimum.reduceat(v[self.ej] + L * self._elen, self._row_start)
            new = np.minimum(val, cand)
            changed = self.comm.allreduce(int(np.count_nonzero(new < val)))
            val = new
            if not changed:
                break
        return val

    def _newton(self, phi: np.ndarray, psi: np.ndarray, budget: int, tol: float | None = None):
        """Newton's method on the concave dual phi -> l(rho(phi), phi) with psi frozen, until the
        mass-balance defect is <= tol or `budget` iterations."""
        tol = self.tol if tol is None else tol
        st = self._newton_state(phi, psi)
        its = lin = 0
        while its < budget:
            if st["res"] <= tol:
                break
            its += 1
            if its > 8:
                self._steep = True
            d, k = self._direction(st)
            lin += k
            # a trust region per node: |dphi_i| <= 5 / beta, i.e. rho changes by at most about e^5 per
            # iteration. Far from the solution a node with little mass (a tail in a steep potential) can ask
            # for a huge step that the exponential rho(q) turns into a spike; near the solution the Newton
            # step is far inside the region and the iteration stays quadratic
            cap = 5.0 * self.eps
            clipped = np.clip(d, -cap, cap)
            slope = self.comm.allreduce(float(-st["G"] @ clipped[: self.n]))
            if slope > 0:
                d = clipped
            else:
                slope = self.comm.allreduce(float(-st["G"] @ d[: self.n]))   # grad l . d > 0
            alpha, accepted = 1.0, False
            for _ in range(30):
                trial = self._newton_state(st["phi"] + alpha * d, psi)
                ok = math.isfinite(trial["dual"]) and np.all(np.isfinite(trial["rho"]))
                slack = 1e-13 * (abs(st["dual"]) + 1.0)
                if ok and (trial["dual"] >= st["dual"] + 1e-4 * alpha * slope - slack
                           or trial["res"] < 0.5 * st["res"]):
                    accepted = True
                    break
                alpha *= 0.5
            if not accepted:
                break                                                       # stagnation: reported below
            st = trial
        return st, its, lin

    def _dual_solve(self, tau: float, phi, psi: np.ndarray, budget: int, tol: float, depth: int = 8):
        """Newton on the dual for the step tau from phi (None: the predictor's). If it has not converged
        after 20 iterations (a first guess far from the solution: a steep potential's tail that the step
        moves far), the step tau / 2 is solved first (recursively) and its phi starts tau: a homotopy in
        tau that the usual step never needs."""
        saved, self.tau = self.tau, tau
        try:
            if phi is None:
                phi = self._predictor(psi) if self.predictor else self._phi
            st, its, lin = self._newton(phi, psi, min(budget, 20) if depth else budget, tol)
            if st["res"] <= tol or depth == 0 or its >= budget:
                return st, its, lin
            half, i2, l2 = self._dual_solve(0.5 * tau, None, psi, budget - its, tol, depth - 1)
            self.tau = tau
            st, i3, l3 = self._newton(half["phi"], psi, max(budget - its - i2, 0), tol)
            return st, its + i2 + i3, lin + l2 + l3
        finally:
            self.tau = saved

    def _pd_state(self, rho: np.ndarray, phi: np.ndarray, psi: np.ndarray) -> dict:
        """Residuals of the barrier problem in (rho, phi) (no entropy): G (mass balance) and
        H = m (V + psi + e'(rho) - mu / rho - phi) - tau s/4 sum_j w (phi_i - phi_j)^2."""
        ei, ej, w, n, mu = self.ei, self.ej, self.w, self.n, self._mu
        mo, r = self.ml[:n], rho[:n]
        dphi = phi[ei] - phi[ej]
        rk = self._rk
        rbar = (1 - self.s) * rk + self.s * rho
        th = 0.5 * (rbar[ei] + rbar[ej])
        G = mo * (r - rk[:n]) + self.tau * np.bincount(ei, w * th * dphi, minlength=n)
        e1 = self.V_nodal[:n] + psi + self.cm * self.m / (self.m - 1) * r ** (self.m - 1) - mu / r
        e2 = self.cm * self.m * r ** (self.m - 2) + mu / (r * r)
        H = mo * (e1 - phi[:n]) - 0.25 * self.tau * self.s * np.bincount(ei, w * dphi * dphi, minlength=n)
        loc = np.array([float(np.sum((G * G + H * H) / mo)), float(np.abs(G).sum()), float(np.abs(r * H).sum()),
                        float(np.sum(w * th * dphi * dphi))])
        tot = self.comm.allreduce(loc, op=MPI.SUM)
        return dict(rho=rho, phi=phi, G=G, H=H, drho=1.0 / e2, dphi=dphi, th=th, merit=math.sqrt(tot[0]),
                    res=max(tot[1], tot[2] / self._qscale) / self.mass0, kin=tot[3])

    def _newton_pd(self, phi: np.ndarray, psi: np.ndarray, budget: int) -> tuple[dict, int, int]:
        """Primal-dual interior-point Newton in (rho, phi) with the barrier -mu sum m_i log rho_i, mu from
        1e-2 q* to tol q* by factors 0.2 (q* = k max(rho_k)^(m-1), the pressure scale), from rho_k floored
        at 1e-3 max(rho_k), fraction-to-the-boundary steps and backtracking on the residual norm: the
        porous medium without entropy, whose rho vanishes on a region. (The dual iteration used with an
        entropy cycles here between active sets at the free boundary, where rho(q) has a kink.) About
        35 iterations per step for m = 2 and 3, independent of h (measured in tests/test_jko_newton.py)."""
        n = self.n
        rk = self._rk
        top = self.comm.allreduce(float(np.max(rk[:n], initial=0.0)), op=MPI.MAX)
        self._qscale = self.cm * self.m / (self.m - 1) * top ** (self.m - 1)
        self._mu, mu_end = 1e-2 * self._qscale, self.tol * self._qscale
        rho = self._ghost(np.maximum(rk[:n], 1e-3 * top))
        st = self._pd_state(rho, phi, psi)
        its = lin = 0
        while its < budget:
            if st["res"] <= max(self.tol, self._mu / self._qscale):
                if self._mu <= mu_end:
                    break
                self._mu = max(0.2 * self._mu, mu_end)
                st = self._pd_state(st["rho"], st["phi"], psi)
                continue
            its += 1
            d, k, drho = self._direction(st)
            lin += k
            neg = drho < 0
            amax = self.comm.allreduce(float(np.min(-st["rho"][:n][neg] / drho[neg], initial=np.inf)), op=MPI.MIN)
            alpha, accepted = min(1.0, 0.995 * amax), False
            for _ in range(40):
                trial = self._pd_state(self._ghost(st["rho"][:n] + alpha * drho), st["phi"] + alpha * d, psi)
                if math.isfinite(trial["merit"]) and trial["merit"] <= (1 - 1e-4 * alpha) * st["merit"]:
                    accepted = True
                    break
                alpha *= 0.5
            if not accepted:
                break
            st = trial
        self._ent = self._mu
        return st, its, lin

    def _advance(self) -> dict:
        """One JKO step (Solver.step)."""
        phi = self._phi.copy()
        its = lin = 0
        psi = self._convolve(self._rk) if self.W is not None else np.zeros(self.n)
        self._ent = self.eps
        start = None                                  # the predictor's (or, without entropy, phi_k)
        r_int = math.inf if self.W is not None else 0.0
        while True:
            if self.eps:
                # with an interaction, the first passes need not be solved beyond the change of W * rho
                st, k, l = self._dual_solve(self.tau, start, psi, self.max_iter - its,
                                            max(self.tol, min(1e-3, 1e-2 * r_int)) if self.W is not None else self.tol)
            else:
                st, k, l = self._newton_pd(phi if start is None else start, psi, self.max_iter - its)
            start = st["phi"]
            its, lin, phi = its + k, lin + l, st["phi"]
            if self.W is None:
                break
            new = self._convolve(st["rho"])
            r_int = self.comm.allreduce(float(np.sum(self.ml[: self.n] * st["rho"][: self.n] * np.abs(new - psi)))) \
                / self.mass0
            psi = new
            if (r_int <= self.tol and st["res"] <= self.tol) or its >= self.max_iter:
                break
        pd = not self.eps
        converged = st["res"] <= self.tol and r_int <= self.tol and (not pd or self._mu <= self.tol * self._qscale)
        if pd:
            # the barrier iterate's mass is that of rho_k up to the tolerance: remove the rest
            st["rho"] = self._ghost(st["rho"][: self.n] * (self.mass0 / self.mass(st["rho"])))
        validation.raise_collectively(self.comm, None if np.all(np.isfinite(st["rho"][: self.n])) else
                                      f"JKO step {self.steps + 1}: Newton produced non-finite densities "
                                      f"(tau={self.tau}); reduce tau", FloatingPointError)
        F_old = self.history["energy"][-1]
        self._rk, self._phi = st["rho"], phi
        for u in (self.rho, self.rho_k):
            u.x.array[: self.n] = st["rho"][: self.n]
            u.x.scatter_forward()
        self.phi.x.array[: self.n] = phi[: self.n]
        self.phi.x.scatter_forward()
        F, Fi = self._energy_cache = self._energy(self.rho.x.array)
        self._step_info = {"w2": self.tau * math.sqrt(max(st["kin"] / 2, 0.0)), "linear_iterations": lin,
                           "residual": max(st["res"], r_int), "energy_decrease": F_old - F}
        return {"converged": bool(converged), "iterations": its, **self._step_info,
                "why": None if converged else f"mass-balance defect {st['res']:.3e}, interaction change {r_int:.3e} "
                                              f"(tol={self.tol:g}) after {its} Newton iterations"}

    def density(self) -> tuple[np.ndarray, np.ndarray]:
        """(x (N, d), rho (N,)) over all ranks, sorted lexicographically by x (for 1D plots, tests)."""
        parts = self.comm.allgather((self.X[: self.n, : self.d], self.rho.x.array[: self.n]))
        xs = np.concatenate([p[0] for p in parts])
        vals = np.concatenate([p[1] for p in parts])
        order = np.lexsort(np.round(xs, 10).T[::-1])         # rounded: the same order on any rank count
        return xs[order], vals[order]
