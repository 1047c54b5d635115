"""The linear algebra of NewtonJKO: the Newton direction from the Schur complement S = B D^-1 B^T + tau L, and the
predictor's backward-Euler system, each with its KSP (CG + BoomerAMG; LU where the Krylov solve breaks down)."""

from __future__ import annotations

import numpy as np
from petsc4py import PETSc

from fpjko.solvers.core import linear


class SchurSystem:
    """The matrices and KSPs of NewtonJKO's linear solves, on an EdgeGraph's pattern.

    Parameters
    ----------
    graph : EdgeGraph
    prefix : str
        PETSc options prefix of the Schur-complement solve; the direct fallback adds 'fallback_' and the
        predictor 'pred_'.
    petsc_options : dict, optional
        The caller's options of the Schur-complement solve (the command line wins).

    Attributes
    ----------
    fallbacks : int
        Newton iterations whose Krylov solve broke down and were solved by LU.
    """

    def __init__(self, graph, prefix: str, petsc_options: dict | None = None):
        self.graph, self.comm, self.prefix = graph, graph.comm, prefix
        P = graph.pattern
        self._B, self._L, self._Bs, self._P = P.duplicate(), P.duplicate(), P.duplicate(), P.duplicate()
        self._S = None
        opts = {**linear.iterative_solver_options(symmetric=True, rtol=1e-10), "ksp_norm_type": "unpreconditioned"}
        if opts["pc_type"] == "hypre" and (petsc_options or {}).get("pc_type", "hypre") == "hypre":
            # measured about 15% faster than BoomerAMG's defaults on these Schur complements
            opts.update({"pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i",
                         "pc_hypre_boomeramg_P_max": 4, "pc_hypre_boomeramg_agg_nl": 1})
        opts.update(petsc_options or {})
        self._ksp_options = opts
        self._user_options = tuple(petsc_options or {})
        self._adapt_rtol = "ksp_rtol" not in (petsc_options or {}) and not PETSc.Options().hasName(prefix + "ksp_rtol")
        self._ksp = self._lu = self._pksp = None
        self.fallbacks = 0
        self._vecs = {k: P.createVecRight() for k in ("dphi", "rhs", "dinv", "scale")}

    def direction(self, st: dict, tau: float, s: float, steep: bool):
        """The Newton direction in phi: S dphi = -G (+ B D^-1 H for the primal-dual residuals),
        S = B diag(drho/dq / m) B^T + tau L.

        Parameters
        ----------
        st : dict
            The iterate: 'G' (shape (n,)), 'drho' (shape (n,)), 'dphi' and 'th' (shape (n_edges,)), 'rho' (edge
            layout), 'res', and for the primal-dual iteration 'H' (shape (n,)).
        tau : float
            The JKO step.
        s : float
            The mobility's weight of the new density (1/2 midpoint, 1 implicit).
        steep : bool
            Add a graph Laplacian on the edges where rho is negligible (see below).

        Returns
        -------
        dphi : numpy.ndarray, shape (n + n_extra,)
            The direction in phi, in the edge layout.
        iterations : int
            Krylov iterations.
        drho : numpy.ndarray, shape (n,)
            Only with 'H': the direction in rho.
        """
        g = self.graph
        ei, w, n = g.ei, g.w, g.n
        mo = g.ml[:n]
        c_off = 0.5 * s * tau * w * st["dphi"]                   # tau d flux_i / d rho_j
        g.set_csr(self._B, mo + np.bincount(ei, c_off, minlength=n), c_off)
        wt = w * st["th"]
        dinv = st["drho"] / mo
        # a floor on the diagonal where both rho and the mobility vanish (empty region of a porous
        # medium): phi is arbitrary there and the rows would be zero
        if steep:
            # where rho is negligible (< 1e-10 of its maximum, at either end of an edge) the rows of S are tiny
            # and the Newton step there is noise that rho(q) = exp(...) and the Hamilton-Jacobi term amplify
            # into spikes. A graph Laplacian on those edges, 100 times the largest such mobility, makes the
            # step there a smooth extension of the step in the bulk. Only once a run has shown such tails
            # (the first guess needed its Lipschitz extension, or a step needed more than 8 iterations): on
            # Gaussian problems it would cost 3-4 times more Krylov iterations for nothing
            r = st["rho"]
            rmax = g.max(r)
            small = np.minimum(r[g.ei], r[g.ej]) < 1e-10 * rmax
            wt = wt + np.where(small, w * 1e-8 * rmax, 0.0)
        Ldiag = np.bincount(ei, wt, minlength=n)
        floor = 1e-14 * g.max(mo * mo * dinv + tau * Ldiag)
        g.set_csr(self._L, Ldiag + floor / tau, -wt)
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
            self._ksp = linear.make_ksp(self._S, self.prefix, self._ksp_options, user=self._user_options)
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
            # this iteration's system is then factorised (counted in self.fallbacks)
            if self._lu is None:
                self._lu = linear.make_ksp(self._S, self.prefix + "fallback_", linear.direct_solver_options())
            else:
                self._lu.setOperators(self._S)
            x.set(0.0)
            its = linear.solve(self._lu, rhs, x, "JKO Newton step (Schur complement, direct fallback)")
            self.fallbacks += 1
        x.array[:] *= sc.array
        if H is None:
            return g.ghost(x.array), its
        t = self._vecs["rhs"]
        self._B.multTranspose(x, t)
        drho = dinv * (t.array - H)
        return g.ghost(x.array), its, drho

    def predictor_solve(self, diag: np.ndarray, off: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Solve the predictor's SPD M-matrix system by CG + AMG to 1e-8 (prefix + 'pred_').

        Parameters
        ----------
        diag : numpy.ndarray, shape (n,)
        off : numpy.ndarray, shape (n_edges,)
        rhs : numpy.ndarray, shape (n,)

        Returns
        -------
        numpy.ndarray, shape (n,)
            The owned solution.
        """
        self.graph.set_csr(self._P, diag, off)
        if self._pksp is None:
            self._pksp = linear.make_ksp(self._P, self.prefix + "pred_", {**self._ksp_options, "ksp_rtol": 1e-8}, user=())
        else:
            self._pksp.setOperators(self._P)
        b, x = self._vecs["rhs"], self._vecs["dphi"]
        b.array[:] = rhs
        x.set(0.0)
        linear.solve(self._pksp, b, x, "JKO predictor (backward-Euler Fokker-Planck step)")
        return x.array.copy()

    def destroy(self) -> None:
        """Destroy the KSPs, matrices and vectors."""
        for obj in (self._ksp, self._lu, self._pksp, self._B, self._L, self._Bs, self._S, self._P,
                    *self._vecs.values()):
            if obj is not None:
                obj.destroy()
