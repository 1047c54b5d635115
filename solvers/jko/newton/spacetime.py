"""The JKO step with K pseudo-time steps: the Benamou-Brenier action on the edge graph with K - 1 intermediate
densities, solved by a primal-dual interior-point Newton method on its space-time optimality system.

The one-step transport cost of NewtonJKO (fpjko.solvers.jko.newton.solver) is one pseudo-time step of the
Benamou-Brenier problem: its mobility interpolates rho_k and rho linearly, so for a step that moves a bump by more
than its width the cost is not W2 (the step-1 error does not fall with h). With K pseudo-time steps of length
1/K the cost is

    W_K^2(rho^0, rho^K) = min K sum_{l=1..K} sum_edges G^l_ij^2 / (w_ij theta^l_ij)
        s.t.  m_i (rho^l_i - rho^(l-1)_i) + sum_j G^l_ij = 0,   theta^l_ij = (rbar^l_i + rbar^l_j) / 2,
              rbar^l = (1 - s) rho^(l-1) + s rho^l,

the sum of K one-step costs of step tau' = tau / K (K = 1 is NewtonJKO's step), and the step is
rho^K = argmin W_K^2 / (2 tau) + E_h(rho^K). W_K -> W_h (the exact discrete W2 on the graph) as K grows, at
second order in 1/K with the midpoint mobility s = 1/2 (measured in tests/test_jko_spacetime.py), and the K + 1
densities rho^0 ... rho^K are the discrete W2 geodesic (displacement interpolation) from rho_k to rho_(k+1).

Optimality (phi^l the multipliers of the K mass balances), with a barrier -mu sum m_i log rho^l_i on the
intermediate densities (whose Lagrangian is linear in them):

    G^l = m (rho^l - rho^(l-1)) + tau' L(theta^l) phi^l = 0                                          l = 1..K
    H^l = m (phi^(l+1) - phi^l - mu / rho^l) - tau'/4 [s |grad phi^l|^2 + (1 - s) |grad phi^(l+1)|^2] = 0   l < K
    H^K = m (V + W * rho + e'(rho^K) - phi^K) - tau' s/4 |grad phi^K|^2 = 0

(|grad phi|^2_i = sum_j w_ij (phi_i - phi_j)^2: the discrete Hamilton-Jacobi equation in pseudo-time). Its
Jacobian is [[D, -B^T], [B, T]] in (rho, phi) with D diagonal (mu / rho^2, e''), B block lower bidiagonal in time
(dG^l / d rho^l, dG^l / d rho^(l-1)) and T = tau' blockdiag(L(theta^l)); the Newton direction comes from the Schur
complement S = B D^-1 B^T + T, symmetric positive definite and block tridiagonal in time, diagonally scaled and
factorised by a direct solver (Cholesky: CHOLMOD on one rank, MUMPS on several; S keeps its pattern, so the
ordering is computed once per K; Krylov + AMG or block Jacobi on S, and the previous iteration's factor as CG's
preconditioner, did not converge reliably at the small barriers), then d rho = D^-1 (B^T d phi - H). mu falls by
factors of 5 to tol q* (q* the entropy's scale). A density's step is Newton's where it keeps at least half of the
density and exponential beyond (`_positive_step`: positive for every step length, no cut to the boundary), each
slab scaled back to the step's mass, with backtracking on the residual norm: in the far tails of a moving bump the
direction asks a density to fall by many times itself, and the fraction-to-the-boundary rule cut every step there
to a few percent (at 128^2, 94 Newton iterations for one step against 16). The first iterate is the one-step
solution, rho^l its geometric interpolation rho_k^(1 - l/K) rho^(l/K) (one bump between two bumps, where the
linear one is two), phi^l = phi for every l; a K from a smaller K' (`resample`: 2 -> 3 -> 4 -> 6 ...) interpolates
the K' slabs' densities geometrically and their phi linearly in pseudo-time (the start's defect at 128^2, K = 4
from 2: 0.09 against 1.5 with phi repeated), and from two smaller ones (`predict`) extrapolates the two resampled
in 1/K^2 (one Newton iteration from there lands 8-15x closer than from the last one alone).

The problem may be posed on a cut (`active`: NewtonJKO chooses it where the step's density is used): the nodes off
it keep rho_k in every slab, their equations are dropped and the edges that touch them leave B, T and the
residuals, so S is the cut's space-time system (the nodes off it decoupled diagonal rows); its factorisation costs
what the cut's nodes do.
"""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.solvers.core import linear
from fpjko.solvers.jko.newton.interior import barrier_newton


def barrier_density(tol: float) -> float:
    """The barrier's end value mu / q* (a density) for the stopping test tol: tol / 10, but not below min(tol, 1e-8).

    The nodes of a slab's far tails lie below their barrier equilibrium mu / c (and double per Newton iteration
    towards it), each adding m mu to the defect sum |rho H|: at mu = tol q* that floor, tol |tails| / mass, sits at
    the test itself (128^2, the benchmark's first step, K = 6: 2.5e-2, 7.2e-5, 1.18e-6, 5.8e-7 for tol 1e-6: the
    third iteration only crossed it). Measured there, K = 4, six steps, CPU s at mu / q* = tol, tol / 10, tol / 100:
    tol 1e-5: 39, 10.4, 10.8; 1e-6: 29, 13.8; 1e-7: 19, 14, 21; and at tol 1e-8 ('auto' or a fixed K) tol / 10 was
    1.2-1.6x slower than tol (the barrier problem stiffer). 'auto' (tol 1e-6): the first step 15 Newton iterations
    against 20, the densities and the estimates equal to 4 digits.

    Parameters
    ----------
    tol : float
        The Newton stopping test (mass-balance defect / mass).

    Returns
    -------
    float
    """
    return max(0.1 * tol, min(tol, 1e-8))


class SpaceTime:
    """The K-slab step's unknowns, residuals and Newton direction on an EdgeGraph.

    Parameters
    ----------
    graph : EdgeGraph
    energy : Energy
    K : int
        Pseudo-time steps (>= 2).
    s : float
        The mobility's weight of the later density (1/2: midpoint).
    prefix : str
        PETSc options prefix of the space-time Schur solve ('st_' is appended).
    petsc_options : dict, optional
        Options of the Schur solve over its defaults (a direct Cholesky solver: CHOLMOD on one rank where PETSc
        has it, else MUMPS).
    active : numpy.ndarray of bool, shape (n,), optional
        The cut: the owned nodes the step is solved on (None: all); the others keep rho_k (module docstring).
    """

    def __init__(self, graph, energy, K: int, s: float, prefix: str, petsc_options: dict | None = None,
                 active: np.ndarray | None = None):
        self.graph, self.energy, self.K, self.s = graph, energy, int(K), float(s)
        self.comm, self.n = graph.comm, graph.n
        self.active = None if active is None else np.asarray(active, bool)
        if self.active is None:
            self.w, self._keep = graph.w, None
        else:
            ag = graph.ghost(self.active.astype(float)) > 0.5
            ea = ag[graph.ei] & ag[graph.ej]
            self.w = np.where(ea, graph.w, 0.0)
            self._keep = np.ones(len(graph._cols), bool)
            self._keep[graph._off_pos] = ea
        self._build_pattern()
        user = dict(petsc_options or {})
        opts = linear.direct_solver_options()
        if opts.get("pc_factor_mat_solver_type") == "mumps":
            opts["pc_type"] = "cholesky"              # the scaled Schur complement is SPD (see `direction`)
            # MUMPS's workspace 100% above its analysis's estimate (20% by default): on two ranks the benchmark's
            # first step stopped now and then with INFOG(1) = -9 (workspace too small: 1 run in 10 of the whole
            # mesh, 3 in 12 with two solvers in one process; 0 in 12 at 100%, probe of issue 36)
            opts["mat_mumps_icntl_14"] = 100
        self._fallback = None                         # the options `direction` turns to when CHOLMOD refuses
        if (self.comm.size == 1 and PETSc.Sys.hasExternalPackage("cholmod")
                and "pc_factor_mat_solver_type" not in user):
            # on one rank CHOLMOD's supernodal Cholesky: 1.6x faster than MUMPS's here (128^2, K = 4: 0.92 s
            # against 1.46 s per factorisation); MUMPS where CHOLMOD meets a non-positive pivot
            self._fallback = {**opts, **user}
            # CHOLMOD's print level 0: else it writes its own "matrix not positive definite" line to stderr before
            # the fallback in `direction` (its errors still reach PETSc)
            opts.pop("mat_mumps_icntl_14", None)
            opts.update(pc_type="cholesky", pc_factor_mat_solver_type="cholmod", mat_cholmod_print=0)
            if "pc_factor_mat_ordering_type" not in user and self.K <= 6:
                # PETSc's nested dissection, taken as given (nmethods = 1), up to K = 6: CHOLMOD's own choice (AMD
                # and METIS tried on the K n x K n graph, METIS's taken) made each K's symbolic factorisation cost
                # about two numeric ones (128^2, the benchmark's first step: 1.9 s of analysis for 2.5 s of
                # factorisations; with nd 0.2 s and 3.1 s; the ten steps 9.3 s against 10.9, 256^2 60 s against
                # 74). Its factors are larger (numeric +22% at K = 6, +25% at K = 8, +38% at K = 16), so from K = 8
                # on, where the numeric factorisations outweigh the analysis, CHOLMOD's own (128^2, one step to
                # K = 16: 52 s against 63 with nd)
                opts.update(pc_factor_mat_ordering_type="nd", mat_cholmod_nmethods=1)
        self._opts, self._user = {**opts, **user}, tuple(user)
        self.prefix = prefix + "st_"
        self._ksp = self._S = self._Bt = None

    # ------------------------------------------------------------------ the space-time pattern
    def _build_pattern(self) -> None:
        """The CSR patterns of B (block lower bidiagonal in time) and T (block diagonal) on the K n x K n space-time
        graph, rows owned by this rank: (slab l, node i) -> K r0 + l n + i. Entries are listed slab by slab in the
        graph's own CSR order (the natural order the values are computed in) and sorted once (`_perm_*`)."""
        g, K, n = self.graph, self.K, self.n
        P = g.pattern
        ranges = np.asarray(P.getOwnershipRanges(), dtype=np.int64)
        indptr, cols = g._indptr, g._cols.astype(np.int64)
        if self._keep is not None:
            # the edges to or from an inactive node are not in the pattern
            r = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))[self._keep]
            indptr, cols = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))]), cols[self._keep]
        owner = np.searchsorted(ranges, cols, side="right") - 1
        base, width, local = K * ranges[owner], ranges[owner + 1] - ranges[owner], cols - ranges[owner]
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        N = K * int(P.getSize()[0])
        sizes = ((K * n, N), (K * n, N))

        def csr(blocks):
            r = np.concatenate([l * n + rows for l, _ in blocks]) if blocks else np.zeros(0, np.int64)
            c = np.concatenate([base + lc * width + local for _, lc in blocks]) if blocks else np.zeros(0, np.int64)
            perm = np.lexsort((c, r))
            ip = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=K * n))]).astype(PETSc.IntType)
            cc = c[perm].astype(PETSc.IntType)
            M = PETSc.Mat().createAIJ(sizes, csr=(ip, cc, np.zeros(len(cc))), comm=self.comm)
            return M, ip, cc, perm
        # B: slab l's rows hold dG^l/drho^l (columns of slab l) and, for l >= 1, dG^l/drho^(l-1)
        self._B, self._B_indptr, self._B_cols, self._perm_B = csr(
            [blk for l in range(K) for blk in ([(l, l)] + ([(l, l - 1)] if l > 0 else []))])
        self._T, self._T_indptr, self._T_cols, self._perm_T = csr([(l, l) for l in range(K)])
        self._Bs = self._B.duplicate()
        self._vec = {k: self._B.createVecRight() for k in ("x", "b", "d", "sc", "t")}

    def _csr_values(self, diag: np.ndarray, off: np.ndarray) -> np.ndarray:
        g = self.graph
        v = np.empty(len(g._cols))
        v[g._diag_pos], v[g._off_pos] = diag, off
        return v if self._keep is None else v[self._keep]

    def _fill(self, blocks_cur: list, blocks_prev: list, T_blocks: list) -> None:
        """Set B from the per-slab (diag (n,), off (n_edges,)) of dG^l/drho^l and dG^l/drho^(l-1), and T."""
        nat = []
        for l in range(self.K):
            nat.append(self._csr_values(*blocks_cur[l]))
            if l > 0:
                nat.append(self._csr_values(*blocks_prev[l]))
        self._B.setValuesCSR(self._B_indptr, self._B_cols, np.concatenate(nat)[self._perm_B])
        self._B.assemble()
        tv = np.concatenate([self._csr_values(*b) for b in T_blocks])
        self._T.setValuesCSR(self._T_indptr, self._T_cols, tv[self._perm_T])
        self._T.assemble()

    # ------------------------------------------------------------------ residuals
    def state(self, data, rho: list, phi: list, mu: float, qscale: float) -> dict:
        """Residuals at (rho^1..K, phi^1..K) (edge layouts) with the barrier mu.

        Parameters
        ----------
        data : StepData
            tau, rho_k (rk), psi (W * rho frozen), mass.
        rho, phi : list of numpy.ndarray, shape (n + n_extra,)
        mu : float
        qscale : float

        Returns
        -------
        dict
            rho, phi, G, H, d2 (lists per slab, shape (n,)), dphi, th (per slab, shape (n_edges,)), merit, res,
            kin (the kinetic sums per slab).
        """
        g, en, K, s = self.graph, self.energy, self.K, self.s
        ei, ej, w, n = g.ei, g.ej, self.w, self.n
        mo = g.ml[:n]
        tp = data.tau / K
        dphi = [p[ei] - p[ej] for p in phi]
        hj = [np.bincount(ei, w * d * d, minlength=n) for d in dphi]
        G, H, d2, th = [], [], [], []
        for l in range(K):
            prev = data.rk if l == 0 else rho[l - 1]
            rbar = (1 - s) * prev + s * rho[l]
            t = 0.5 * (rbar[ei] + rbar[ej])
            th.append(t)
            G.append(mo * (rho[l][:n] - prev[:n]) + tp * np.bincount(ei, w * t * dphi[l], minlength=n))
            r = rho[l][:n]
            if l < K - 1:
                H.append(mo * (phi[l + 1][:n] - phi[l][:n] - mu / r) - 0.25 * tp * (s * hj[l] + (1 - s) * hj[l + 1]))
                d2.append(mu / (r * r))
            else:
                e1, e2 = self._energy_derivatives(r, mu)
                H.append(mo * (en.V_nodal[:n] + data.psi + e1 - phi[l][:n]) - 0.25 * tp * s * hj[l])
                d2.append(e2)
        if self.active is not None:
            G, H = [x * self.active for x in G], [x * self.active for x in H]
        loc = np.array([sum(float(np.sum((a * a + b * b) / mo)) for a, b in zip(G, H)),
                        sum(float(np.abs(a).sum()) for a in G),
                        sum(float(np.abs(r[:n] * b).sum()) for r, b in zip(rho, H)),
                        *[float(np.sum(w * t * d * d)) for t, d in zip(th, dphi)]])
        tot = self.comm.allreduce(loc, op=MPI.SUM)
        return dict(rho=rho, phi=phi, G=G, H=H, d2=d2, dphi=dphi, th=th, merit=math.sqrt(tot[0]),
                    res=max(tot[1], tot[2] / qscale) / data.mass, kin=tot[3:])

    def _energy_derivatives(self, r: np.ndarray, mu: float):
        """e'(r) and e''(r) of the energy density without potential (entropy, porous medium), with the barrier
        where there is no entropy."""
        en = self.energy
        e1, e2 = np.zeros_like(r), np.zeros_like(r)
        if en.eps:
            e1 += en.eps * (np.log(r) + 1.0)
            e2 += en.eps / r
        else:
            e1 -= mu / r
            e2 += mu / (r * r)
        if en.m is not None:
            e1 += en.cm * en.m / (en.m - 1) * r ** (en.m - 1)
            e2 += en.cm * en.m * r ** (en.m - 2)
        return e1, e2

    # ------------------------------------------------------------------ the Newton direction
    def direction(self, st: dict, tau: float):
        """The Newton direction: S dphi = -G + B D^-1 H, d rho = D^-1 (B^T dphi - H).

        Parameters
        ----------
        st : dict
            As `state` returns it.
        tau : float

        Returns
        -------
        dphi : list of numpy.ndarray, shape (n + n_extra,)
        drho : list of numpy.ndarray, shape (n,)
        iterations : int
            Krylov iterations.
        """
        g, K, s, n = self.graph, self.K, self.s, self.n
        ei, w = g.ei, self.w
        mo = g.ml[:n]
        tp = tau / K
        cur, prev, Tb = [], [], []
        for l in range(K):
            c = 0.5 * tp * w * st["dphi"][l]                  # tau' dflux_i / d theta on the edge
            csum = np.bincount(ei, c, minlength=n)
            cur.append((mo + s * csum, s * c))
            prev.append((-mo + (1 - s) * csum, (1 - s) * c))
            wt = tp * w * st["th"][l]
            Tb.append((np.bincount(ei, wt, minlength=n), -wt))
        self._fill(cur, prev, Tb)
        dinv = np.concatenate([1.0 / (mo * d) for d in st["d2"]])
        vd = self._vec["d"]
        vd.array[:] = dinv
        self._B.copy(self._Bs, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        self._Bs.diagonalScale(R=vd)
        # S keeps its pattern from one Newton iteration to the next: the direct solver's symbolic factorisation
        # (its ordering) is done once per K
        # (B^T explicitly and MatMatMult: MatMatTransposeMult with a reused result gives wrong values under MPI)
        self._Bt = self._B.transpose(PETSc.Mat() if self._Bt is None else self._Bt)   # (None: in place)
        self._S = self._Bs.matMult(self._Bt, result=self._S)
        self._S.axpy(1.0, self._T, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        self._S.setOption(PETSc.Mat.Option.SPD, True)      # a Cholesky factorisation without pivoting
        sc = self._vec["sc"]
        self._S.getDiagonal(sc)
        sc.array[:] = 1.0 / np.sqrt(sc.array)
        self._S.diagonalScale(L=sc, R=sc)
        if self._ksp is None:
            self._ksp = linear.make_ksp(self._S, self.prefix, self._opts, user=self._user)
        else:
            self._ksp.setOperators(self._S)
        self._ksp.setTolerances(rtol=min(1e-4, max(1e-10, 1e-2 * st["res"])))
        x, b, t = self._vec["x"], self._vec["b"], self._vec["t"]
        H = np.concatenate(st["H"])
        x.array[:] = dinv * H
        self._B.mult(x, b)
        b.array[:] -= np.concatenate(st["G"])
        b.array[:] *= sc.array
        x.set(0.0)
        try:
            its = linear.solve(self._ksp, b, x, "JKO space-time Newton step (Schur complement)")
        except (PETSc.Error, RuntimeError):
            # (a failed factorisation: PETSc's error, or the KSP's reason DIVERGED_PC(SETUP)_FAILED)
            if self._fallback is None:
                raise
            # CHOLMOD stops at a pivot that rounding made non-positive (far tails of a large step: the mobility
            # and rho^2 / mu vanish there); MUMPS's Cholesky goes on: it takes this K's solves from here
            self._opts, self._fallback = self._fallback, None
            self._ksp.destroy()
            self._ksp = linear.make_ksp(self._S, self.prefix, self._opts, user=self._user)
            x.set(0.0)
            its = linear.solve(self._ksp, b, x, "JKO space-time Newton step (Schur complement)")
        x.array[:] *= sc.array
        self._B.multTranspose(x, t)
        drho = dinv * (t.array - H)
        dphi = [g.ghost(x.array[l * n:(l + 1) * n]) for l in range(K)]
        return dphi, [drho[l * n:(l + 1) * n] for l in range(K)], its

    # ------------------------------------------------------------------ the interior-point iteration
    def resample(self, st: dict, data, K2: int) -> tuple[list, list]:
        """A first iterate for K2 slabs from a state of K slabs (K -> 2K, or any other K2): rho^l lives at
        pseudo-time l / K (rho^0 = rho_k) and phi^l at the midpoint (l - 1/2) / K of its slab. A new density between
        two old ones is their geometric interpolation (`_between`; the old one where the times meet), a new phi
        linear in pseudo-time between the old ones' (extrapolated at the ends, repeated where K = 1).

        Parameters
        ----------
        st : dict
            A state of this K.
        data : StepData
        K2 : int
            The new number of slabs.

        Returns
        -------
        rho, phi : list of numpy.ndarray, shape (n + n_extra,), length K2
        """
        P, R = st["phi"], [data.rk] + list(st["rho"])
        K = len(P)
        rho, between, where = [None] * K2, [], []
        for j in range(1, K2 + 1):
            l, rem = divmod(j * K, K2)             # t = j / K2 = (l + rem / K2) / K
            if rem == 0:
                rho[j - 1] = R[l]
            else:
                between.append((R[l], R[l + 1], rem / K2))
                where.append(j - 1)
        for j, r in zip(where, self._between(data, between)):
            rho[j] = r
        if K == 1:
            return rho, [P[0]] * K2
        phi = []
        for j in range(1, K2 + 1):
            u = ((2 * j - 1) * K - K2) / (2 * K2)  # the new midpoint in units of the old phi's index
            i = min(max(int(math.floor(u)), 0), K - 2)
            phi.append(P[i] + (u - i) * (P[i + 1] - P[i]))
        return rho, phi

    def predict(self, data, fine: dict, coarse: dict) -> tuple[list, list]:
        """A first iterate for this K from the states of two levels K0 < K1 < K: each resampled to K (`resample`),
        then extrapolated in 1 / K^2 as the levels converge, x_K1 + (x_K1 - x_K0) (K1^-2 - K^-2) / (K0^-2 - K1^-2),
        the densities limited to [r / 2, 2 r] of the finer level's and scaled to the step's mass.

        The resampled finer level alone is off by the levels' second-order difference. The benchmark's first step
        (128^2): one Newton iteration took the defect of K = 6 from K = 4 to 7.1e-5, from this prediction (K = 3
        and 4) to 4.7e-6; K = 4: 1.4e-4 against 1.8e-5.

        Parameters
        ----------
        data : StepData
        fine, coarse : dict
            States of K1 and K0 slabs (as `iterate` returns them; K0 = 1: the one-step solution's).

        Returns
        -------
        rho, phi : list of numpy.ndarray, shape (n + n_extra,), length K
        """
        n, K = self.n, self.K
        r1, p1 = self.resample(fine, data, K)
        r0, p0 = self.resample(coarse, data, K)
        K1, K0 = len(fine["phi"]), len(coarse["phi"])
        w = (K1 ** -2 - K ** -2) / (K0 ** -2 - K1 ** -2)
        rho = [np.clip(a[:n] + w * (a[:n] - b[:n]), 0.5 * a[:n], 2.0 * a[:n]) for a, b in zip(r1, r0)]
        return self._to_mass(rho, data.mass), [a + w * (a - b) for a, b in zip(p1, p0)]

    def _between(self, data, triples: list) -> list:
        """a^(1 - t) b^t for each (a, b, t), scaled to the step's mass: between two bumps the geometric
        interpolation is a bump where the linear one is two (for two Gaussians of one variance it is their
        displacement interpolation), so the interior-point iteration starts near the geodesic instead of cutting
        its first steps to keep rho > 0."""
        n = self.n
        floor = 1e-12 * self.graph.max(data.rk)
        return self._to_mass([np.exp((1 - t) * np.log(np.maximum(a[:n], floor)) + t * np.log(np.maximum(b[:n], floor)))
                              for a, b, t in triples], data.mass)

    def _to_mass(self, parts: list, mass: float) -> list:
        """Each owned part (shape (n,)) scaled to `mass` (one reduction for all), in the edge layout."""
        g = self.graph
        masses = self.comm.allreduce(np.array([float(g.ml[: self.n] @ x) for x in parts]), op=MPI.SUM)
        return [g.ghost(x * (mass / m)) for x, m in zip(parts, masses)]

    def guess(self, data, rho1: np.ndarray, phi1: np.ndarray) -> tuple[list, list]:
        """A first iterate from the one-step solution (rho1, phi1): rho^l interpolated geometrically from rho_k to
        rho1 (`_between`), every phi^l = phi1.

        Parameters
        ----------
        data : StepData
        rho1, phi1 : numpy.ndarray, shape (n + n_extra,)

        Returns
        -------
        rho, phi : list of numpy.ndarray, shape (n + n_extra,), length K
        """
        K = self.K
        rho = self._between(data, [(data.rk, rho1, (l + 1) / K) for l in range(K - 1)])
        rho.append(self.graph.ghost(rho1[: self.n]))
        return rho, [phi1.copy() for _ in range(K)]

    def iterate(self, data, rho, phi, budget: int, tol: float, mu0: float = 1e-2):
        """Interior-point Newton from the slabs (rho, phi) (`guess` or `resample`) to the tolerance, the barrier
        from max(mu0 q*, mu_end) to its end value mu_end = barrier_density(tol) q* (mu0 = 0: at the end value).

        Returns
        -------
        state : dict
        iterations, linear_iterations : int
        converged : bool
            The stopping test held at the barrier's end value.
        """
        g, n = self.graph, self.n
        qscale = self.energy.eps if self.energy.eps else 1.0
        floor = 1e-12 * g.max(data.rk)
        if self.active is not None:
            rho = [np.where(self.active, r[:n], data.rk[:n]) for r in rho]
        rho = [g.ghost(np.maximum(r[:n], floor)) for r in rho]
        mu_end = barrier_density(tol) * qscale
        mu = max(mu_end, mu0 * qscale)

        def direction(st):
            dphi, drho, k = self.direction(st, data.tau)
            return drho, dphi, k

        st, its, lin, mu = barrier_newton(
            lambda r, p, m: self.state(data, r, p, m, qscale), direction,
            lambda st, a, dr, dp: (self._positive_step(st["rho"], a, dr, data.mass, 1e-88 * floor),
                                   [p + a * d for p, d in zip(st["phi"], dp)]),
            lambda st: st["rho"], rho, phi, mu, mu_end, qscale, tol, budget, self.comm, n, to_boundary=False)
        return st, its, lin, bool(st["res"] <= tol and mu <= mu_end)

    def _positive_step(self, rho: list, a: float, drho: list, mass: float, floor: float) -> list:
        """rho + a drho where that keeps half of rho or more, else rho exp(2 a drho / rho + 1) / 2 (the two meet
        with their first derivatives at a drho = -rho / 2), each slab scaled to the step's mass: Newton's step
        wherever it is mild, and positive for every a (in the far tails of a moving bump the direction asks a
        density to fall by many times itself, and cutting the whole step to the boundary there stalled the
        iteration at the small barriers: 94 Newton iterations for one step at 128^2 against 16 with the
        exponential step; switching to it at -rho / 2 rather than at 0 saves one more per K). The linear step
        keeps each slab's mass (the mass balances sum to it); the exponential one does to first order, and the
        scaling restores it to round-off. Densities stay above `floor` (1e-100 max rho_k: mu / rho^2 stays finite)."""
        n = self.n
        out = []
        for r, d in zip(rho, drho):
            x = r[:n] + a * d
            u = a * d / r[:n]
            neg = u < -0.5
            x[neg] = r[:n][neg] * 0.5 * np.exp(np.maximum(2 * u[neg] + 1, -60.0))
            out.append(np.maximum(x, floor))
        return self._to_mass(out, mass)

    def w2(self, st: dict, tau: float) -> float:
        """The step's transport distance W_K = (K sum_l tau'^2 kin_l / 2)^(1/2)."""
        tp = tau / self.K
        return math.sqrt(max(self.K * tp * tp * float(np.sum(st["kin"])) / 2, 0.0))

    def destroy(self) -> None:
        for obj in (self._ksp, self._S, self._Bt, self._B, self._Bs, self._T, *self._vec.values()):
            if obj is not None:
                obj.destroy()

