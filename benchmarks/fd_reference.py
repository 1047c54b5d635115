"""A plain finite-difference Fokker-Planck solver on a uniform grid (numpy + scipy.sparse).

The same discretisation as fplanck (square-root-approximation jump rates between neighbouring
cells, D/h^2 exp(-beta dU/2), reflecting walls), advanced by Crank-Nicolson with one sparse LU.
fplanck 0.2.2 itself calls np.product, removed in numpy 2, so it does not run on Debian trixie.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


class FiniteDifferenceFP:
    def __init__(self, potential, beta: float, lower, upper, n: int):
        self.beta = beta
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        self.d = len(self.lower)
        self.h = (self.upper - self.lower) / n
        axes = [self.lower[i] + (np.arange(n) + 0.5) * self.h[i] for i in range(self.d)]
        self.grid = np.meshgrid(*axes, indexing="ij")
        self.shape = (n,) * self.d
        U = potential(*self.grid)
        N = U.size
        idx = np.arange(N).reshape(self.shape)
        rows, cols, vals = [], [], []
        for ax in range(self.d):
            D = 1.0 / beta / self.h[ax] ** 2
            a = [slice(None)] * self.d
            b = [slice(None)] * self.d
            a[ax], b[ax] = slice(0, -1), slice(1, None)
            i, j = idx[tuple(a)].ravel(), idx[tuple(b)].ravel()
            dU = (U[tuple(b)] - U[tuple(a)]).ravel()
            r_ij = D * np.exp(-beta * dU / 2)        # rate i -> j
            r_ji = D * np.exp(beta * dU / 2)         # rate j -> i
            rows += [j, i, i, j]
            cols += [i, j, i, j]
            vals += [r_ij, r_ji, -r_ij, -r_ji]
        self.L = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N, N))
        self.cell = float(np.prod(self.h))

    def solve(self, p0: np.ndarray, t_end: float, dt: float) -> tuple[np.ndarray, dict]:
        """Crank-Nicolson from the density values p0 (on the grid) to t_end."""
        t0 = time.perf_counter()
        nsteps = int(round(t_end / dt))
        I = sp.identity(self.L.shape[0], format="csc")
        lu = spla.splu((I - 0.5 * dt * self.L).tocsc())
        B = (I + 0.5 * dt * self.L).tocsr()
        p = p0.ravel().copy()
        for _ in range(nsteps):
            p = lu.solve(B @ p)
        return p.reshape(self.shape), {"steps": nsteps, "seconds": time.perf_counter() - t0}
