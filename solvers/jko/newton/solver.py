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
Transmissibilities are w_ij = -int D grad phi_i . grad phi_j (>= 0 on Delaunay meshes, D the constant metric,
I by default) and control volumes the circumcentric (Voronoi) dual volumes m_i = (1/2d) sum_j w_ij
|x_i - x_j|^2_{D^-1} (graph.control_volumes), the volumes the edge fluxes are consistent with. They are the lumped
masses int phi_i at the interior nodes of the structured meshes; on a Delaunay disk and a 'crossed' rectangle they
are not, and there the lumped masses made the step inconsistent: on the disk its L1 error to the exact Gaussian
step stalled (0.051, 0.030, 0.022 at h = 1/32, 1/64, 1/128; 0.046, 0.016, 0.0061 with these volumes), on the
crossed square it was 0.3 at every h. (A mesh with a negative weight keeps the lumped masses: graph.EdgeGraph.)
The step converges to the exact one as h -> 0 where the graph is isotropic, sum_j w_ij (x_j - x_i)(x_j - x_i)^T
= 2 m_i D at the interior nodes (Gladbach-Kopfer-Maas): structured and 'crossed' meshes, meshes.disk (up to O(h)).
On Delaunay meshes of jittered or random points it is not (graph.isotropy_defect, a warning above 0.05), and the
error stalls (0.020 .. 0.083). The transport cost from rho_k to rho is one Benamou-Brenier time step on the
graph,

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

Accuracy. By default (pseudo_steps='auto') the transport cost is not this one-step W_h but K pseudo-time steps
of the same action (fpjko.solvers.jko.newton.spacetime), K chosen per step by an estimate of the pseudo-time
error, extrapolated in K: the minimizing movement for the discrete W2 to pseudo_tol at any tau, its first iterate
the one-step solution below. pseudo_steps=1 is the one-step scheme alone (fast: 3-8x cheaper per step near
equilibrium, 20-200x for steps that move a bump by its width).
One pseudo-time step is not the exact W2: with the midpoint mobility (the trapezoidal rule for
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
neighbours), diagonally scaled, and solved by CG + BoomerAMG (HMIS coarsening; the -njko_ options
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
tau |D^2 W| (9-20 Newton iterations in total in the tests), accelerated by Anderson(1) (a secant step on
the last two passes: for a strong interaction, 1D, tau = 1, W = 2 |z|^2 / 2, where the plain passes
contract by 1/2, 'auto' takes 122 Newton iterations against 176, K = 32 210 against 338). The map's slope
lam along the last passes also scales 'auto''s estimate by 1 / (1 - lam): an error of the step is fed
back through W * rho (there lam = 1/2: the levels' estimate 8.1e-4 for an error of 1.1e-3 before).

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

import functools
import math
import numbers
from typing import NamedTuple

import dolfinx.fem
import numpy as np
import ufl
from mpi4py import MPI

from fpjko.solvers.core import validation
from fpjko.solvers.core import moments
from fpjko.solvers.core.compat import interpolate
from fpjko.solvers.core.protocol import DensitySolver
from fpjko.solvers.fokker_planck.coefficients import call_ufl
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, as_interaction, check_even
from fpjko.solvers.fokker_planck.interaction import fingerprint as interaction_fingerprint
from fpjko.solvers.jko.alg2 import _numpy_kernel
from fpjko.solvers.jko.newton.dual import DualNewton, StepData
from fpjko.solvers.jko.newton.energies import Energy
from fpjko.solvers.jko.newton.graph import EdgeGraph
from fpjko.solvers.jko.newton.interior import InteriorPoint
from fpjko.solvers.jko.newton.schur import SchurSystem

MOBILITY = {"midpoint": 0.5, "implicit": 1.0}
EXTRA_KEYS = ("interaction_energy", "w2", "linear_iterations", "residual", "min_rho", "energy_decrease", "pseudo_steps",
              "pseudo_error", "cut_nodes")
# the mass the K-step's cut may leave out with 'auto' (NewtonJKO._cut), as a fraction of pseudo_tol
CUT_MASS = 1e-2
# the step's history values before any step (set_initial, and a restored state)
NO_STEP_INFO = {"w2": 0.0, "linear_iterations": 0, "residual": 0.0, "energy_decrease": math.nan, "pseudo_steps": 0,
                "pseudo_error": math.nan, "cut_nodes": math.nan}


def _observed_order(a: int, b: int, c: int, ratio: float) -> float:
    """The order p with (b^-p - c^-p) / (a^-p - b^-p) = ratio (levels a < b < c whose differences fell by `ratio`;
    decreasing in p), by bisection on [0.5, 8] (clamped there)."""
    def f(p):
        return (b ** -p - c ** -p) / (a ** -p - b ** -p)
    lo, hi = 0.5, 8.0
    if ratio >= f(lo):
        return lo
    if ratio <= f(hi):
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > ratio else (lo, mid)
    return 0.5 * (lo + hi)


class _Extrapolation(NamedTuple):
    """One level of 'auto': its K and the level K' it was compared with, the extrapolated density, the levels'
    difference |rho_K - rho_K'|_1, the extrapolations' |ext_K - ext_K'|_1 (None where not comparable) and the
    lowest level that difference involves."""
    K: int
    ref_K: int
    ext: np.ndarray
    dn: float
    dext: float | None
    low: int | None


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
    tol : float, optional
        The Newton stopping test (above). Default: 1e-8 for a fixed K (the one-step scheme included); with 'auto'
        1e-2 pseudo_tol, at most 1e-5 (1e-5 by default: the levels' defects then two orders below the
        pseudo-time error they estimate; the benchmark's ten steps, 256^2: 38-41 s against 58 at 1e-6, the same
        K, estimates and L1 to 3 digits, the last level of a step then mostly one Newton iteration from its
        prediction); with 'auto' at most pseudo_tol / 10.
    max_iter : int
        The Newton iteration cap.
    petsc_options : dict, optional
        Options of the Schur-complement solve (under the prefix; the command line wins).
    negative_weights : {'clip', 'error'}
        What to do with negative transmissibilities of a non-Delaunay mesh (isotropic case).
    predictor : bool
        Start each step's Newton iteration from one backward-Euler Scharfetter-Gummel step (default; with an
        entropy) rather than from the previous step's potential.
    prefix : str, optional
        PETSc options prefix of its solves (default 'njko_'; the fallback LU and the predictor add 'fallback_'
        and 'pred_', the space-time solve 'st_').
    pseudo_steps : int or 'auto'
        K, the pseudo-time steps of the transport cost (fpjko.solvers.jko.newton.spacetime): 1 is one
        Benamou-Brenier step (fast; its cost is not W2 for a step that moves a bump by more than its width);
        K > 1 the K-step action, whose intermediate densities are the discrete geodesic; 'auto' (default: the
        minimizing movement to pseudo_tol, at any tau) takes K = 2, 3, 4, 6, 8, 12, ... (each from the previous
        two levels' slabs extrapolated in K, `SpaceTime.predict`) and returns the Richardson extrapolation in
        pseudo-time rho_K + (rho_K - rho_K') / q, q = (K / K')^2 - 1 (the 1/K^2 term cancelled; K' the previous K that
        converged, the one-step solution first), limited to [rho_K / 2, 2 rho_K] and scaled to the mass, once the
        estimate of its error is below pseudo_tol: |rho_K - rho_K'|_1 / q (the error of rho_K); where the last three
        levels' observed order p is at least 1.75 (and their differences' ratio not below 1/1.6 of the second-order
        one), where smaller, the larger of |ext_K - ext_K'|_1 r / (1 - r), r the observed ratio of successive
        differences of the extrapolations (at least the fourth-order (K'' / K)^2, 1/4 on this ladder; with only two
        extrapolations, or where the earlier difference involves the one-step solution, the levels' observed
        second-order rate), and the model's error |rho_K - rho_K'|_1 |1 / q_p - 1 / q| (q_p = (K / K')^p - 1); where p <
        1.75 (levels before the asymptotic range), rho_K's error at the observed order, |rho_K - rho_K'|_1 / q_p. A
        one-step solution that did not converge is not a level. Below the K-step barrier's end value (tol / 10 or
        min(tol, 1e-8), a density) the step's far tails are the one-step solution's (`_barrier_tails`), and with an
        entropy the K-step is solved only on the nodes its density is used on, its cut (`_cut`, checked after each level
        by `_cut_holds`, else the step is solved on the whole mesh): with 'auto' and no interaction the cut leaves out
        at most 1e-2 pseudo_tol of the mass (`CUT_MASS`; the rest is the one-step solution's), else nothing above the
        barrier's density (the whole mesh's step to the Newton tolerance); on the benchmark 26% of the nodes at 256^2
        (40% at the barrier's density). The step is judged converged on the last K's
        stopping test and, with 'auto', the estimate (with an interaction, divided by 1 - lam: see Interaction above).
    pseudo_tol : float
        The tolerance of 'auto' on the estimate of the step's pseudo-time error (L1 of the density).
    max_pseudo_steps : int
        The largest K of 'auto', a power of 2 (a step that reaches it without meeting pseudo_tol is not converged:
        it warns and says why).
    keep_geodesic : bool
        Keep the K + 1 densities rho^0 = rho_k ... rho^K of the last step's K-step problem (`geodesic()`).

    Notes
    -----
    History: the core keys (energy: E(rho), iterations: Newton iterations, the one-step solve's and every K's:
    max_iter caps the one-step solve and, three times over, each K) and interaction_energy, w2 (the
    step's transport distance), linear_iterations, residual, min_rho, energy_decrease, pseudo_steps (K) and
    pseudo_error (the estimate of 'auto', else nan) and cut_nodes (the nodes the K-step was solved on, all of
    them without an entropy; nan where pseudo_steps = 1).
    """

    default_mass_tol = 1e-6
    optional_functions = ("cut",)                     # (states written before the cut resume without it)
    label = "JKO steps (Newton)"
    default_prefix = "njko_"
    extra_keys = EXTRA_KEYS
    step_name = "tau"

    def __init__(self, mesh, tau: float, potential=None, beta: float | None = None, m: float | None = None,
                 cm: float = 1.0, interaction=None, D=None, mobility: str = "midpoint", tol: float | None = None,
                 max_iter: int = 60, petsc_options: dict | None = None, negative_weights: str = "clip",
                 predictor: bool = True, prefix: str | None = None, pseudo_steps="auto", pseudo_tol: float = 1e-3,
                 max_pseudo_steps: int = 16, keep_geodesic: bool = False):
        self._init_protocol(mesh.comm, prefix, locals())
        self.tau = validation.positive_number("tau", tau)
        self.eps = 1.0 / validation.positive_number("beta", beta) if beta is not None else 0.0
        if m is not None and not validation.number("m", m) > 1:
            raise ValueError(f"porous-medium exponent must be > 1, got m={m}")
        if self.eps == 0.0 and m is None:
            raise ValueError("E needs an entropy (beta) or a porous-medium term (m): a potential alone "
                             "concentrates to a point mass")
        self.m, self.cm = m, validation.positive_number("cm", cm)
        self.s = MOBILITY[validation.one_of("mobility", mobility, tuple(MOBILITY))]
        self.max_iter = validation.integer("max_iter", max_iter, 1)
        self.predictor = bool(predictor)
        if not (isinstance(pseudo_steps, str) and pseudo_steps == "auto"):
            if isinstance(pseudo_steps, bool) or not isinstance(pseudo_steps, numbers.Integral):
                raise TypeError(f"pseudo_steps must be 'auto' or an integer K >= 1, "
                                f"got pseudo_steps={pseudo_steps!r}")
            validation.integer("pseudo_steps", pseudo_steps, 1)
        self.pseudo_steps = pseudo_steps
        self.pseudo_tol = validation.positive_number("pseudo_tol", pseudo_tol)
        auto = pseudo_steps == "auto"
        if tol is None:
            tol = min(1e-2 * self.pseudo_tol, 1e-5) if auto else 1e-8
        self.tol = validation.positive_number("tol", tol)
        if auto and self.tol > 0.1 * self.pseudo_tol:
            # the levels' Newton defects would be the differences the estimate reads (measured: tol = 1e-3,
            # pseudo_tol = 1e-4 failed at every K with an estimate growing in K)
            raise ValueError(f"tol must be at most pseudo_tol / 10 with pseudo_steps='auto' (the levels' Newton "
                             f"defects must lie below the pseudo-time error they estimate), got tol={tol!r}, "
                             f"pseudo_tol={pseudo_tol!r}")
        self.max_pseudo_steps = validation.integer("max_pseudo_steps", max_pseudo_steps, 2)
        if self.max_pseudo_steps & (self.max_pseudo_steps - 1):
            raise ValueError(f"max_pseudo_steps must be a power of 2 ('auto' takes K = 2, 3, 4, 6, 8, ...), "
                             f"got max_pseudo_steps={max_pseudo_steps}")
        if not isinstance(keep_geodesic, (bool, np.bool_)):
            raise TypeError(f"keep_geodesic must be True or False, got keep_geodesic={keep_geodesic!r}")
        self.keep_geodesic = bool(keep_geodesic)
        self._spacetime, self._geodesic, self._active = {}, None, None
        self._cut_failed = -1                         # the step (self.steps) whose cut failed _cut_holds
        self._cut_level = math.nan                    # the last cut's density level (`_cut`)
        validation.one_of("negative_weights", negative_weights, ("clip", "error"))
        self.mesh = mesh
        self.d = mesh.geometry.dim
        if mesh.topology.dim != self.d:
            raise ValueError(f"JKO needs a mesh of full dimension, got a {mesh.topology.dim}D mesh in {self.d}D")
        self.V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        self.graph = EdgeGraph(self.V, D, negative_weights)
        self.n, self.X = self.graph.n, self.graph.X                    # X: (local, 3)
        self.ml, self.D = self.graph.ml, self.graph.D                  # local with ghosts
        self.rho = dolfinx.fem.Function(self.V, name="rho")
        self.phi = dolfinx.fem.Function(self.V, name="phi")
        self.rho_k = dolfinx.fem.Function(self.V, name="rho_k")
        # the K-step's cut (1 on its nodes; see _cut): part of the state, as it is kept from step to step
        self._active_fn = dolfinx.fem.Function(self.V, name="cut")
        # its boundary (`_cut_holds`) and size (history cut_nodes), set with it (`_set_cut`); no cut: every node
        self._cut_edge, self._cut_nodes = None, float(self.V.dofmap.index_map.size_global)
        pot = self._nodal(potential, "potential") if potential is not None else np.zeros(len(self.X))
        inter = as_interaction(interaction, self.d)
        check_even(inter, self.d, self.comm)
        W = _numpy_kernel(inter)
        self.volume = self.comm.allreduce(float(self.ml[: self.n].sum()))
        self.energy = Energy(self.graph, pot, self.eps, m, self.cm, inter if isinstance(inter, KernelInteraction) else W)
        self.W = W
        # with 'auto' the mass the cut may leave out (`_cut`: 1e-2 pseudo_tol; the step's error is pseudo_tol), else
        # none beyond the barrier's density (the K-step to the Newton tolerance). Not with an interaction: W * rho
        # weighs the tails left to the one-step solution by the distance (a 1D step at tau = 1, W = 2 |z|^2 / 2, mass
        # 5: 4.2e-2 pseudo_tol from the whole mesh's step at tol 1e-7, where the barrier's cut is 1.5e-4 from it)
        self._cut_mass = CUT_MASS * self.pseudo_tol if auto and W is None else 0.0
        # options under 'st_' are the space-time solve's (pseudo_steps > 1), the rest the one-step Schur solve's
        self.schur_options = {k[3:]: v for k, v in (petsc_options or {}).items() if k.startswith("st_")}
        self.schur = SchurSystem(self.graph, self.prefix, {k: v for k, v in (petsc_options or {}).items()
                                                           if not k.startswith("st_")})
        self.dual = DualNewton(self.graph, self.energy, self.schur, self.s, self.predictor) if self.eps else None
        self.interior = InteriorPoint(self.graph, self.energy, self.schur, self.s, self.tol) if not self.eps else None
        # the moments of V (weighted by the control volumes) against the test functions of fpjko.solvers.core.moments:
        # partition-independent
        self._potential_fp = moments.nodal(pot[: self.n], self.ml[: self.n], self.X[: self.n, : self.d], self.comm)
        self._fp = {"control_volumes": "circumcentric", "beta": beta, "m": m, "cm": self.cm, "mobility": mobility,
                    "tol": self.tol, "max_iter": self.max_iter, "predictor": self.predictor,
                    "negative_weights": negative_weights,
                    "D": None if D is None else np.asarray(D, float).tolist(), "pseudo_steps": pseudo_steps,
                    "pseudo_tol": self.pseudo_tol if pseudo_steps == "auto" else None,
                    "max_pseudo_steps": self.max_pseudo_steps if pseudo_steps == "auto" else None,
                    "interaction": interaction_fingerprint(inter, self.d)}

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

    # ------------------------------------------------------------------ energy
    def free_energy(self) -> float:
        """E_h(rho) of the current density (summed over ranks).

        Returns
        -------
        float
        """
        return self.energy(self.rho.x.array)[0]

    def mass(self, rho=None) -> float:
        """sum_i m_i rho_i over every rank's owned nodes.

        Parameters
        ----------
        rho : numpy.ndarray, shape (>= n,), optional
            Nodal values (default: the current density).

        Returns
        -------
        float
        """
        return self.graph.mass(self.rho.x.array if rho is None else rho)

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
        p1 = math.nan if normalize else self.comm.allreduce(float(self.graph.lumped[: self.n] @ vals[: self.n]))
        if not normalize and abs(mass - 1.0) > mass_tol >= abs(p1 - 1.0):
            raise ValueError(f"initial density: its P1 integral is {p1:.8g}, but its mass in the step's control "
                             f"volumes (the circumcentric cells, fpjko.solvers.jko.newton.graph.control_volumes; on "
                             f"an unstructured mesh they are not the lumped masses) is {mass:.8g}, "
                             f"{abs(mass - 1.0):.3g} from 1 > mass_tol={mass_tol:g}: pass normalize=True to rescale "
                             f"it to mass 1 in those volumes, which the steps conserve")
        if normalize:
            if not (math.isfinite(mass) and mass > 0):
                raise ValueError(f"cannot normalise the initial density: its mass is {mass!r}")
            vals = vals / mass
        validation.check_density(self.comm, vals[: self.n], self.X[: self.n], self.mass(vals), "initial density",
                                 mass_tol, neg_tol=0.0)
        self.rho_k.x.array[:] = vals
        self.rho.x.array[:] = vals
        self._rk = self.graph.ghost(vals[: self.n])
        self._use_cut(None)
        self._cut_failed = -1
        # the potential's first guess: phi = dE/drho(rho_0) (where rho_0 = 0: its limit, floored)
        g = self.energy.gradient(vals)
        self._phi = self.graph.ghost(g)
        self.phi.x.array[: self.n] = g
        self.phi.x.scatter_forward()
        self.mass0 = self.mass(vals)
        self._steep = False
        self._step_info = dict(NO_STEP_INFO)
        self._geodesic = None

    def _measure(self) -> dict:
        F, Fi = getattr(self, "_energy_cache", None) or self.energy(self.rho.x.array)
        self._energy_cache = None                       # E(rho) of this step, computed once
        return {"mass": self.mass(), "energy": F, "interaction_energy": Fi,
                "min_rho": self.graph.min(self.rho.x.array), **self._step_info}

    def _functions(self) -> dict:
        return {"rho": self.rho, "phi": self.phi, "cut": self._active_fn}

    def _state(self) -> dict:
        return {"scalars": {"mass0": self.mass0, "steep": bool(self._steep), "cut": self._active is not None}}

    def _restore(self, state: dict) -> None:
        self.mass0 = float(state["scalars"]["mass0"])
        self._steep = bool(state["scalars"]["steep"])
        self.rho_k.x.array[:] = self.rho.x.array
        self._rk = self.graph.ghost(self.rho.x.array[: self.n])
        self._phi = self.graph.ghost(self.phi.x.array[: self.n])
        # (a state written before the cut has none: optional_functions)
        cut = state["scalars"].get("cut") and "cut" in state["functions"]
        self._set_cut(self._active_fn.x.array[: self.n] > 0.5 if cut else None)
        self._step_info = dict(NO_STEP_INFO)

    def _fingerprint(self) -> dict:
        return {**self._fp, "num_dofs": self.V.dofmap.index_map.size_global, "potential_moments": self._potential_fp}

    def _release(self) -> None:
        for part in (*getattr(self, "_spacetime", {}).values(), getattr(self, "schur", None),
                     getattr(self, "graph", None)):
            if part is not None:
                part.destroy()

    # ------------------------------------------------------------------ the step
    def _advance(self) -> dict:
        """One JKO step (Solver.step): Newton on the dual (with an entropy) or the interior-point iteration
        (without), then the K-step (pseudo_steps != 1) from its solution, inside an outer fixed point on W * rho
        when there is an interaction (each pass solves the step with W * rho frozen, the K-step's levels from the
        last pass's slabs)."""
        n, g = self.n, self.graph
        multi = self.pseudo_steps != 1
        phi = self._phi.copy()
        its = lin = its1 = passes = 0
        psi = self.energy.psi(self._rk)
        start = None                                  # the predictor's (or, without entropy, phi_k)
        r_int = math.inf if self.W is not None else 0.0
        mu_done, warm = True, {}
        # the fixed point on W * rho: Anderson(1) (a secant step on the last two passes), and the map's contraction
        # lam along it, by which an error of the step is fed back (the estimate is divided by 1 - lam)
        last, amp = None, 1.0
        while True:
            passes += 1
            data = StepData(self.tau, self._rk, psi, self.mass0, self._phi, self._steep)
            if self.eps:
                # with an interaction, the first passes need not be solved beyond the change of W * rho
                tol = max(self.tol, min(1e-3, 1e-2 * r_int)) if self.W is not None else self.tol
                st, k, l, self._steep = self.dual.solve(data, start, max(self.max_iter - its1, 1), tol)
            else:
                st, k, l, mu_done = self.interior.solve(data, phi if start is None else start,
                                                        max(self.max_iter - its1, 1))
            start = st["phi"]
            its, its1, lin, phi = its + k, its1 + k, lin + l, st["phi"]
            if multi:
                # the one-step solution is the K-step's first iterate (its K = 1 level)
                stK, K, est, w2, k2, l2, convK = self._pseudo_time(data, st, warm, amp)
                its, lin = its + k2, lin + l2
            rho_new = stK["rho"] if multi else st["rho"]
            if self.W is None:
                break
            new = self.energy.convolve(rho_new)
            wt = self.ml[:n] * rho_new[:n]
            r_int = self.comm.allreduce(float(np.sum(wt * np.abs(new - psi)))) / self.mass0
            f, nxt = new - psi, new
            if last is not None:
                # (psi, f = G(psi) - psi) of this pass and the last: x = G(psi) - g (G(psi) - G(psi_last)), g the
                # least-squares secant coefficient; lam = 1 + <df, dpsi> / <dpsi, dpsi> (G's slope along dpsi)
                dp, df = psi - last[0], f - last[1]
                dots = self.comm.allreduce(np.array([np.sum(wt * f * df), np.sum(wt * df * df),
                                                     np.sum(wt * df * dp), np.sum(wt * dp * dp)]))
                if dots[1] > 0 and dots[3] > 0:
                    nxt = new - (dots[0] / dots[1]) * (new - last[2])
                    lam = 1.0 + dots[2] / dots[3]
                    amp = 1.0 / (1.0 - min(max(float(lam), 0.0), 0.9))
            last, psi = (psi, f, new), nxt
            done = r_int <= self.tol and (multi or st["res"] <= self.tol)
            if multi and self.pseudo_steps == "auto":
                # the step's estimate with the latest feedback (another pass if that raised it past pseudo_tol)
                done = done and (est * amp <= self.pseudo_tol or K == self.max_pseudo_steps or not convK)
            if done or its1 >= self.max_iter or passes >= self.max_iter:
                break
        why = []
        if multi:
            # judged on the K-step's test (at large tau the one-step dual iteration may stall where the K-step
            # converges) and, with 'auto', its estimate
            est_ok = self.pseudo_steps != "auto" or est <= self.pseudo_tol
            if not convK:
                why.append(f"K-step mass-balance defect {stK['res']:.3e} (tol={self.tol:g}) at K = {K}: reduce tau")
            if not est_ok and convK:
                why.append(f"pseudo-time error estimate {est:.3e} above pseudo_tol={self.pseudo_tol:g} at "
                           f"K = {K} (max_pseudo_steps={self.max_pseudo_steps}): raise max_pseudo_steps or "
                           f"pseudo_tol, or reduce tau")
            st, converged = stK, convK and est_ok and r_int <= self.tol
        else:
            converged = st["res"] <= self.tol and r_int <= self.tol and mu_done
            K, est, w2 = 1, math.nan, self.tau * math.sqrt(max(st["kin"] / 2, 0.0))
            if st["res"] > self.tol or not mu_done:
                why.append(f"mass-balance defect {st['res']:.3e} (tol={self.tol:g})")
            if self.keep_geodesic:
                self._geodesic = [self._rk[:n].copy(), st["rho"][:n].copy()]
        if r_int > self.tol:
            why.append(f"interaction change {r_int:.3e} (tol={self.tol:g}) after {passes} passes")
        if not self.eps:
            # the barrier iterate's mass is that of rho_k up to the tolerance: remove the rest
            st["rho"] = g.ghost(st["rho"][:n] * (self.mass0 / self.mass(st["rho"])))
        validation.raise_collectively(self.comm, None if np.all(np.isfinite(st["rho"][:n])) else
                                      f"JKO step {self.steps + 1}: Newton produced non-finite densities "
                                      f"(tau={self.tau}); reduce tau", FloatingPointError)
        F_old = self.history["energy"][-1]
        cut = self._cut_nodes if multi else math.nan
        self._rk, self._phi = st["rho"], phi
        for u in (self.rho, self.rho_k):
            u.x.array[:n] = st["rho"][:n]
            u.x.scatter_forward()
        self.phi.x.array[:n] = phi[:n]
        self.phi.x.scatter_forward()
        F, Fi = self._energy_cache = self.energy(self.rho.x.array)
        self._step_info = {"w2": w2, "linear_iterations": lin, "residual": max(st["res"], r_int),
                           "energy_decrease": F_old - F, "pseudo_steps": K, "pseudo_error": est,
                           "cut_nodes": cut}
        return {"converged": bool(converged), "iterations": its, **self._step_info,
                "why": None if converged else "; ".join(why or ["not converged"]) + f" after {its} Newton iterations"}

    def _pseudo_time(self, data, one: dict, warm: dict, amp: float = 1.0):
        """The K-step transport cost from the one-step solution `one` (fixed K, or 'auto': K = 2, 3, 4, 6, ... from
        the previous K's state until the estimate (see pseudo_steps) <= pseudo_tol or K = max_pseudo_steps; see the
        loop for a K that does not converge).
        `warm` maps K to the state of the last pass with another W * rho (an interaction's fixed point): each K
        starts from it where it is there, and it is updated; `amp` >= 1 multiplies the estimate (the fixed point's
        feedback of an error of the step, 1 / (1 - lam)).
        Returns (state, K, estimate, W_K, Newton iterations, linear iterations, converged: the last K's stopping
        test held).
        With an entropy the K-step is solved on the nodes where its density is used (`_cut`), its slabs' mass on
        the cut's boundary checked after each level (`_cut_holds`); where that fails, the step is solved again on
        the whole mesh, and so are the other passes of this step (an interaction's fixed point)."""
        its = lin = 0
        for attempt in range(2):
            if self.eps:
                before = self._active
                if self._use_cut(None if attempt or self._cut_failed == self.steps else self._cut(data, one["rho"])):
                    self._warm_onto_cut(warm, before, data, one)
            st, out, K, est, w2, k, l, conv, held = self._ladder(data, one, warm, amp)
            its, lin = its + k, lin + l
            if held:
                break
            self._cut_failed = self.steps
            warm.clear()
        return out, K, est, w2, its, lin, conv

    def _warm_onto_cut(self, warm: dict, before: np.ndarray | None, data, one: dict) -> None:
        """The last pass's slabs (`warm`, an interaction's fixed point) on a new cut: on the nodes it adds (off the
        cut `before`, they held rho_k) the one-step start of `SpaceTime.guess`, rho_k^(1 - t) one^t and one's phi
        (1D, tau = 1, W = 2 |z|^2 / 2, the cut changed twice: 97 Newton iterations against 123 from rho_k there; at a
        cut's level of 3e-5 every level's restart failed in one pass, 265)."""
        if before is None or not warm:
            return
        n, g = self.n, self.graph
        add = ~before if self._active is None else self._active & ~before
        la, lb = np.log(np.maximum(data.rk[:n][add], 1e-300)), np.log(np.maximum(one["rho"][:n][add], 1e-300))
        for K, st in warm.items():
            rho, phi = [], []
            for l, (r, p) in enumerate(zip(st["rho"], st["phi"])):
                r, p, t = r[:n].copy(), p[:n].copy(), (l + 1) / K
                r[add], p[add] = np.exp((1 - t) * la + t * lb), one["phi"][:n][add]
                rho.append(g.ghost(r))
                phi.append(g.ghost(p))
            warm[K] = {**st, "rho": rho, "phi": phi}

    def _ladder(self, data, one: dict, warm: dict, amp: float = 1.0):
        """The K-step ladder of `_pseudo_time` on the current cut; returns (the last K's state, then as
        `_pseudo_time`, then whether the cut held: False where a level's slabs failed `_cut_holds`, the ladder
        then stopped there)."""
        from fpjko.solvers.jko.newton.spacetime import SpaceTime

        n = self.n
        auto = self.pseudo_steps == "auto"
        # each K starts from the previous one's slabs (resampled in pseudo-time); a fixed K that is a power of 2
        # goes through 2, 4, ... the same way (a cold start at large K needs many more interior-point iterations)
        top = self.max_pseudo_steps if auto else self.pseudo_steps
        Ks = [2 ** j for j in range(1, int(math.log2(top)) + 1)]
        if auto:
            # 2, 3, 4, 6, 8, 12, ...: three levels in a factor 2 of K (where the bump moves a width or more in
            # one step, K = 1 is not in the asymptotic range, and with doubling alone the first three comparable
            # levels were 2, 4, 8: the K = 8 solve cost 4x the K = 4 one, 128^2)
            Ks = sorted(set(Ks) | {3 * k // 2 for k in Ks if 3 * k // 2 < top and k >= 2})
        elif not Ks or Ks[-1] != top:
            Ks = [top]
        # the estimate compares rho_K with the last converged K' (the one-step solution at first): second order in
        # 1/K, |rho_K - rho_K'|_1 / ((K / K')^2 - 1). A level that does not converge (at large tau the bumps of
        # neighbouring slabs of a small K hardly overlap, and its barrier problem is very stiff) is not compared;
        # its slabs still start the next K, and the step is judged on the last K
        # (a one-step solve that did not converge is no level: at large tau its density can be garbage)
        ref_rho, ref_K = (one["rho"], 1) if one["res"] <= self.tol else (None, None)
        # the last level's state and solver (the one-step solution's state first, where it converged), whether
        # it converged, and the converged level before it
        prev_conv = one["res"] <= self.tol
        prev_st, prev_solver, coarse, est = {"rho": [one["rho"]], "phi": [one["phi"]]}, None, None, math.nan
        ext_prev = None                               # the last level's _Extrapolation
        its = lin = 0
        conv = True                                   # (the one-step solution: the first K's start)
        result = None
        for K in Ks:
            if K not in self._spacetime:
                self._spacetime[K] = SpaceTime(self.graph, self.energy, K, self.s, self.prefix, self.schur_options,
                                               active=self._active)
            S = self._spacetime[K]
            budget = 3 * self.max_iter
            if K in warm:
                guess = functools.partial(lambda w: (list(w["rho"]), list(w["phi"])), warm[K])
            elif prev_solver is None:
                guess = functools.partial(S.guess, data, one["rho"], one["phi"])
            elif coarse is not None:
                guess = functools.partial(S.predict, data, prev_st, coarse)
            else:
                guess = functools.partial(prev_solver.resample, prev_st, data, K)
            # the first iterate (the one-step solution, or the previous levels' slabs) is close: the barrier starts
            # at its end value (measured at 48^2: 22 Newton iterations for K = 2, 4, 8 against 57 from mu = 1e-2 q*);
            # where that fails (10 iterations: a start that converges takes 4-6), or the previous K did not
            # converge (its slabs are then far from this K's), the path from 1e-2 q*
            k = l = 0
            if conv:
                st, k, l, conv = S.iterate(data, *guess(), min(budget, 10), self.tol, mu0=0.0)
                if not conv and st["res"] <= 1e-4:
                    # nearly there, slowly (densities far below the barrier's equilibrium double per Newton
                    # iteration: 1 / rho is far from linear there): go on rather than start the path again
                    st, k2, l2, conv = S.iterate(data, st["rho"], st["phi"], budget - k, self.tol, mu0=0.0)
                    k, l = k + k2, l + l2
            if not conv:
                st, k2, l2, conv = S.iterate(data, *guess(), budget, self.tol, mu0=1e-2)
                k, l = k + k2, l + l2
            its, lin = its + k, lin + l
            if self._active is not None and not self._cut_holds(st):
                return st, None, K, math.nan, math.nan, its, lin, conv, False
            # (the last two converged levels predict the next one's slabs, `SpaceTime.predict`; the one-step
            # solution is the first level's coarse one: the benchmark's K = 3 levels took one iteration fewer)
            coarse = prev_st if conv and prev_conv else None
            prev_st, prev_solver, prev_conv, warm[K] = st, S, conv, st
            result = st["rho"][-1]
            if not conv or ref_rho is None:
                est = math.nan
                if conv:
                    ref_rho, ref_K = st["rho"][-1], K
                continue
            diff = st["rho"][-1][:n] - ref_rho[:n]
            dn = self.comm.allreduce(float(self.ml[:n] @ np.abs(diff)))
            q = (K / ref_K) ** 2 - 1
            est = dn / q
            if auto:
                # Richardson in pseudo-time: rho_K + (rho_K - rho_K') / q cancels the 1/K^2 term. Its error is
                # estimated from the last two extrapolations where the last three levels are in the asymptotic
                # range (below), as the tail of a geometric series |ext_K - ext_K'| r / (1 - r): where the bump
                # moves many widths in one step the extrapolations converge more slowly than at fourth order, and
                # the fourth-order ratio alone would be optimistic (measured 2.4x, a 1D step moving 15 widths)
                ext = self._extrapolate(st["rho"][-1], diff / q)
                dext = None
                p = ext_prev
                if p is not None and p.K == ref_K:
                    expect = (ref_K ** -2 - K ** -2) / (p.ref_K ** -2 - ref_K ** -2)
                    # the levels in the asymptotic range: their observed order at least 1.75, and their ratio not
                    # below the second-order one / 1.6 (far below it, the coarser level is not in the asymptotic
                    # range: a bump moving 11 widths, K = 1, 2, 4: 0.11)
                    order = _observed_order(p.ref_K, ref_K, K, dn / p.dn) if p.dn > 0 else math.nan
                    if 1.75 <= order and expect / 1.6 <= dn / p.dn:
                        dext = self.comm.allreduce(float(self.ml[:n] @ np.abs(ext[:n] - p.ext[:n])))
                        # r: the observed ratio of the extrapolations' differences; with none yet, the levels'
                        # observed rate (their errors' ratio at second order, (K' / K)^2, scaled by the observed
                        # over the expected ratio of their differences: about 1/4 per doubling, a third of the
                        # difference where the fourth order would say a fifteenth; a bump moving 9 widths in one
                        # step, K = 8: error 0.41 of the difference); at least the fourth-order ratio of the
                        # extrapolations' errors (c / (K''^2 K'^2) against c / (K'^2 K^2): (K'' / K)^2)
                        r2 = (dn / p.dn) / expect * (ref_K / K) ** 2
                        # (an earlier difference that involves the one-step solution, the least asymptotic level,
                        # is no measure of the ratio: the benchmark's first step, 128^2: 0.10 where the
                        # extrapolations' errors fell by 0.33; two bumps, h = 1/24: K = 4 said 8.0e-4 for an error
                        # of 1.6e-3; a third-order remainder's ratio instead was still 0.8-0.9x in 1D)
                        if p.dext and p.low >= 2:
                            r = max((p.ref_K / K) ** 2, dext / p.dext)
                        else:
                            r = r2
                        tail = dext * r / (1 - r) if r < 1 else math.inf
                        # and at least the model's error: the correction with the levels' observed order
                        # against the second-order one (pre-asymptotic levels: a bump moving 13 widths on the
                        # square, K = 3, 4, 6 at order 1.5: the tail said 8.8e-5 for an error of 4.4e-4)
                        model = dn * abs(1 / ((K / ref_K) ** order - 1) - 1 / q)
                        est = min(est, max(tail, model))
                    elif order < 1.75:
                        # below second order (pre-asymptotic levels): the error of rho_K at the observed order (at
                        # least 1/2), an upper bound of the extrapolation's
                        est = dn / ((K / ref_K) ** order - 1)
                ext_prev = _Extrapolation(K, ref_K, ext, dn, dext, p.ref_K if dext is not None else None)
                result = ext
            ref_rho, ref_K = st["rho"][-1], K
            if auto and est * amp <= self.pseudo_tol:
                break
        if self.keep_geodesic:
            self._geodesic = [data.rk[:n].copy()] + [r[:n].copy() for r in st["rho"]]
        if self.eps:
            result = self._barrier_tails(result, one["rho"])
        out = {"rho": result, "phi": st["phi"][-1], "res": st["res"], "kin": 0.0}
        return st, out, K, (est * amp if auto else math.nan), S.w2(st, self.tau), its, lin, conv, True

    def _cut(self, data, one: np.ndarray) -> np.ndarray | None:
        """The nodes the K-step is solved on: within 2 rings of the nodes where rho_k, the one-step solution or
        their normalised geometric interpolation rho_k^(1 - t) one^t (t = 1/16 ... 15/16: where the geodesic
        passes between two bumps) is at least the cut's level b, connected among them to rho_k's nodes above b (a
        spike of the one-step solution's far tails, converged only in the mass-weighted defect, is no island: 1D,
        h = 0.01, one at 13 b two cells from rho_k's 1e-13 took the K = 2 level from 4 to 32 Newton iterations).
        b is the barrier's density barrier_density(tol), below which the K-step's result is not used (see
        `_barrier_tails`), and with 'auto' and no interaction (whose W * rho weighs the tails by the distance: see
        __init__) the largest density below which the largest of those densities holds at most 1e-2 pseudo_tol of the
        mass (`_cut_log_level`): the step is only asked to pseudo_tol, and off the cut it is the one-step solution
        (the benchmark's first step at 256^2: b = 1e-3 of a peak of 100, the cut 26% of the nodes instead of 40%, the
        ten steps 1.2-1.5x faster, L1 to the exact iterates equal to 3 digits; at h = 1/48 within 7e-7 of the whole
        mesh's step). A new cut takes 4 rings more; the last one is kept while it holds the nodes needed and is at
        most 1.5 times a new one (its pattern and the direct solver's ordering are then reused). None (the whole mesh)
        where rho_k is nowhere above b or the cut would hold every node.

        Parameters
        ----------
        data : StepData
        one : numpy.ndarray, shape (n + n_extra,)
            The one-step solution.

        Returns
        -------
        numpy.ndarray of bool, shape (n,), or None
        """
        from fpjko.solvers.jko.newton.spacetime import barrier_density

        n = self.n
        a, b = np.log(np.maximum(data.rk[:n], 1e-300)), np.log(np.maximum(one[:n], 1e-300))
        lg = [(1 - t) * a + t * b for t in np.arange(1, 16) / 16]
        top = np.array([np.max(x, initial=-np.inf) for x in lg])
        self.comm.Allreduce(MPI.IN_PLACE, top, op=MPI.MAX)
        mass = self.comm.allreduce(np.array([float(self.ml[:n] @ np.exp(x - m)) for x, m in zip(lg, top)]))
        # the largest of the densities at each node (in log)
        u = np.maximum(a, b)
        for x, m, M in zip(lg, top, mass):
            u = np.maximum(u, x - m + math.log(self.mass0 / M))
        lb = self._cut_log_level(u, math.log(barrier_density(self.tol)))
        self._cut_level = math.exp(lb)
        need = u >= lb
        seed = a >= lb
        if not self.comm.allreduce(int(np.count_nonzero(seed))):
            return None
        need = self.graph.dilate(self.graph.connected(need, seed), 2)
        fresh = self.graph.dilate(need, 4)
        cur = self._active
        counts = self.comm.allreduce(np.array([np.count_nonzero(~fresh), 0 if cur is None else
                                               np.count_nonzero(need & ~cur), fresh.sum(),
                                               0 if cur is None else cur.sum()]))
        if cur is not None and counts[1] == 0 and counts[3] <= 1.5 * counts[2]:
            return cur
        return None if counts[0] == 0 else fresh

    def _cut_log_level(self, u: np.ndarray, lb: float) -> float:
        """The log of the cut's density level: the largest L in [lb, max u] (lb the barrier's density, in log) on a
        grid of eighths of a decade with the mass of exp(u) below exp(L) at most self._cut_mass (1e-2 pseudo_tol
        with 'auto' and no interaction; else lb itself), by bisection over the grid (collective; u: the log of the
        largest density at each owned node). On a grid: a level at some node's density would put that node on the
        side the one-step solve's round-off says, one rank against two."""
        if self._cut_mass <= 0:
            return lb
        w = self.ml[: self.n] * np.exp(u)

        def fits(k):                                  # the mass below grid level k within the allowance
            return self.comm.allreduce(float(w[u < k * step].sum())) <= self._cut_mass
        step = math.log(10.0) / 8
        top = self.comm.allreduce(float(np.max(u, initial=-np.inf)), op=MPI.MAX)
        if not math.isfinite(top):
            return lb
        lo, hi = math.ceil(lb / step), math.floor(top / step)     # the grid's levels in [lb, max u]
        if hi < lo or not fits(lo):
            return lb
        if fits(hi):
            return hi * step
        while hi - lo > 1:                            # fits(lo), not fits(hi)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo * step

    def _use_cut(self, act: np.ndarray | None) -> bool:
        """Make `act` the cut (None: the whole mesh) where it is not already (collective); whether it changed."""
        cur = self._active
        same = (act is None) == (cur is None) and (act is None or not self.comm.allreduce(
            int(np.count_nonzero(act != cur))))
        if not same:
            self._set_cut(act)
        return not same

    def _set_cut(self, act: np.ndarray | None) -> None:
        """The cut `act` (None: the whole mesh), in the state's function too; the K-step solvers, whose patterns
        are the last cut's, are destroyed."""
        for S in self._spacetime.values():
            S.destroy()
        self._spacetime.clear()
        self._active = act
        self._active_fn.x.array[: self.n] = 0.0 if act is None else act
        self._active_fn.x.scatter_forward()
        self._cut_edge = None if act is None else act & self.graph.touches(~act)
        self._cut_nodes = float(self.comm.allreduce(int(self.n if act is None else np.count_nonzero(act))))

    def _cut_holds(self, st: dict) -> bool:
        """Whether each slab's mass on the cut's boundary nodes (those with a neighbour off the cut) is at most tol /
        10 of the step's, or the mass the cut may leave out (1e-2 pseudo_tol, see `_cut`; the benchmark's boundaries
        held 1e-7 - 2e-6 at pseudo_tol 1e-3, above tol / 10 in three of ten steps at 128^2): where the geodesic would
        pass off the cut, its mass piles up there (a level whose Newton iteration did not converge included: a forced
        cut too small ended so, its density 1.68 of the mass away in L1, probe of issue 36)."""
        n, edge = self.n, self._cut_edge
        m = self.comm.allreduce(np.array([float(self.ml[:n][edge] @ r[:n][edge]) for r in st["rho"]]))
        return bool(m.max(initial=0.0) <= max(0.1 * self.tol * self.mass0, self._cut_mass))

    def _barrier_tails(self, rho: np.ndarray, one: np.ndarray) -> np.ndarray:
        """The K-step's density where it is above b = barrier_density(tol) (the interior-point barrier's end value
        mu / q*, a density), the one-step solution's (at most b) below b / 100, their geometric blend between, and
        off the cut the one-step solution's (at most the cut's level, `_cut`), scaled to the step's mass.

        Below about the barrier's density the K-step's tails are the barrier's, not the step's: against the
        one-step solution (the benchmark, 128^2, K = 2, the barrier's density 1e-6, max rho 100) their log10 ratio
        has a median of 0.03-0.7 down to 1e-8 of the maximum and 0.3-3 below 1e-10 (up to 9 decades). Such tails as
        the next step's rho_k left its dual Newton iteration crawling at a rate of 1/e (the exponential rho(q) far
        from its target): 8-15 iterations instead of 3-4 at some steps of 96^2-144^2, 'auto' or fixed K; with the
        one-step solution's tails, whose mass is below 1e-8 of the total, 2-5 at every step, and L1 to the exact
        iterates equal to 3 digits.

        Parameters
        ----------
        rho, one : numpy.ndarray, shape (n + n_extra,)
            The K-step's density (or its extrapolation) and the one-step solution, in the edge layout.

        Returns
        -------
        numpy.ndarray, shape (n + n_extra,)
        """
        from fpjko.solvers.jko.newton.spacetime import barrier_density

        n, g = self.n, self.graph
        hi = barrier_density(self.tol)
        r = rho[:n]
        lr = np.log(np.maximum(r, 1e-300))
        # (the one-step values at most b: where that solve did not converge they can be garbage, never mass)
        lr1 = np.log(np.clip(one[:n], 1e-300, hi))
        w = np.clip((lr - math.log(1e-2 * hi)) / math.log(100.0), 0.0, 1.0)
        if self._active is not None:
            off = ~self._active                       # off the cut: not solved (rho_k there), the one-step solution
            w[off] = 0.0                              # (at most the cut's level)
            lr1[off] = np.log(np.clip(one[:n][off], 1e-300, max(hi, self._cut_level)))
        out = np.where(w >= 1.0, r, np.exp(w * lr + (1 - w) * lr1))
        return g.ghost(out * (self.mass0 / self.mass(out)))

    def _extrapolate(self, rho: np.ndarray, corr: np.ndarray) -> np.ndarray:
        """rho + corr limited to [rho / 2, 2 rho] (a correction that large is outside the asymptotic range: in the
        far tails of a moving bump) and scaled to the step's mass."""
        n, g = self.n, self.graph
        r = np.clip(rho[:n] + corr, 0.5 * rho[:n], 2.0 * rho[:n])
        return g.ghost(r * (self.mass0 / self.mass(r)))

    def geodesic(self) -> list:
        """The K + 1 densities of the last step, rho^0 = rho_k ... rho^K (keep_geodesic=True): the discrete W2
        geodesic (displacement interpolation) of the K-step problem, rho^l at pseudo-time l / K. rho^K is
        rho_(k+1) for a fixed K (but in the far tails below the barrier's density, whose mass is below 1e-8:
        `_barrier_tails`); with 'auto' rho_(k+1) is the extrapolation, which differs from rho^K by about the
        pseudo-time error of rho^K (the history's pseudo_error bounds the extrapolation's). Off the step's cut
        (history cut_nodes; with an entropy, where every density of the step is below the cut's level: the
        barrier's density, with 'auto' and no interaction higher, see `_cut`) every rho^l is rho_k.

        Returns
        -------
        list of dolfinx.fem.Function
        """
        if self._geodesic is None:
            raise RuntimeError("no geodesic kept: build the solver with keep_geodesic=True and take a step")
        out = []
        for l, vals in enumerate(self._geodesic):
            u = dolfinx.fem.Function(self.V, name=f"rho_{l}")
            u.x.array[: self.n] = vals
            u.x.scatter_forward()
            out.append(u)
        return out

    def density(self, values=None) -> tuple[np.ndarray, np.ndarray]:
        """All ranks' nodes and densities, sorted lexicographically by x (for plots, tests).

        Parameters
        ----------
        values : dolfinx.fem.Function, optional
            Another function on the solver's space (e.g. one of `geodesic()`) instead of rho.

        Returns
        -------
        x : numpy.ndarray, shape (N, d)
        rho : numpy.ndarray, shape (N,)
        """
        u = self.rho if values is None else values
        parts = self.comm.allgather((self.X[: self.n, : self.d], u.x.array[: self.n]))
        xs = np.concatenate([p[0] for p in parts])
        vals = np.concatenate([p[1] for p in parts])
        order = np.lexsort(np.round(xs, 10).T[::-1])         # rounded: the same order on any rank count
        return xs[order], vals[order]
