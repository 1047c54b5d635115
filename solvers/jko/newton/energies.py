"""The discrete energy of a NewtonJKO step and its pointwise inverse: E_h, W * rho, e'(rho) = q, the mass shift."""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

from fpjko.common.warn import warn
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, PolynomialInteraction, kernel_sum


class Energy:
    """E_h(rho) = sum_i m_i (V_i rho_i + eps rho_i log rho_i + cm rho_i^m / (m - 1))
    + 1/2 sum_ij m_i m_j W(x_i - x_j) rho_i rho_j on an EdgeGraph.

    Parameters
    ----------
    graph : EdgeGraph
        The nodes and their control volumes.
    potential : numpy.ndarray, shape (n,)
        V at the owned nodes.
    eps : float
        The entropy's coefficient beta^-1 (0: none).
    m : float or None
        The porous-medium exponent (> 1), None for none.
    cm : float
        The porous-medium coefficient.
    W : None, PolynomialInteraction, KernelInteraction or callable
        The interaction: exact moment sums of a polynomial W; for a kernel the sum over the nodes by a grid and
        FFTs (KernelInteraction's method='fft', default: fpjko.kernels.GridConvolution over the nodes' bounding
        box, spacing as the FE interaction chooses it, O(n + G log G) per pass), or the direct double sum of a
        numpy W(z), z of shape (..., d) (method='direct' or a plain callable; O(n^2) per pass, no dense block).

    Attributes
    ----------
    V_nodal : numpy.ndarray, shape (n + n_extra,)
        The potential in the edge layout.
    """

    def __init__(self, graph, potential: np.ndarray, eps: float, m: float | None, cm: float, W=None):
        self.graph, self.comm, self.n, self.d = graph, graph.comm, graph.n, graph.d
        self.eps, self.m, self.cm, self.W = float(eps), m, cm, W
        self.V_nodal = graph.ghost(potential[: self.n])
        self.grid = None
        if isinstance(W, KernelInteraction):
            if W.method == "fft":
                volume = self.comm.allreduce(float(np.sum(graph.ml[: self.n])), op=MPI.SUM)
                self.grid = W.grid_over(self.comm, graph.X[: self.n, : self.d], volume, self.comm.allreduce(self.n))
            self.W = W = W.W
        if W is not None and not isinstance(W, PolynomialInteraction) and self.grid is None:
            self._xall = np.concatenate(self.comm.allgather(graph.X[: self.n, : self.d]))

    def convolve(self, rho: np.ndarray) -> np.ndarray:
        """(W * rho)_i = sum_j W(x_i - x_j) m_j rho_j over all nodes (each once), at the owned nodes.

        Parameters
        ----------
        rho : numpy.ndarray, shape (>= n,)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        own = slice(0, self.n)
        X = self.graph.X
        mr = self.graph.ml[own] * rho[own]
        if isinstance(self.W, PolynomialInteraction):
            Y = np.stack([np.prod(X[own, : self.d] ** np.array(b), axis=1) for b in self.W.moments], axis=1)
            mom = self.comm.allreduce(mr @ Y if self.n else np.zeros(len(self.W.moments)), op=MPI.SUM)
            Xg = np.stack([np.prod(X[own, : self.d] ** np.array(g), axis=1) for g in self.W.monomials], axis=1)
            return Xg @ (self.W.T @ mom)
        if self.grid is not None:
            return self.grid.apply(X[own, : self.d], X[own, : self.d], mr, self.comm)
        wts = np.concatenate(self.comm.allgather(mr))
        return kernel_sum(X[own, : self.d], self._xall, wts, self.W)

    def psi(self, rho: np.ndarray) -> np.ndarray:
        """W * rho at the owned nodes (zeros without an interaction).

        Parameters
        ----------
        rho : numpy.ndarray, shape (>= n,)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        return self.convolve(rho) if self.W is not None else np.zeros(self.n)

    def local(self, r: np.ndarray, ent: float | None = None) -> np.ndarray:
        """The energy density without interaction at the owned nodes.

        Parameters
        ----------
        r : numpy.ndarray, shape (n,)
        ent : float, optional
            The entropy's coefficient (default eps).

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        ent = self.eps if ent is None else ent
        e = self.V_nodal[: self.n] * r
        if ent:
            pos = r > 0
            e = e + ent * np.where(pos, r * np.log(np.where(pos, r, 1.0)), 0.0)
        if self.m is not None:
            e = e + self.cm * r ** self.m / (self.m - 1)
        return e

    def __call__(self, rho: np.ndarray) -> tuple[float, float]:
        """(E_h(rho), its interaction part), summed over ranks; rho of shape (>= n,)."""
        r, mo = rho[: self.n], self.graph.ml[: self.n]
        ei = 0.5 * float(np.sum(mo * r * self.convolve(rho))) if self.W is not None else 0.0
        tot = self.comm.allreduce(np.array([float(mo @ self.local(r)), ei]), op=MPI.SUM)
        return float(tot[0] + tot[1]), float(tot[1])

    def gradient(self, rho: np.ndarray) -> np.ndarray:
        """dE_h/drho / m_i at the owned nodes: the first guess of the potential phi.

        Where rho = 0: the entropy's limit, floored.

        Parameters
        ----------
        rho : numpy.ndarray, shape (>= n,)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        r = rho[: self.n]
        g = self.V_nodal[: self.n] + (self.convolve(rho) if self.W is not None else 0.0)
        if self.eps:
            g = g + self.eps * (np.log(np.maximum(r, 1e-300)) + 1.0)
        if self.m is not None:
            g = g + self.cm * self.m / (self.m - 1) * r ** (self.m - 1)
        return g

    def invert(self, q: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """rho with e'(rho) = q pointwise (e the energy density without potential, entropy coefficient eps).

        Parameters
        ----------
        q : numpy.ndarray, shape (k,)
        eps : float

        Returns
        -------
        rho, drho_dq : numpy.ndarray, shape (k,)
        """
        m = self.m
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

    def mass_shift(self, q: np.ndarray, eps: float, mass: float) -> float:
        """The constant c with sum_i m_i rho(q_i + c) = mass (scalar safeguarded Newton; the same on every rank).

        Parameters
        ----------
        q : numpy.ndarray, shape (n,)
        eps : float
            The entropy's coefficient of the inversion.
        mass : float
            The mass to impose.

        Returns
        -------
        float
        """
        mo, M = self.graph.ml[: self.n], mass
        if self.m is None:                          # rho(q + c) = rho(q) e^(c / eps): closed form
            top = self.comm.allreduce(float(np.max(q, initial=-np.inf)), op=MPI.MAX)
            r, _ = self.invert(q - top, eps)
            tot = self.comm.allreduce(float(mo @ r))
            return eps * math.log(M / tot) - top
        lo, hi, c = -np.inf, np.inf, 0.0
        for _ in range(200):
            r, dr = self.invert(q + c, eps)
            have, slope = self.comm.allreduce(np.array([float(mo @ r), float(mo @ dr)]), op=MPI.SUM)
            g = have - M
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
            warn(self.comm, f"NewtonJKO: the mass shift did not converge in 200 safeguarded Newton steps (relative "
                            f"mass error {abs(g) / M:.3e})", RuntimeWarning, stacklevel=3)
        return c
