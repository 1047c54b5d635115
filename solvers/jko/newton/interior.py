"""The primal-dual interior-point Newton method of a NewtonJKO step without entropy (porous medium alone)."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI


class InteriorPoint:
    """Primal-dual interior-point Newton in (rho, phi) with the barrier -mu sum m_i log rho_i.

    mu goes from 1e-2 q* to tol q* by factors 0.2 (q* = k max(rho_k)^(m-1), the pressure scale), from rho_k
    floored at 1e-3 max(rho_k), with fraction-to-the-boundary steps and backtracking on the residual norm: the
    porous medium without entropy, whose rho vanishes on a region. (The dual iteration used with an entropy
    cycles here between active sets at the free boundary, where rho(q) has a kink.) About 35 iterations per step
    for m = 2 and 3, independent of h (measured in tests/test_jko_newton.py).

    Parameters
    ----------
    graph : EdgeGraph
    energy : Energy
        With eps = 0 and a porous-medium exponent m.
    schur : SchurSystem
    s : float
        The mobility's weight of the new density.
    tol : float
        The stopping test (relative to the mass and to q*), also the last mu / q*.
    """

    def __init__(self, graph, energy, schur, s: float, tol: float):
        self.graph, self.energy, self.schur, self.s, self.tol = graph, energy, schur, s, tol
        self.comm, self.n = graph.comm, graph.n

    def state(self, data, rho: np.ndarray, phi: np.ndarray, mu: float, qscale: float) -> dict:
        """Residuals of the barrier problem at (rho, phi): G (mass balance) and
        H = m (V + psi + e'(rho) - mu / rho - phi) - tau s/4 sum_j w (phi_i - phi_j)^2.

        Parameters
        ----------
        data : StepData
        rho, phi : numpy.ndarray, shape (n + n_extra,)
        mu : float
            The barrier parameter.
        qscale : float
            The pressure scale q*.

        Returns
        -------
        dict
            rho, phi, G, H, drho (shape (n,)), dphi, th (shape (n_edges,)), and the floats merit (the residual
            norm), res (the stopping test's defect) and kin (the kinetic sum).
        """
        g, en, s = self.graph, self.energy, self.s
        ei, ej, w, n = g.ei, g.ej, g.w, self.n
        mo, r = g.ml[:n], rho[:n]
        dphi = phi[ei] - phi[ej]
        rk = data.rk
        rbar = (1 - s) * rk + s * rho
        th = 0.5 * (rbar[ei] + rbar[ej])
        G = mo * (r - rk[:n]) + data.tau * np.bincount(ei, w * th * dphi, minlength=n)
        e1 = en.V_nodal[:n] + data.psi + en.cm * en.m / (en.m - 1) * r ** (en.m - 1) - mu / r
        e2 = en.cm * en.m * r ** (en.m - 2) + mu / (r * r)
        H = mo * (e1 - phi[:n]) - 0.25 * data.tau * s * np.bincount(ei, w * dphi * dphi, minlength=n)
        loc = np.array([float(np.sum((G * G + H * H) / mo)), float(np.abs(G).sum()), float(np.abs(r * H).sum()),
                        float(np.sum(w * th * dphi * dphi))])
        tot = self.comm.allreduce(loc, op=MPI.SUM)
        return dict(rho=rho, phi=phi, G=G, H=H, drho=1.0 / e2, dphi=dphi, th=th, merit=math.sqrt(tot[0]),
                    res=max(tot[1], tot[2] / qscale) / data.mass, kin=tot[3])

    def solve(self, data, phi: np.ndarray, budget: int):
        """The step from phi, until the defect and mu meet the tolerance or `budget` iterations.

        Parameters
        ----------
        data : StepData
        phi : numpy.ndarray, shape (n + n_extra,)
        budget : int

        Returns
        -------
        state : dict
            The last iterate (see `state`).
        iterations, linear_iterations : int
        converged_mu : bool
            The barrier parameter reached its end value tol q*.
        """
        g, n = self.graph, self.n
        rk = data.rk
        top = g.max(rk)
        qscale = self.energy.cm * self.energy.m / (self.energy.m - 1) * top ** (self.energy.m - 1)
        mu, mu_end = 1e-2 * qscale, self.tol * qscale
        rho = g.ghost(np.maximum(rk[:n], 1e-3 * top))

        def direction(st):
            d, k, drho = self.schur.direction(st, data.tau, self.s, False)
            return [drho], d, k

        st, its, lin, mu = barrier_newton(
            lambda r, p, m: self.state(data, r[0], p, m, qscale), direction,
            lambda st, a, dr, dp: ([g.ghost(st["rho"][:n] + a * dr[0])], st["phi"] + a * dp),
            lambda st: [st["rho"]], [rho], phi, mu, mu_end, qscale, self.tol, budget, self.comm, n)
        return st, its, lin, mu <= self.tol * qscale


def barrier_newton(state, direction, move, rhos, rho, phi, mu: float, mu_end: float, qscale: float, tol: float,
                   budget: int, comm, n: int, to_boundary: bool = True):
    """The interior-point Newton loop shared by the one-step and the K-step JKO solvers: at each barrier mu, Newton
    steps until the defect is <= max(tol, mu / q*), then mu falls by 5 down to mu_end; a step is cut to 0.995 of the
    largest that keeps every density positive (fraction to the boundary; not with to_boundary=False, where
    `move` keeps the densities positive itself) and halved until the residual norm falls
    (at most 40 halvings; then the loop stops and the caller reports it).

    Parameters
    ----------
    state : callable
        state(rho_parts, phi, mu) -> dict with 'rho', 'phi', 'merit', 'res'.
    direction : callable
        direction(st) -> (list of d rho (n,), d phi, Krylov iterations).
    move : callable
        move(st, alpha, drho_parts, dphi) -> (rho_parts, phi) of the trial point.
    rhos : callable
        rhos(st) -> the list of the iterate's densities (edge layouts), in the order of drho_parts.
    rho : list of numpy.ndarray
    phi : numpy.ndarray or list
    mu, mu_end, qscale, tol : float
    budget : int
    comm : mpi4py.MPI.Comm
    n : int
        Owned nodes.
    to_boundary : bool
        Cut each step to the boundary of rho > 0 (False: `move` keeps the densities positive).

    Returns
    -------
    state : dict
    iterations, linear_iterations : int
    mu : float
        The last barrier parameter.
    """
    st = state(rho, phi, mu)
    its = lin = 0
    while its < budget:
        if st["res"] <= max(tol, mu / qscale):
            if mu <= mu_end:
                break
            mu = max(0.2 * mu, mu_end)
            st = state(rhos(st), st["phi"], mu)
            continue
        its += 1
        drho, dphi, k = direction(st)
        lin += k
        alpha, accepted = 1.0, False
        if to_boundary:
            amax = math.inf
            for r, dr in zip(rhos(st), drho):
                neg = dr < 0
                amax = min(amax, float(np.min(-r[:n][neg] / dr[neg], initial=np.inf)))
            alpha = min(1.0, 0.995 * comm.allreduce(amax, op=MPI.MIN))
        for _ in range(40):
            trial = state(*move(st, alpha, drho, dphi), mu)
            if math.isfinite(trial["merit"]) and trial["merit"] <= (1 - 1e-4 * alpha) * st["merit"]:
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            break
        st = trial
    return st, its, lin, mu
