"""The edge graph of a P1 mesh: control volumes, transmissibilities and the edge layout (NewtonJKO's geometry)."""

from __future__ import annotations

import dolfinx.fem
import dolfinx.fem.petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.common.warn import warn
from fpjko.meshes.builders import boundary_dofs
from fpjko.solvers.core import validation
from fpjko.solvers.fokker_planck.edge_averaged import lumped_mass


ISOTROPY_WARN = 0.05       # EdgeGraph warns above this mean isotropy defect (`isotropy_defect`)


def in_metric(dx: np.ndarray, D) -> np.ndarray:
    """Edge vectors in the metric of D: the rows D^(-1/2) (x_i - x_j), so that |.|^2 is (x_i - x_j)^T D^-1 (x_i - x_j).

    Parameters
    ----------
    dx : numpy.ndarray, shape (n_edges, d)
    D : numpy.ndarray, shape (d, d), or None
        A constant SPD metric (None: the identity, dx returned).

    Returns
    -------
    numpy.ndarray, shape (n_edges, d)
    """
    if D is None:
        return dx
    ev, U = np.linalg.eigh(D)
    return dx @ ((U / np.sqrt(ev)) @ U.T)


def control_volumes(V, ei: np.ndarray, dy: np.ndarray, w: np.ndarray, lumped: np.ndarray) -> np.ndarray:
    """The circumcentric dual volumes of a P1 mesh from its transmissibilities: the two-point scheme's control volumes.

    For a Delaunay simplex mesh the stiffness weight w_ij = -int grad phi_i . grad phi_j is |s_ij| / |x_i - x_j|, s_ij
    the face of the Voronoi (circumcentric) dual cells of i and j, which bisects the edge at right angles. The cell of
    i is the union of the pyramids from x_i over its faces, of heights |x_i - x_j| / 2, so its volume is
    m_i = (1/2d) sum_j w_ij |x_i - x_j|^2 (a boundary node's cell also has faces on the boundary, pyramids of height
    0). With a constant metric D the same holds in the coordinates D^(-1/2) x, whence the norm |.|_{D^-1}. These are
    the volumes with which the edge fluxes are consistent (Eymard-Gallouet-Herbin's admissible meshes; Maas's
    discrete transport): the mass balance m_i rho_i' + sum_j F_ij = 0 is a divergence, and the trace of
    (1/2 m_i) sum_j w_ij (x_j - x_i)(x_j - x_i)^T is d, so the discrete Hamilton-Jacobi term
    (1/4 m_i) sum_j w_ij (phi_i - phi_j)^2 is |grad phi|^2 / 2 for a linear phi where that tensor is the identity
    (`isotropy_defect`: at every interior node of the structured meshes and the 'crossed' rectangle, to about 0.01
    on meshes.disk). The lumped masses int phi_i (barycentric dual cells) equal these volumes at the interior nodes
    of the structured meshes but differ by up to a factor 2 on a 'crossed' rectangle (2/3 and 1/3 of h^2 against 1/2)
    and by 15-45% on a Delaunay disk, where a step with them did not converge as h -> 0 (docs/guide.md).

    The identity sum_(i != j in T) w^T_ij |x_i - x_j|^2 = 2 d |T| of each simplex T makes these volumes sum to the
    domain's on any simplex mesh. EdgeGraph uses them on meshes without a negative weight (Delaunay; in 3D not every
    Delaunay mesh), and the lumped masses on the others: there the signed circumcentric volumes are no tiling (two
    flat obtuse triangles of area 0.1 sharing their long edge: 2.5 at each apex, -2.4 at that edge's ends), the
    clipped weights' volumes exceed the domain's (a sheared mesh whose diagonals were all clipped: 1.8 times its
    area), and with clipped fluxes no choice of volumes was consistent (L1 0.47-0.85 on that mesh at every h). A
    node without a positive weight keeps its lumped mass (no flux reaches it).

    Parameters
    ----------
    V : dolfinx.fem.FunctionSpace
        The P1 space (its index map carries the ghosts).
    ei : numpy.ndarray of int, shape (n_edges,)
        Each directed edge's owned row.
    dy : numpy.ndarray, shape (n_edges, d)
        x_i - x_j along each edge in the metric D (`in_metric`).
    w : numpy.ndarray, shape (n_edges,)
        The transmissibilities (none negative).
    lumped : numpy.ndarray, shape (n_local,)
        The lumped masses (the fallback of a node without a positive weight).

    Returns
    -------
    numpy.ndarray, shape (n_local,)
        Owned values, then dolfinx's ghosts.
    """
    n, d = V.dofmap.index_map.size_local, V.mesh.geometry.dim
    vol = np.bincount(ei, weights=w * (dy * dy).sum(axis=1), minlength=n)[:n] / (2 * d)
    u = dolfinx.fem.Function(V)
    u.x.array[:n] = np.where(vol > 0, vol, lumped[:n])
    u.x.scatter_forward()
    return u.x.array.copy()


def isotropy_defect(V, ei: np.ndarray, dy: np.ndarray, w: np.ndarray, ml: np.ndarray) -> float:
    """The mean over the interior nodes, weighted by their volumes, of |D^(-1/2) T_i D^(-1/2) - I| (spectral norm),
    T_i = (1/2 m_i) sum_j w_ij (x_j - x_i)(x_j - x_i)^T (collective; 0.0 without interior nodes).

    For a smooth phi the two-point action (1/2) sum_ij w_ij theta_ij (phi_i - phi_j)^2 is locally
    sum_i m_i rho_i grad phi . T_i grad phi, the Benamou-Brenier action of the metric D only where T_i = D: the
    isotropy condition under which Gladbach, Kopfer and Maas (SIAM J. Math. Anal. 2020) show the discrete transport
    distances converge to W2. Measured: 0 on the
    structured meshes (interval, 'right' and 'crossed' rectangles, box, Q1 squares); on meshes.disk 0.044, 0.020,
    0.011, 0.0054, 0.0027 at 4, 8, 16, 32, 64 rings, falling as h; on Delaunay squares of a lattice jittered by
    0.1 h, 0.2 h, 0.3 h and of uniform random points 0.03, 0.06, 0.09 and 0.23 at every h, and there the L1 error of
    the Gaussian step of tests/test_jko_spacetime.py (l1_to_exact_2d) stalls at 0.020, 0.036, 0.048 and 0.083
    (h = 1/64 .. 1/128), where on the 'right' square it falls to 0.0025 at h = 1/128. EdgeGraph warns above
    ISOTROPY_WARN = 0.05.

    Parameters
    ----------
    V : dolfinx.fem.FunctionSpace
    ei : numpy.ndarray of int, shape (n_edges,)
    dy : numpy.ndarray, shape (n_edges, d)
        x_i - x_j along each edge in the metric D (`in_metric`).
    w : numpy.ndarray, shape (n_edges,)
        The transmissibilities (clipped).
    ml : numpy.ndarray, shape (n_local,)
        The control volumes.

    Returns
    -------
    float
    """
    n, d = V.dofmap.index_map.size_local, V.mesh.geometry.dim
    inner = np.ones(n, bool)
    inner[boundary_dofs(V)] = False
    T = np.zeros((n, d, d))
    np.add.at(T, ei, w[:, None, None] * dy[:, :, None] * dy[:, None, :])
    T /= 2 * ml[:n, None, None]
    dev = np.linalg.norm(T[inner] - np.eye(d), ord=2, axis=(1, 2)) if inner.any() else np.zeros(0)
    num, den = V.mesh.comm.allreduce(np.array([float(ml[:n][inner] @ dev), float(ml[:n][inner].sum())]))
    return num / den if den > 0 else 0.0


class EdgeGraph:
    """The directed edges (i owned, j) of the P1 stiffness pattern with their weights, in the edge layout.

    The edge layout of a nodal array is: the owned nodes, then the other columns of the owned rows (a PETSc
    scatter fills them; dolfinx's ghosts do not cover nodes that share only a vertex with this rank's cells).

    Parameters
    ----------
    V : dolfinx.fem.FunctionSpace
        P1 space on a simplex mesh of full dimension d.
    D : array_like, shape (d, d), optional
        A constant SPD metric: the weights are those of the D-weighted stiffness matrix (None: the identity).
    negative_weights : {'clip', 'error'}
        What to do with negative transmissibilities of a non-Delaunay mesh (isotropic case); with a D they
        are always an error.

    Attributes
    ----------
    n : int
        Owned nodes on this rank.
    X : numpy.ndarray, shape (n_local, 3)
        Dof coordinates (owned, then dolfinx's ghosts).
    ml : numpy.ndarray, shape (n_local,)
        Control volumes: the circumcentric (Voronoi) dual volumes m_i = (1/2d) sum_j w_ij |x_i - x_j|^2 in the
        metric D^-1 (`control_volumes`), owned then dolfinx's ghosts; the lumped masses on a mesh with a negative
        weight.
    lumped : numpy.ndarray, shape (n_local,)
        The lumped masses int phi_i. They equal ml at the interior nodes of the structured meshes (meshes.interval,
        rectangle with a 'right' or 'left' diagonal, box, l_shape) but not on a Delaunay mesh of scattered points
        or on a 'crossed' rectangle.
    isotropy_defect : float
        How far the edge graph is from W2's at the interior nodes (`isotropy_defect`; a warning above 0.05).
    ei, ej : numpy.ndarray of int, shape (n_edges,)
        Each directed edge's owned row i and its column j in the edge layout.
    w : numpy.ndarray, shape (n_edges,)
        Transmissibilities w_ij = -int D grad phi_i . grad phi_j >= 0.
    pattern : petsc4py.PETSc.Mat
        The stiffness matrix (its nonzero pattern is that of every matrix built on the graph).
    """

    def __init__(self, V, D=None, negative_weights: str = "clip"):
        self.V, self.comm = V, V.mesh.comm
        self.d = V.mesh.geometry.dim
        self.n = V.dofmap.index_map.size_local
        self.X = V.tabulate_dof_coordinates()
        self.lumped = lumped_mass(V)
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
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
        self.pattern = A
        self._indptr, self._cols = indptr, cols
        n = self.n
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        r0 = A.getOwnershipRange()[0]
        gcols = cols.astype(np.int64)
        owned = (gcols >= r0) & (gcols < r0 + n)
        extra = np.unique(gcols[~owned])
        lcols = np.where(owned, gcols - r0, n + np.searchsorted(extra, gcols))
        self._gvec = A.createVecRight()
        self._xvec = PETSc.Vec().createSeq(len(extra), comm=PETSc.COMM_SELF)
        iset = PETSc.IS().createGeneral(extra.astype(PETSc.IntType), comm=PETSc.COMM_SELF)
        self._scatter = PETSc.Scatter().create(self._gvec, iset, self._xvec, None)
        off = lcols != rows
        self._diag_pos = np.flatnonzero(~off)
        validation.raise_collectively(self.comm, None if len(self._diag_pos) == n else
                                      "stiffness pattern without a full diagonal", RuntimeError)
        self._off_pos = np.flatnonzero(off)
        self.ei, self.ej = rows[off], lcols[off]
        w = -vals[off]
        Xe = np.column_stack([self.ghost(self.X[:n, c]) for c in range(self.d)])   # edge layout
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
            warn(self.comm, f"JKO: the mesh is not Delaunay: {what}; clipped to 0 (the scheme stays convex, "
                       "positive and mass-conserving but loses consistency on those edges; the control volumes are "
                       "the lumped masses, as no circumcentric cells tile such a mesh)", RuntimeWarning, stacklevel=3)
        self.w = np.maximum(w, 0.0)
        dx = Xe[self.ei] - Xe[self.ej]
        self._elen = np.linalg.norm(dx, axis=1)
        dy = in_metric(dx, self.D)
        self.ml = self.lumped.copy() if nbad else control_volumes(V, self.ei, dy, w, self.lumped)
        self.isotropy_defect = isotropy_defect(V, self.ei, dy, self.w, self.ml)
        if self.isotropy_defect > ISOTROPY_WARN and not nbad:
            warn(self.comm, f"JKO: the mesh's edge graph is not isotropic: its mean isotropy defect at the interior "
                       f"nodes is {self.isotropy_defect:.3g} (0 on the structured and 'crossed' rectangles and boxes, "
                       f"0.02 .. 0.003 on meshes.disk at 8 .. 64 rings, falling with h); on such a mesh the discrete "
                       f"W2 is not W2 and the step's error stops falling with h (L1 floors of about 0.6 times the "
                       f"defect on a Gaussian step, for Delaunay squares of jittered or random points): use a mesh "
                       f"of a regular point lattice or of rings (meshes.rectangle, box, disk, l_shape)",
                 RuntimeWarning, stacklevel=3)
        self._row_start = np.flatnonzero(np.r_[True, np.diff(self.ei) != 0]) if len(self.ei) else np.zeros(0, int)
        self._rows_with_edges = self.ei[self._row_start] if len(self.ei) else np.zeros(0, int)

    def ghost(self, owned: np.ndarray) -> np.ndarray:
        """Owned values -> the edge layout. Collective.

        Parameters
        ----------
        owned : numpy.ndarray, shape (n,)

        Returns
        -------
        numpy.ndarray, shape (n + n_extra,)
            The owned values, then those of the other columns of the owned rows.
        """
        self._gvec.array[:] = owned
        self._scatter.scatter(self._gvec, self._xvec, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD)
        return np.concatenate([np.asarray(owned, float), self._xvec.array])

    def set_csr(self, M: PETSc.Mat, diag: np.ndarray, off: np.ndarray) -> None:
        """Fill a matrix of the graph's pattern and assemble it.

        Parameters
        ----------
        M : petsc4py.PETSc.Mat
        diag : numpy.ndarray, shape (n,)
        off : numpy.ndarray, shape (n_edges,)
            The edge values.
        """
        vals = np.empty(len(self._cols))
        vals[self._diag_pos] = diag
        vals[self._off_pos] = off
        M.setValuesCSR(self._indptr, self._cols, vals)
        M.assemble()

    def mass(self, r: np.ndarray) -> float:
        """sum_i m_i r_i over the owned nodes of every rank.

        Parameters
        ----------
        r : numpy.ndarray, shape (>= n,)

        Returns
        -------
        float
        """
        return self.comm.allreduce(float(self.ml[: self.n] @ r[: self.n]))

    def min(self, r: np.ndarray) -> float:
        """The global minimum of r over the owned nodes (inf where no rank owns a node).

        Parameters
        ----------
        r : numpy.ndarray, shape (>= n,)

        Returns
        -------
        float
        """
        return self.comm.allreduce(float(r[: self.n].min(initial=np.inf)), op=MPI.MIN)

    def max(self, r: np.ndarray) -> float:
        """The global maximum of r over the owned nodes, and at least 0.

        Parameters
        ----------
        r : numpy.ndarray, shape (>= n,)

        Returns
        -------
        float
        """
        return self.comm.allreduce(float(np.max(r[: self.n], initial=0.0)), op=MPI.MAX)

    def touches(self, mask: np.ndarray) -> np.ndarray:
        """Which owned nodes have a neighbour in `mask` (collective).

        Parameters
        ----------
        mask : numpy.ndarray of bool, shape (n,)

        Returns
        -------
        numpy.ndarray of bool, shape (n,)
        """
        near = self.ghost(np.asarray(mask, float)) > 0.5
        return np.bincount(self.ei, near[self.ej], minlength=self.n) > 0

    def dilate(self, mask: np.ndarray, rings: int) -> np.ndarray:
        """`mask` with the nodes within `rings` edges of it (collective).

        Parameters
        ----------
        mask : numpy.ndarray of bool, shape (n,)
        rings : int

        Returns
        -------
        numpy.ndarray of bool, shape (n,)
        """
        for _ in range(rings):
            mask = mask | self.touches(mask)
        return mask

    def connected(self, cand: np.ndarray, seed: np.ndarray) -> np.ndarray:
        """The nodes of `cand` connected within it to a node of `seed` (collective): each rank's components
        (scipy.sparse.csgraph), joined across ranks through the ghost edges until none is added.

        Parameters
        ----------
        cand, seed : numpy.ndarray of bool, shape (n,)

        Returns
        -------
        numpy.ndarray of bool, shape (n,)
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.n
        inner = self.ej < n
        both = inner & cand[self.ei] & cand[np.where(inner, self.ej, 0)]
        if n:
            _, lab = connected_components(coo_matrix((np.ones(int(both.sum())), (self.ei[both], self.ej[both])),
                                                     shape=(n, n)), directed=False)
        else:
            lab = np.zeros(0, np.int64)
        on = np.zeros(int(lab.max(initial=-1)) + 1, bool)
        on[lab[seed & cand]] = True
        while True:
            near = self.ghost((cand & on[lab]).astype(float)) > 0.5
            hit = np.unique(lab[self.ei[~inner & cand[self.ei] & near[self.ej]]])
            new = hit[~on[hit]]
            on[new] = True
            if not self.comm.allreduce(len(new)):
                return cand & on[lab]

    def envelope(self, phi: np.ndarray, source: np.ndarray, L: float) -> np.ndarray:
        """phi on the `source` nodes, elsewhere its L-Lipschitz (McShane) extension min_k phi_k + L d(i, k) over
        the graph (edge lengths |x_i - x_j|): Bellman-Ford sweeps until nothing changes on any rank.

        Parameters
        ----------
        phi : numpy.ndarray, shape (>= n,)
        source : numpy.ndarray of bool, shape (n,)
        L : float

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        n, big = self.n, np.inf
        val = np.where(source, phi[:n], big)
        for _ in range(10 * n + 10):
            v = self.ghost(val)
            cand = np.full(n, big)
            if len(self.ei):
                cand[self._rows_with_edges] = np.minimum.reduceat(v[self.ej] + L * self._elen, self._row_start)
            new = np.minimum(val, cand)
            changed = self.comm.allreduce(int(np.count_nonzero(new < val)))
            val = new
            if not changed:
                break
        return val

    def destroy(self) -> None:
        """Destroy the PETSc objects."""
        for obj in (self.pattern, self._gvec, self._xvec, self._scatter):
            obj.destroy()
