"""Newton's method on the concave dual of a NewtonJKO step (with an entropy): rho eliminated pointwise, phi
iterated; the backward-Euler predictor of the first guess; the homotopy in tau. Each part takes the step's data
(StepData) and returns its results: no part changes the solver."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from mpi4py import MPI

from fpjko.solvers.fokker_planck.edge_averaged import bernoulli


@dataclasses.dataclass(frozen=True)
class StepData:
    """What one JKO step depends on.

    Parameters
    ----------
    tau : float
        The step (the homotopy solves tau / 2 first with the same data).
    rk : numpy.ndarray, shape (n + n_extra,)
        rho_k in the edge layout.
    psi : numpy.ndarray, shape (n,)
        The interaction potential W * rho, frozen during a Newton solve.
    mass : float
        The mass of rho_k (imposed exactly at every iterate).
    previous : numpy.ndarray, shape (n + n_extra,)
        The previous step's potential phi (the first guess without the predictor).
    steep : bool
        The run has shown exponentially small tails (a steep potential): the Newton matrix then gets a graph
        Laplacian on the edges where rho is negligible.
    """

    tau: float
    rk: np.ndarray
    psi: np.ndarray
    mass: float
    previous: np.ndarray
    steep: bool = False


class DualNewton:
    """Newton's method on the dual phi -> l(rho(phi), phi) of the JKO step, for an energy with an entropy.

    Parameters
    ----------
    graph : EdgeGraph
    energy : Energy
        With eps > 0.
    schur : SchurSystem
    s : float
        The mobility's weight of the new density.
    predictor : bool
        Start from one backward-Euler step of the Fokker-Planck equation (else from the previous phi).
    """

    def __init__(self, graph, energy, schur, s: float, predictor: bool = True):
        self.graph, self.energy, self.schur, self.s = graph, energy, schur, s
        self.comm, self.n = graph.comm, graph.n
        self.predictor = bool(predictor)

    def state(self, data: StepData, phi: np.ndarray) -> dict:
        """rho(phi) (the exact minimiser in rho for this phi, with the mass of rho_k imposed through the constant
        mode of phi), and what the Newton step and the line search need.

        Parameters
        ----------
        data : StepData
        phi : numpy.ndarray, shape (n + n_extra,)

        Returns
        -------
        dict
            phi (shifted), rho (edge layout), drho, G (shape (n,)), dphi, th (shape (n_edges,)), and the floats
            dual (the dual objective), res (the mass-balance defect / mass) and kin (the kinetic sum).
        """
        g, en, s = self.graph, self.energy, self.s
        ei, ej, w, n = g.ei, g.ej, g.w, self.n
        mo = g.ml[:n]
        dphi = phi[ei] - phi[ej]
        q = phi[:n] + 0.25 * data.tau * s * np.bincount(ei, w * dphi * dphi, minlength=n) / mo \
            - en.V_nodal[:n] - data.psi
        c = en.mass_shift(q, en.eps, data.mass)
        rho_own, drho = en.invert(q + c, en.eps)
        phi = phi.copy()
        phi += c                                     # the same for every node: dphi, q's HJ term unchanged
        rho = g.ghost(rho_own)
        rk = data.rk
        rbar = (1 - s) * rk + s * rho
        th = 0.5 * (rbar[ei] + rbar[ej])
        G = mo * (rho_own - rk[:n]) + data.tau * np.bincount(ei, w * th * dphi, minlength=n)
        # the dual objective l(rho(phi), phi) with the interaction potential psi frozen
        loc = np.array([float(mo @ (en.local(rho_own) + data.psi * rho_own - phi[:n] * (rho_own - rk[:n]))),
                        float(np.sum(w * th * dphi * dphi))])
        tot = self.comm.allreduce(loc, op=MPI.SUM)
        dual = tot[0] - 0.25 * data.tau * tot[1]           # each edge twice in the directed sum
        res = self.comm.allreduce(float(np.abs(G).sum())) / data.mass
        return dict(phi=phi, rho=rho, drho=drho, dphi=dphi, th=th, G=G, dual=dual, res=res, kin=tot[1])

    def first_guess(self, data: StepData) -> tuple[np.ndarray, bool]:
        """phi's first guess from one backward-Euler step of the Fokker-Planck equation with the entropy's
        diffusion, on the same edges (one CG + AMG solve). In the Slotboom variable u = rho / M,
        M = exp(-beta (V + W * rho_k - min V)), the Scharfetter-Gummel step is the SPD M-matrix system
            (diag(m M) / tau + beta^-1 L_H) u = m rho_k / tau,   (L_H)_ij = -w_ij H_ij,
        H_ij = exp(-beta min(V_i, V_j)) B(beta |V_i - V_j|) the harmonic mean of M on the edge, and
        phi = V + beta^-1 (log rho + 1) = min V + beta^-1 (log u + 1): no cancellation between V and
        beta^-1 log rho is lost in the tails (where rho underflows, u does not). rho_pred differs from the
        step by O(tau^2) in the bulk and its tails lie above the step's (the backward-Euler kernel decays
        exponentially), the side from which Newton's iteration does not overshoot.

        Parameters
        ----------
        data : StepData

        Returns
        -------
        phi : numpy.ndarray, shape (n + n_extra,)
            The first guess, in the edge layout.
        steep : bool
            data.steep, or True where the guess needed its Lipschitz extension (a steep potential's tail).
        """
        g, en = self.graph, self.energy
        n, ei, ej, w, eps = self.n, g.ei, g.ej, g.w, en.eps
        beta = 1.0 / eps
        pot = g.ghost(en.V_nodal[:n] + data.psi)
        vmin = g.min(pot)
        z = np.minimum(beta * (pot - vmin), 700.0)                 # M = exp(-z) >= e^-700
        H = np.exp(-np.minimum(z[ei], z[ej])) * bernoulli(np.abs(z[ei] - z[ej]))
        mo = g.ml[:n]
        wh = eps * w * H
        u = self.schur.predictor_solve(mo * np.exp(-z[:n]) / data.tau + np.bincount(ei, wh, minlength=n), -wh,
                                       mo * data.rk[:n] / data.tau)
        # where rho_pred is negligible (< 1e-10 of its maximum) u is kept within its range over the rest:
        # there the backward-Euler tail can exceed the step's by many decades in a steep potential, and the
        # gradient of log u would make the Hamilton-Jacobi term of the first iterate overflow
        r = u * np.exp(-z[:n])
        rmax = g.max(r)
        big = r >= 1e-10 * rmax
        ucap = g.max(np.where(big, u, 0.0))
        umin = g.min(np.where(big, u, np.inf))
        u = np.clip(u, umin, ucap)              # and the Krylov round-off can leave u <= 0 far out
        phi = vmin + eps * (np.log(u) + 1.0)
        if en.m is not None:
            r = u * np.exp(-z[:n])
            phi += en.cm * en.m / (en.m - 1) * r ** (en.m - 1)
        phi = g.ghost(phi)
        # a first guess whose Hamilton-Jacobi term tau s/4 sum_j w (phi_i - phi_j)^2 / m_i is large where rho_pred
        # is small (a steep potential's tail, where grad phi_pred ~ grad V and the predictor's round-off is
        # amplified by log) makes rho(q) overflow into a spike that the mass constraint turns into garbage.
        # Then, outside the bulk (rho_pred >= 1e-3 of its maximum), phi is the L-Lipschitz extension of the
        # bulk's values, L = 2 (2 beta^-1 / tau)^(1/2), so the term stays below about 2 d / beta: the converged
        # step has phi << V and a moderate slope in such tails (measured)
        st = self.state(data, phi)
        rmax = g.max(st["rho"])
        pmax = g.max(r)
        if rmax > 10 * pmax:
            return g.ghost(g.envelope(phi, r >= 1e-3 * pmax, 2.0 * math.sqrt(2.0 * eps / data.tau))), True
        return phi, data.steep

    def newton(self, data: StepData, phi: np.ndarray, budget: int, tol: float):
        """Newton's method on the concave dual phi -> l(rho(phi), phi) with psi frozen, until the mass-balance
        defect is <= tol or `budget` iterations (or the line search stagnates).

        Parameters
        ----------
        data : StepData
        phi : numpy.ndarray, shape (n + n_extra,)
            The first guess.
        budget : int
            The most Newton iterations.
        tol : float
            The stopping test on the mass-balance defect.

        Returns
        -------
        state : dict
            The last iterate (see `state`).
        iterations, linear_iterations : int
        steep : bool
            data.steep, or True once an iteration count passed 8.
        """
        st = self.state(data, phi)
        steep = data.steep
        its = lin = 0
        while its < budget:
            if st["res"] <= tol:
                break
            its += 1
            if its > 8:
                steep = True
            d, k = self.schur.direction(st, data.tau, self.s, steep)
            lin += k
            # a trust region per node: |dphi_i| <= 5 / beta, i.e. rho changes by at most about e^5 per
            # iteration. Far from the solution a node with little mass (a tail in a steep potential) can ask
            # for a huge step that the exponential rho(q) turns into a spike; near the solution the Newton
            # step is far inside the region and the iteration stays quadratic
            cap = 5.0 * self.energy.eps
            clipped = np.clip(d, -cap, cap)
            slope = self.comm.allreduce(float(-st["G"] @ clipped[: self.n]))
            if slope > 0:
                d = clipped
            else:
                slope = self.comm.allreduce(float(-st["G"] @ d[: self.n]))   # grad l . d > 0
            alpha, accepted = 1.0, False
            for _ in range(30):
                trial = self.state(data, st["phi"] + alpha * d)
                ok = math.isfinite(trial["dual"]) and np.all(np.isfinite(trial["rho"]))
                slack = 1e-13 * (abs(st["dual"]) + 1.0)
                if ok and (trial["dual"] >= st["dual"] + 1e-4 * alpha * slope - slack
                           or trial["res"] < 0.5 * st["res"]):
                    accepted = True
                    break
                alpha *= 0.5
            if not accepted:
                break                                                       # stagnation: reported by the caller
            st = trial
        return st, its, lin, steep

    def solve(self, data: StepData, phi, budget: int, tol: float, depth: int = 8):
        """The step of data.tau from phi (None: the predictor's first guess, or data.previous). If Newton has
        not converged after 20 iterations (a first guess far from the solution: a steep potential's tail that
        the step moves far), the step tau / 2 is solved first (recursively, at most `depth` halvings) and its
        phi starts tau: a homotopy in tau that the usual step never needs.

        Parameters
        ----------
        data : StepData
        phi : numpy.ndarray, shape (n + n_extra,), or None
            The first guess (None: the predictor's, or data.previous without the predictor).
        budget : int
            The most Newton iterations, all halvings together.
        tol : float
        depth : int

        Returns
        -------
        state : dict
        iterations, linear_iterations : int
        steep : bool
            The run's steep flag after this solve.
        """
        if phi is None and self.predictor:
            phi, steep = self.first_guess(data)
            data = dataclasses.replace(data, steep=steep)
        elif phi is None:
            phi = data.previous
        st, its, lin, steep = self.newton(data, phi, min(budget, 20) if depth else budget, tol)
        if st["res"] <= tol or depth == 0 or its >= budget:
            return st, its, lin, steep
        data = dataclasses.replace(data, steep=steep)
        half, i2, l2, steep = self.solve(dataclasses.replace(data, tau=0.5 * data.tau),
                                         None, budget - its, tol, depth - 1)
        st, i3, l3, steep = self.newton(dataclasses.replace(data, steep=steep), half["phi"],
                                        max(budget - its - i2, 0), tol)
        return st, its + i2 + i3, lin + l2 + l3, steep
