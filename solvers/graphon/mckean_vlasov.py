"""The graphon McKean-Vlasov equation: the n -> infinity limit of noisy SGD on symmetric matrices.

On {U = u, V = v} an entry follows dX = -b(X; Gamma_t)(u, v) dt + sigma dB, reflected at the ends of the box
[a, b], with Gamma_t(u, v) = E[X_t | U = u, V = v]. The drift splits the objective's derivative into
    b(x; Gamma)(u, v) = DR_nonlocal(Gamma)(u, v) + lambda (x - W*(u, v)),
the part that depends on the entry only through integrals over other entries (edges, triangles, cycles:
they concentrate on Gamma) and the least-squares part that acts on the entry itself. The law
rho(t, u, v, x) solves, for every (u, v), the 1D Fokker-Planck equation

    rho_t = d_x(rho d_x Phi + D d_x rho),   Phi(x) = DR_nonlocal(Gamma)(u, v) x + lambda (x - W*)^2 / 2,
    D = sigma^2 / 2,   no flux at x = a and x = b,

coupled through Gamma(u, v) = int x rho dx. The (u, v) cells are the DG0 cells of dolfinx's n x n
quadrilateral mesh of [0, 1]^2, distributed over the ranks with the mesh; every cell carries one P1 law on
the same uniform grid of [a, b] (lumped masses; Scharfetter-Gummel fluxes, exact for the piecewise-linear
interpolant of Phi, so each cell's discrete stationary law is exp(-Phi / D) at the nodes and rho >= 0).
A step freezes Gamma (explicit coupling, first order in dt) and takes a backward-Euler step for every cell
at once (a batched tridiagonal solve, numpy); mass is conserved per cell to round-off. DR_nonlocal(Gamma)
is the kernel integral of fpjko.samplers.graphon on the gathered n x n array of Gamma.
"""

from __future__ import annotations


import dolfinx.fem
import dolfinx.mesh
import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.common import checks
from fpjko.common.collective import agree
from fpjko.samplers.graphon import GraphonObjective
from fpjko.solvers.core.protocol import Solver
from fpjko.solvers.fokker_planck.edge_averaged import bernoulli


def _bern(s):
    """B(s) = s / (e^s - 1) for all real s."""
    a = bernoulli(np.abs(s))
    return np.where(s >= 0, a, np.abs(s) + a)


def batched_tridiagonal(lower, diag, upper, rhs):
    """Solve many tridiagonal systems at once: arrays (c, k) (lower[:, 0] and upper[:, -1] unused)."""
    c, k = diag.shape
    cp = np.empty((c, k))
    dp = np.empty((c, k))
    cp[:, 0] = upper[:, 0] / diag[:, 0]
    dp[:, 0] = rhs[:, 0] / diag[:, 0]
    for i in range(1, k):
        den = diag[:, i] - lower[:, i] * cp[:, i - 1]
        cp[:, i] = upper[:, i] / den
        dp[:, i] = (rhs[:, i] - lower[:, i] * dp[:, i - 1]) / den
    x = np.empty((c, k))
    x[:, -1] = dp[:, -1]
    for i in range(k - 2, -1, -1):
        x[:, i] = dp[:, i] - cp[:, i] * x[:, i + 1]
    return x


class GraphonMcKeanVlasov(Solver):
    """One reflected 1D Fokker-Planck law per (u, v) cell, coupled through Gamma (the module doc).

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        A uniform n x n quadrilateral mesh of [0, 1]^2 (meshes.unit_square(comm, n)): the (u, v) cells, split
        over the ranks with it.
    objective : fpjko.samplers.graphon.GraphonObjective
    dt : float
        The time step (implicit in the 1D laws, Gamma lagged).
    box : (float, float)
        (a, b), the reflecting ends.
    nx : int
        Nodes of the 1D grid of [a, b].
    sigma : float
        The noise level (sigma tau^(1/2) Z per SGD step).
    record_every : int
        Steps between history records (and always the last step of run).

    Notes
    -----
    History: the core keys (mass: 1 + the largest |mass - 1| of the cell laws; energy: R(Gamma))
    and mass_error, edge_density, triangle_density of Gamma.
    """

    label = "graphon McKean-Vlasov steps"
    extra_keys = ("mass_error", "edge_density", "triangle_density")

    def __init__(self, mesh, objective: GraphonObjective, dt: float, box=(0.0, 1.0), nx: int = 101,
                 sigma: float = 1.0, record_every: int = 1):
        self._init_protocol(mesh.comm, None, locals())
        n = self.n = meshes.unit_square_cells(mesh)
        self.dt = checks.positive_number("dt", dt)
        self.record_every = checks.integer("record_every", record_every, 1)
        self.nx = checks.integer("nx", nx, 3)
        self.sigma = checks.positive_number("sigma", sigma)
        self.box = (checks.number("box[0]", box[0]), checks.number("box[1]", box[1]))
        if not self.box[0] < self.box[1]:
            raise ValueError(f"box must be an interval a < b, got {box}")
        self.objective = objective
        self.mesh = mesh
        self.V = dolfinx.fem.functionspace(self.mesh, ("DG", 0))
        self.gamma = dolfinx.fem.Function(self.V, name="Gamma")
        self.nc = self.V.dofmap.index_map.size_local
        X = self.V.tabulate_dof_coordinates()[: self.nc, :2]
        self._ij = np.clip(np.floor(X * n).astype(int), 0, n - 1)
        self.x = np.linspace(*self.box, self.nx)
        self.hx = self.x[1] - self.x[0]
        self.mx = np.full(self.nx, self.hx)
        self.mx[[0, -1]] = 0.5 * self.hx
        self.D = 0.5 * self.sigma ** 2
        self.rho = np.zeros((self.nc, self.nx))
        # the laws as one DG0 vector Function of nx components (what a checkpoint saves, keyed by cell)
        self._laws = dolfinx.fem.Function(dolfinx.fem.functionspace(self.mesh, ("DG", 0, (self.nx,))), name="laws")
        if objective.least_squares:                  # W* at the cell centres
            self._target = objective.target_matrix(n)[self._ij[:, 0], self._ij[:, 1]]
        else:
            self._target = np.zeros(self.nc)

    def set_initial(self, rho0) -> None:
        """Set the initial laws and start a new run.

        Parameters
        ----------
        rho0 : callable
            rho0(u, v, x) -> densities (numpy: u, v of shape (c, 1), x of shape (1, nx)), or W0(u, v) for a point
            mass at W0 (split between the two nearest nodes so that its mean is W0 exactly; W0 outside the box
            is an error).
        """
        Solver.set_initial(self, rho0)

    def _set_initial(self, rho0) -> None:
        u = (self._ij[:, 0:1] + 0.5) / self.n
        v = (self._ij[:, 1:2] + 0.5) / self.n
        try:
            vals = np.asarray(rho0(u, v, self.x[None, :]), float) * np.ones((self.nc, self.nx))
        except TypeError:
            w0 = np.asarray(rho0(u[:, 0], v[:, 0]), float) * np.ones(self.nc)
            out = ~((w0 >= self.box[0]) & (w0 <= self.box[1]))
            agree(self.comm, f"the initial point mass W0 = {w0[out][0]!r} lies outside the box {self.box}"
                  if out.any() else None)
            k = np.clip(np.floor((w0 - self.box[0]) / self.hx).astype(int), 0, self.nx - 2)
            f = np.clip((w0 - self.x[k]) / self.hx, 0.0, 1.0)
            vals = np.zeros((self.nc, self.nx))
            rows = np.arange(self.nc)
            vals[rows, k] = (1 - f) / self.mx[k]
            vals[rows, k + 1] += f / self.mx[k + 1]
        # the cells are split over the ranks: every rank raises if any has a bad law
        bad = not np.all(np.isfinite(vals)) or (vals.size and vals.min() < 0)
        agree(self.comm, f"initial laws must be finite and non-negative (min {np.nanmin(vals):.3g})" if bad else None)
        mass = vals @ self.mx
        agree(self.comm, "an initial law has zero mass" if np.any(mass <= 0) else None)
        self.rho = vals / mass[:, None]

    def means(self) -> np.ndarray:
        """Gamma at the owned cells: int x rho dx (lumped).

        Returns
        -------
        numpy.ndarray, shape (n_owned_cells,)
        """
        return self.rho @ (self.mx * self.x)

    def gamma_matrix(self) -> np.ndarray:
        """Gamma on every rank.

        Returns
        -------
        numpy.ndarray, shape (n, n)
        """
        parts = self.comm.allgather((self._ij, self.means()))
        G = np.empty((self.n, self.n))
        for ij, g in parts:
            G[ij[:, 0], ij[:, 1]] = g
        return G

    def _measure(self) -> dict:
        G = self.gamma_matrix()
        self.gamma.x.array[: self.nc] = G[self._ij[:, 0], self._ij[:, 1]]
        err = self.comm.allreduce(float(np.max(np.abs(self.rho @ self.mx - 1.0), initial=0.0)), op=MPI.MAX)
        R = self.objective
        energy = R.value(G, weights=np.full(self.n, 1.0 / self.n),
                         target=R.target_matrix(self.n) if R.least_squares else None)
        return {"mass": 1.0 + err, "energy": float(energy), "mass_error": err, "edge_density": float(G.mean()),
                "triangle_density": float(np.einsum("ij,jk,ki->", G, G, G)) / self.n ** 3}

    def _functions(self) -> dict:
        self._laws.x.array[: self.nc * self.nx] = self.rho.ravel()
        self._laws.x.scatter_forward()
        return {"laws": self._laws}

    def _restore(self, state: dict) -> None:
        self.rho = self._laws.x.array[: self.nc * self.nx].reshape(self.nc, self.nx).copy()

    def _fingerprint(self) -> dict:
        R = self.objective
        return {"n": self.n, "nx": self.nx, "sigma": self.sigma, "box": list(self.box),
                "objective": [R.edges, R.triangles, sorted((int(k), float(v)) for k, v in R.cycles.items()),
                              R.least_squares],
                "target_moments": self._target_moments()}

    def _target_moments(self) -> list:
        """W* over the cells (u, v their centres; each cell on one rank) against the test functions of
        fpjko.solvers.core.moments (1, W*, u, v, u^2, u v, v^2 and waves): a target and its reflection differ."""
        from fpjko.solvers.core import moments

        T, uv = self._target, (self._ij + 0.5) / self.n
        return moments.nodal(T, np.ones(len(T)), uv, self.comm)

    def _advance(self) -> dict:
        dt = self.dt
        R = self.objective
        G = self.gamma_matrix()
        a = R.nonlocal_gradient(G)[self._ij[:, 0], self._ij[:, 1]]                   # (c,)
        lam = float(R.least_squares)
        phi = a[:, None] * self.x[None, :] + 0.5 * lam * (self.x[None, :] - self._target[:, None]) ** 2
        s = (phi[:, 1:] - phi[:, :-1]) / self.D                                           # (c, nx - 1)
        k = self.D / self.hx
        out_r, in_l = k * _bern(s), k * _bern(-s)      # flux i -> i+1 = out_r rho_i - in_l rho_{i+1}
        diag = self.mx[None, :] / dt + np.zeros((self.nc, self.nx))
        diag[:, :-1] += out_r
        diag[:, 1:] += in_l
        upper = np.zeros((self.nc, self.nx))
        lower = np.zeros((self.nc, self.nx))
        upper[:, :-1] = -in_l
        lower[:, 1:] = -out_r
        rho = batched_tridiagonal(lower, diag, upper, self.rho * self.mx[None, :] / dt)
        bad = self.comm.allreduce(int(not np.all(np.isfinite(rho))), op=MPI.SUM)
        if bad:
            raise FloatingPointError(f"graphon McKean-Vlasov: non-finite laws after step {self.steps + 1} "
                                     f"(t={self.t + dt:.6g}, dt={dt:g}); reduce dt")
        self.rho = rho
        return {"converged": True, "iterations": 0}

    def cell_law(self, i: int, j: int):
        """The law of cell (i, j) wherever it lives (collective).

        Parameters
        ----------
        i, j : int

        Returns
        -------
        x : numpy.ndarray, shape (nx,)
        rho : numpy.ndarray, shape (nx,)
        """
        hit = np.flatnonzero((self._ij[:, 0] == i) & (self._ij[:, 1] == j))
        mine = self.rho[hit[0]] if len(hit) else None
        for r in self.comm.allgather(mine):
            if r is not None:
                return self.x, r
        raise ValueError(f"no cell ({i}, {j}) on an {self.n} x {self.n} mesh")
