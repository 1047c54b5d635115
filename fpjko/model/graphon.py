"""Noisy SGD on large symmetric matrices and its graphon McKean-Vlasov limit, as a model of its own kind.

The "particles" are the entries of an n x n symmetric matrix trained by projected noisy gradient descent
W <- P_[a,b](W - tau DR(W) + sigma tau^(1/2) Z) (fpjko.samplers.graphon); its limit is one reflected 1D
Fokker-Planck law per block (u, v) of a K x K partition, coupled through their means Gamma
(fpjko.solvers.GraphonMcKeanVlasov). The study's distance is the W1 distance between the empirical law of the
entries of each block and the block's law, averaged over the blocks (n a multiple of K); the mean error compares
the blocks' mean entries with Gamma. validate() runs it like any model: the FE floor compares the laws on grids of
spacing h and h/2.
"""

from __future__ import annotations

import numpy as np

from fpjko.common import checks


class GraphonReference:
    """The blocks' laws at time t: the distances of a matrix's entries to them.

    Parameters
    ----------
    solver : fpjko.solvers.GraphonMcKeanVlasov
    """

    names = ("block W1", "mean error")

    def __init__(self, solver):
        K = self.K = solver.n
        self.x = solver.x
        self.cdfs = {}
        for i in range(K):
            for j in range(K):
                x, r = solver.cell_law(i, j)
                c = np.concatenate([[0.0], np.cumsum(0.5 * (r[1:] + r[:-1]) * np.diff(x))])
                self.cdfs[i, j] = c / c[-1]
        self.gamma = solver.gamma_matrix()

    def _blocks(self, W: np.ndarray):
        n = W.shape[0]
        if n % self.K:
            raise ValueError(f"the matrix size n = {n} is not a multiple of the {self.K} x {self.K} blocks")
        b = n // self.K
        for i in range(self.K):
            for j in range(self.K):
                yield i, j, W[i * b:(i + 1) * b, j * b:(j + 1) * b].ravel()

    def distances(self, W: np.ndarray) -> dict:
        """Block W1 (averaged over the blocks) and the RMS error of the blocks' mean entries against Gamma.

        Parameters
        ----------
        W : numpy.ndarray, shape (n, n)

        Returns
        -------
        dict of str to float
        """
        from fpjko.metrics.distances import wasserstein_1d_cdf

        w1, err = [], []
        for i, j, vals in self._blocks(np.asarray(W, float)):
            w1.append(wasserstein_1d_cdf(vals, self.x, self.cdfs[i, j], 1))
            err.append(vals.mean() - self.gamma[i, j])
        return {"block W1": float(np.mean(w1)), "mean error": float(np.sqrt(np.mean(np.square(err))))}

    def floors(self, other: "GraphonReference") -> dict:
        """The same metrics between these laws and another solution's (the floor).

        Parameters
        ----------
        other : GraphonReference

        Returns
        -------
        dict of str to float
        """
        from fpjko.model.study import _w1_cdfs

        w1 = [_w1_cdfs(self.x, self.cdfs[k], other.x, other.cdfs[k]) for k in self.cdfs]
        return {"block W1": float(np.mean(w1)), "mean error": float(np.sqrt(np.mean((self.gamma - other.gamma) ** 2)))}


class GraphonModel:
    """Projected noisy gradient descent on symmetric matrices and its graphon McKean-Vlasov limit, for validate().

    Parameters
    ----------
    objective : fpjko.samplers.graphon.GraphonObjective
    blocks : int
        K: the limit's laws live on a K x K partition (a step graphon); the matrix sizes n are multiples of K.
    sigma : float
        The noise level (sigma tau^(1/2) Z per step).
    initial : float
        The initial matrix entries (a constant in the box).
    box : (float, float)
    name : str
    """

    d = 1

    def __init__(self, objective, blocks: int, sigma: float = 1.0, initial: float = 0.5, box=(0.0, 1.0),
                 name: str = "graphon"):
        self.objective, self.name = objective, str(name)
        self.blocks = checks.integer("blocks", blocks, 1)
        self.sigma = checks.positive_number("sigma", sigma)
        self.box = (checks.number("box[0]", box[0]), checks.number("box[1]", box[1]))
        self.initial = checks.number("initial", initial)
        if not self.box[0] <= self.initial <= self.box[1]:
            raise ValueError(f"the initial entries {initial} lie outside the box {self.box}")
        self.domain = (np.array([self.box[0]]), np.array([self.box[1]]))

    def mesh(self, comm, h: float):
        """The K x K mesh of [0, 1]^2 and the law grid's spacing h.

        Parameters
        ----------
        comm : mpi4py.MPI.Comm
        h : float

        Returns
        -------
        (dolfinx.mesh.Mesh, int)
            The mesh and the law grid's nodes nx.
        """
        from fpjko import meshes

        nx = int(round((self.box[1] - self.box[0]) / h)) + 1
        return meshes.unit_square(comm, self.blocks), max(nx, 3)

    def fokker_planck(self, mesh, dt: float = 1e-3, degree: int = 1, **kw):
        """The limit: GraphonMcKeanVlasov on the mesh from the constant initial entries (a point mass).

        Parameters
        ----------
        mesh : (dolfinx.mesh.Mesh, int)
            As mesh() returns it.
        dt : float
        degree : int
            Unused (the laws are P1 on their grid).
        **kw
            Ignored FE options (interaction_scheme, ...).

        Returns
        -------
        fpjko.solvers.GraphonMcKeanVlasov
        """
        from fpjko.solvers import GraphonMcKeanVlasov

        msh, nx = mesh
        s = GraphonMcKeanVlasov(msh, self.objective, dt=dt, box=self.box, nx=nx, sigma=self.sigma)
        s.set_initial(lambda u, v: self.initial + 0 * u)
        return s

    def reference(self, solver) -> GraphonReference:
        """The distances to the solver's laws.

        Parameters
        ----------
        solver : fpjko.solvers.GraphonMcKeanVlasov

        Returns
        -------
        GraphonReference
        """
        return GraphonReference(solver)

    def particles(self, n: int, seed: int = 0, comm=None, dt: float = 1e-3, t_end: float = 1.0):
        """An n x n matrix trained by projected noisy gradient descent to t_end (the same on every rank).

        Parameters
        ----------
        n : int
            A multiple of the blocks K.
        seed : int
        comm : mpi4py.MPI.Comm, optional
            Unused: every rank computes the same matrix.
        dt : float
            The step tau.
        t_end : float

        Returns
        -------
        streams : None
        W : numpy.ndarray, shape (n, n)
        """
        from fpjko.common import sizes
        from fpjko.common.collective import same_everywhere
        from fpjko.samplers.graphon import gradient_descent

        same_everywhere(comm, "GraphonModel.particles", {"model": self, "n": n, "seed": seed, "dt": dt,
                                                         "t_end": t_end})
        n = checks.integer("n", n, 1)
        sizes.check_memory(f"an n x n matrix with n = {n}", 8.0 * 6 * n * n, "take a smaller n")
        if n % self.blocks:
            raise ValueError(f"the matrix size n = {n} is not a multiple of the {self.blocks} blocks")
        W0 = np.full((n, n), self.initial)
        out = gradient_descent(W0, self.objective, dt, t_end, box=self.box, sigma=self.sigma, seed=seed,
                               record_every=10**9)
        return None, out["W"]
