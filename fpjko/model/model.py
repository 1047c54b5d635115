"""A mean-field model declared once: its particles, its PDEs and their structure from one set of formulas.

    dX_i = (-grad V(X_i) - (1/n) sum_j grad W(X_i - X_j) + b(X_i)) dt + sqrt(2/beta D(X_i)) dB_i,   i = 1..n,

each particle with its own Brownian motion, whose empirical measure converges to the McKean-Vlasov equation

    rho_t = div(rho grad(V + W * rho) - rho b + beta^-1 div(D rho)),   (div(D rho))_i = sum_j d_j(D_ij rho),

with no flux through the boundary of the domain. Each field is given once (a formula as text, a number, a
sympy expression, or lists of those); sympy derives what each side needs: the UFL form of V, D, b for the finite
elements, vectorised numpy functions and exact derivatives (grad V, grad W, D) for the particles, and the
energy for JKO. The structure is read from the formulas: a W = k|z|^2/2 gives the O(n) particle force and the
exact moment path, another polynomial W the moment path, any other W the kernel sums; a constant D the
constant-operator FE path; JKO exists for a gradient flow (b = 0, D = c I), the Gibbs density
exp(-beta V)/Z for D = I, b = 0, W = 0, the mean-field fixed point for D = I, b = 0 with W.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from fpjko.common import checks
from fpjko.model.expressions import ExpressionError, field

_UFL_NAMES = ("exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh", "atan", "erf")


def _ufl_module() -> dict:
    import ufl

    m = {name: getattr(ufl, "ln" if name == "log" else name) for name in _UFL_NAMES}
    m.update({"Abs": abs, "pi": math.pi, "E": math.e})
    return m


def _numpy_fn(expr, syms):
    """A vectorised numpy function of the columns (arrays of one shape) for a sympy scalar; constants broadcast."""
    f = sp.lambdify(syms, expr, modules="numpy")

    def call(*cols):
        v = np.asarray(f(*cols), dtype=float)
        return np.broadcast_to(v, np.shape(cols[0])) if v.shape != np.shape(cols[0]) else v
    return call


def box_mesh(comm, domain, h: float):
    """The mesh of a box domain: an interval, rectangle or box of cell size h.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
    domain : (lower, upper)
        Arrays of length d = 1, 2 or 3.
    h : float

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    from fpjko import meshes

    lo, hi = (np.atleast_1d(np.asarray(v, float)) for v in domain)
    if len(lo) == 1:
        return meshes.interval(comm, lo[0], hi[0], h)
    return meshes.rectangle(comm, lo, hi, h) if len(lo) == 2 else meshes.box(comm, lo, hi, h)


def gaussian_law(initial: dict, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The checked (mean, cov) of an initial Gaussian {'mean': (d,), 'cov': number or (d, d)}.

    Parameters
    ----------
    initial : dict
    d : int

    Returns
    -------
    mean : numpy.ndarray, shape (d,)
    cov : numpy.ndarray, shape (d, d)
        Symmetric positive definite.
    """
    mean = np.atleast_1d(np.asarray(initial.get("mean", np.zeros(d)), float))
    cov = np.asarray(initial.get("cov", 1.0), float)
    cov = cov * np.eye(d) if cov.ndim == 0 else cov
    if mean.shape != (d,) or cov.shape != (d, d):
        raise ValueError(f"initial mean of shape ({d},) and cov a number or ({d}, {d}), got "
                         f"{mean.tolist()}, {cov.tolist()}")
    if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
        raise ValueError(f"initial cov must be symmetric positive definite, got {cov.tolist()}")
    return mean, cov


def sample_gaussian(streams, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """This rank's particles from N(mean, cov), each block from its own stream (the same on any rank count).

    Parameters
    ----------
    streams : fpjko.samplers.streams.Streams
    mean : numpy.ndarray, shape (d,)
    cov : numpy.ndarray, shape (d, d)

    Returns
    -------
    numpy.ndarray, shape (streams.n_local, d)
    """
    L = np.linalg.cholesky(cov)
    return streams.sample(lambda g, k: mean + g.standard_normal((k, len(mean))) @ L.T)


class Model:
    """A mean-field model declared once (see the module doc).

    Parameters
    ----------
    d : int
        The dimension (1, 2 or 3).
    V : str, number or sympy expression
        The potential in the symbols x0, x1, ... (also x, y, z for d <= 3), e.g. '(x**2 - 1)**2 + 0.5*y**2'.
    W : str, number, array_like (d, d) or sympy expression, optional
        The interaction W(z), in z0, z1, ... (also z for d = 1); a number k means k |z|^2 / 2, a matrix K
        means z^T K z / 2. W must be even, W(z) = W(-z).
    D : number, array_like (d, d) or (d, d) formulas, optional
        The diffusion matrix (None: the identity; a number c: c I); symmetric and positive definite on the domain.
    b : (d,) formulas, optional
        A drift that need not be a gradient (the total drift is -grad V + b).
    beta : float
        The inverse temperature.
    initial : dict, optional
        The initial law: {'mean': (d,), 'cov': number or (d, d)} (a Gaussian) or {'density': formula in x}
        (normalised on the domain; the particles sample it by rejection). Default: the standard Gaussian.
    domain : (lower, upper), optional
        The box of the finite elements (lower, upper of length d); also where D is checked.
    name : str

    Attributes
    ----------
    interaction_kind : {None, 'quadratic', 'polynomial', 'kernel'}
    gradient_flow : bool
        b = 0 and D = c I (or no D): the W2 gradient flow of F (at temperature c / beta), so JKO applies. A constant
        anisotropic D is not: the JKO step in the D^-1 metric is the preconditioned flow
        div(rho D grad(V + W * rho + beta^-1 log rho)), not this model's.
    D_scale : float or None
        c for D = c I, else None.
    gibbs : bool
        D = I, b = 0, W = 0: the stationary density is exp(-beta V) / Z.
    """

    def __init__(self, d: int, V=0, W=None, D=None, b=None, beta: float = 1.0, initial: dict | None = None,
                 domain=None, name: str = "model"):
        self.d = checks.integer("d", d, 1)
        if self.d > 3:
            raise ValueError(f"a model has dimension 1, 2 or 3, got d={d}")
        self.name = str(name)
        self.beta = checks.positive_number("beta", beta)
        self.xs = sp.symbols(" ".join(f"x{i}" for i in range(self.d)) + " _", real=True)[: self.d]
        self.zs = sp.symbols(" ".join(f"z{i}" for i in range(self.d)) + " _", real=True)[: self.d]
        xsym = {f"x{i}": s for i, s in enumerate(self.xs)}
        xsym.update(dict(zip(("x", "y", "z"), self.xs)))
        zsym = {f"z{i}": s for i, s in enumerate(self.zs)}
        if self.d == 1:
            zsym["z"] = self.zs[0]
        self._xsym, self._zsym = xsym, zsym
        self.domain = None if domain is None else self._box(domain)
        # ---- V
        self.V = field(V, xsym, "V")
        self.grad_V_expr = [sp.diff(self.V, s) for s in self.xs]
        # ---- W
        self.W, self.interaction_kind, self.k = self._interaction(W)
        # ---- D and b
        self.D = self._diffusion(D)
        self.b = None if b is None else field(b, xsym, "b", (self.d,))
        self.D_constant = self.D is None or not self.D.free_symbols
        # D = c I (constant): the W2 gradient flow of F at temperature c / beta. A constant anisotropic D is not one:
        # div(rho grad V + beta^-1 D grad rho) needs D grad log rho to be a gradient; the JKO step in the D^-1
        # metric is the preconditioned flow div(rho D grad(V + W * rho + beta^-1 log rho)), another model
        self.D_scale = None if self.D is None else (float(self.D[0, 0]) if self.D_constant and self.D ==
                                                    self.D[0, 0] * sp.eye(self.d) else None)
        self.gradient_flow = self.b is None and (self.D is None or self.D_scale is not None)
        self.gibbs = self.D is None and self.b is None and self.W is None
        self.initial = self._initial(initial)

    # ------------------------------------------------------------------ declaration
    def _box(self, domain):
        lower, upper = (np.atleast_1d(np.asarray(v, float)) for v in domain)
        if lower.shape != (self.d,) or upper.shape != (self.d,) or not np.all(lower < upper):
            raise ValueError(f"domain must be (lower, upper) with lower < upper of length {self.d}, got {domain!r}")
        return lower, upper

    def _interaction(self, W):
        if W is None:
            return None, None, None
        z = sp.Matrix(self.zs)
        if isinstance(W, (int, float)) and not isinstance(W, bool) or np.ndim(W) == 2:
            K = np.atleast_2d(np.asarray(W, float)) * (np.eye(self.d) if np.ndim(W) == 0 else 1.0)
            if K.shape != (self.d, self.d) or not np.all(np.isfinite(K)):
                raise ValueError(f"W as a matrix must be a finite ({self.d}, {self.d}) matrix, got {W!r}")
            expr = sp.expand((z.T * sp.Matrix(0.5 * (K + K.T)) * z)[0, 0] / 2)
        else:
            expr = sp.expand(field(W, self._zsym, "W"))
        # an interaction potential is even: W(z) = W(-z)
        odd = sp.simplify(expr - expr.subs({s: -s for s in self.zs}, simultaneous=True))
        if odd != 0:
            pts = np.random.default_rng(0).uniform(-2, 2, (8, self.d))
            f = sp.lambdify(self.zs, expr, "numpy")
            vals = [(p, float(f(*p)), float(f(*-p))) for p in pts]
            p, a, c = max(vals, key=lambda v: abs(v[1] - v[2]))
            raise ValueError(f"W must be even, W(z) = W(-z): W({np.round(p, 4).tolist()}) = {a:.6g} but "
                             f"W(-z) = {c:.6g} (W = {expr})")
        kind, k = "kernel", None
        if expr.is_polynomial(*self.zs):
            kind = "polynomial"
            poly = sp.Poly(expr, *self.zs)
            terms = dict(poly.terms())
            sq = [tuple(2 if j == i else 0 for j in range(self.d)) for i in range(self.d)]
            c0 = terms.get(sq[0])
            if c0 is not None and set(terms) <= set(sq) | {(0,) * self.d} and all(terms.get(s) == c0 for s in sq):
                kind, k = "quadratic", 2 * float(c0)
        return expr, kind, k

    def _diffusion(self, D):
        if D is None:
            return None
        if isinstance(D, (int, float)) and not isinstance(D, bool):
            D = (float(D) * np.eye(self.d)).tolist()
        M = field(np.asarray(D, dtype=object).tolist() if not isinstance(D, str) else D, self._xsym, "D",
                  (self.d, self.d))
        if sp.simplify(M - M.T) != sp.zeros(self.d, self.d):
            raise ValueError(f"D must be symmetric, got D = {M.tolist()}")
        if not M.free_symbols:
            ev = np.linalg.eigvalsh(np.asarray(M.tolist(), float))
            if ev.min() <= 0:
                raise ValueError(f"D must be positive definite: eigenvalue {ev.min():.4g} of D = {M.tolist()}")
        elif self.domain is not None:
            pts = self._grid(17)
            Ds = self._D_np(M)(pts)
            ev = np.linalg.eigvalsh(Ds)
            i = int(np.argmin(ev[:, 0]))
            if not np.all(np.isfinite(Ds)) or ev[i, 0] <= 0:
                raise ValueError(f"D must be positive definite on the domain: at x = {np.round(pts[i], 6).tolist()} "
                                 f"D = {np.round(Ds[i], 6).tolist()} has eigenvalue {ev[i, 0]:.4g}")
        return M

    def _grid(self, m: int) -> np.ndarray:
        lo, hi = self.domain
        axes = [np.linspace(lo[i], hi[i], m) for i in range(self.d)]
        return np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)

    def _initial(self, initial):
        if initial is None:
            initial = {"mean": np.zeros(self.d), "cov": 1.0}
        if "density" in initial:
            if self.domain is None:
                raise ValueError("an initial density formula needs the model's domain (to normalise and sample it)")
            expr = field(initial["density"], self._xsym, "initial density")
            return {"kind": "density", "expr": expr}
        mean, cov = gaussian_law(initial, self.d)
        return {"kind": "gaussian", "mean": mean, "cov": cov}

    # ------------------------------------------------------------------ numpy (particles first: x of shape (n, d))
    def _compiled(self, name: str, build):
        """The numpy function(s) `name`, lambdified once (they run at every particle step and kernel block)."""
        cache = self.__dict__.setdefault("_numpy_cache", {})
        if name not in cache:
            cache[name] = build()
        return cache[name]

    def V_np(self, x: np.ndarray) -> np.ndarray:
        """V at points.

        Parameters
        ----------
        x : numpy.ndarray, shape (n, d)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        x = np.atleast_2d(x)
        return self._compiled("V", lambda: _numpy_fn(self.V, self.xs))(*x.T)

    def grad_V(self, x: np.ndarray) -> np.ndarray:
        """The exact gradient of V (sympy's derivative) at points.

        Parameters
        ----------
        x : numpy.ndarray, shape (n, d)

        Returns
        -------
        numpy.ndarray, shape (n, d)
        """
        fns = self._compiled("grad_V", lambda: [_numpy_fn(g, self.xs) for g in self.grad_V_expr])
        x = np.atleast_2d(x)
        return np.stack([g(*x.T) for g in fns], axis=1)

    def W_np(self, z: np.ndarray) -> np.ndarray:
        """W at differences.

        Parameters
        ----------
        z : numpy.ndarray, shape (..., d)

        Returns
        -------
        numpy.ndarray, shape (...)
        """
        return self._compiled("W", lambda: _numpy_fn(self.W, self.zs))(*np.moveaxis(np.asarray(z, float), -1, 0))

    def grad_W(self, z: np.ndarray) -> np.ndarray:
        """The exact gradient of W at differences.

        Parameters
        ----------
        z : numpy.ndarray, shape (..., d)

        Returns
        -------
        numpy.ndarray, shape (..., d)
        """
        fns = self._compiled("grad_W", lambda: [_numpy_fn(sp.diff(self.W, s), self.zs) for s in self.zs])
        cols = np.moveaxis(np.asarray(z, float), -1, 0)
        return np.stack([g(*cols) for g in fns], axis=-1)

    def _D_np(self, M):
        fns = [[_numpy_fn(M[i, j], self.xs) for j in range(self.d)] for i in range(self.d)]

        def D(x):
            x = np.atleast_2d(x)
            return np.stack([np.stack([fns[i][j](*x.T) for j in range(self.d)], axis=-1) for i in range(self.d)],
                            axis=-2)
        return D

    def D_np(self, x: np.ndarray) -> np.ndarray:
        """D at points (the identity where the model has none).

        Parameters
        ----------
        x : numpy.ndarray, shape (n, d)

        Returns
        -------
        numpy.ndarray, shape (n, d, d)
        """
        x = np.atleast_2d(x)
        if self.D is None:
            return np.broadcast_to(np.eye(self.d), (len(x), self.d, self.d)).copy()
        return self._compiled("D", lambda: self._D_np(self.D))(x)

    def b_np(self, x: np.ndarray) -> np.ndarray:
        """The non-gradient drift b at points (zeros where the model has none).

        Parameters
        ----------
        x : numpy.ndarray, shape (n, d)

        Returns
        -------
        numpy.ndarray, shape (n, d)
        """
        x = np.atleast_2d(x)
        if self.b is None:
            return np.zeros_like(x, dtype=float)
        fns = self._compiled("b", lambda: [_numpy_fn(c, self.xs) for c in self.b])
        return np.stack([f(*x.T) for f in fns], axis=1)

    def initial_density(self, x: np.ndarray) -> np.ndarray:
        """The initial density (unnormalised for a formula) at points given components first.

        Parameters
        ----------
        x : numpy.ndarray, shape (>= d, n)
            dolfinx's interpolation points (3, n) are fine.

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        x = np.asarray(x, float)[: self.d]
        if self.initial["kind"] == "density":
            return self._compiled("initial", lambda: _numpy_fn(self.initial["expr"], self.xs))(*x)
        from fpjko.references.gaussian import gaussian_density

        return gaussian_density(x, self.initial["mean"], self.initial["cov"])

    # ------------------------------------------------------------------ UFL (components first: x[0], x[1], ...)
    def _ufl(self, expr):
        f = sp.lambdify(self.xs, expr, modules=[_ufl_module()])
        return lambda x: f(*[x[i] for i in range(self.d)])

    def V_ufl(self, x):
        """V as a UFL expression of the mesh's SpatialCoordinate x.

        Parameters
        ----------
        x : ufl.SpatialCoordinate

        Returns
        -------
        UFL expression
        """
        return self._ufl(self.V)(x) + (x[0] - x[0])     # keeps the mesh in a constant V (UFL folds 0 * x[0] away)

    def fe_coefficients(self) -> dict:
        """The FokkerPlanckSolver keywords of the model: potential, diffusion, drift, interaction, beta.

        Returns
        -------
        dict
        """
        kw = {"potential": self.V_ufl, "beta": self.beta}
        if self.D is not None:
            if self.D_constant:
                kw["diffusion"] = np.asarray(self.D.tolist(), float)
            else:
                dij = [[self._ufl(self.D[i, j]) for j in range(self.d)] for i in range(self.d)]
                kw["diffusion"] = lambda x: [[c(x) + (x[0] - x[0]) for c in row] for row in dij]
        if self.b is not None:
            bi = [self._ufl(c) for c in self.b]
            kw["drift"] = lambda x: [c(x) + (x[0] - x[0]) for c in bi]
        if self.W is not None:
            kw["interaction"] = self.interaction()
        return kw

    def interaction(self):
        """The FE side's interaction: k for W = k|z|^2/2, a PolynomialInteraction (exact moments), else the numpy
        kernel W(z), z of shape (..., d) (None without one).

        Returns
        -------
        float, PolynomialInteraction, callable or None
        """
        if self.W is None:
            return None
        if self.interaction_kind == "quadratic":
            return self.k
        if self.interaction_kind == "polynomial":
            from fpjko.solvers.fokker_planck.interaction import PolynomialInteraction

            poly = sp.Poly(self.W, *self.zs)
            return PolynomialInteraction({tuple(int(e) for e in m): float(c) for m, c in poly.terms()})
        return self.W_np

    def describe(self) -> str:
        """One line per field and what the model's structure allows.

        Returns
        -------
        str
        """
        lines = [f"model {self.name!r}: d = {self.d}, beta = {self.beta:g}",
                 f"  V(x) = {self.V}",
                 f"  W(z) = {self.W} ({self.interaction_kind})" if self.W is not None else "  W = 0",
                 f"  D(x) = {self.D.tolist()}" if self.D is not None else "  D = I",
                 f"  b(x) = {list(self.b)}" if self.b is not None else "  b = 0",
                 f"  gradient flow (JKO): {self.gradient_flow}; Gibbs density exp(-beta V)/Z: {self.gibbs}"]
        return "\n".join(lines)

    # ------------------------------------------------------------------ the two sides
    def mesh(self, comm, h: float):
        """The FE mesh of the model's domain (interval, rectangle or box) of cell size h.

        Parameters
        ----------
        comm : mpi4py.MPI.Comm
        h : float

        Returns
        -------
        dolfinx.mesh.Mesh
        """
        if self.domain is None:
            raise ValueError(f"model {self.name!r} has no domain: give domain=(lower, upper) for the finite elements")
        return box_mesh(comm, self.domain, h)

    def sample_initial(self, streams) -> np.ndarray:
        """The initial particles of this rank, each block from its own stream (bitwise the same on any rank count).

        Parameters
        ----------
        streams : fpjko.samplers.streams.Streams

        Returns
        -------
        numpy.ndarray, shape (streams.n_local, d)
        """
        if self.initial["kind"] == "gaussian":
            return sample_gaussian(streams, self.initial["mean"], self.initial["cov"])
        lo, hi = self.domain
        top = 1.2 * float(np.max(self.initial_density(self._grid(65).T)))

        def rejection(g, k):
            out = np.zeros((0, self.d))
            while len(out) < k:
                y = g.uniform(lo, hi, (4 * k + 16, self.d))
                keep = g.uniform(0, top, len(y)) < self.initial_density(y.T)
                out = np.vstack([out, y[keep]])
            return out[:k]
        return streams.sample(rejection)

    def particles(self, n: int, seed: int = 0, comm=None, dt: float = 1e-3, t_end: float = 1.0, callback=None,
                  force: str = "direct", cells=None, batch: int = 2):
        """n interacting particles (Euler-Maruyama, independent noise per particle) from the initial law to t_end.

        Parameters
        ----------
        n : int
            The number of particles (>= 1), split over the ranks of comm.
        seed : int
        comm : mpi4py.MPI.Comm, optional
        dt : float
            The time step; t_end must be a whole number of steps.
        t_end : float
        callback : callable, optional
            callback(streams, step, t, x) after every step (x this rank's particles); it may return True to stop.
        force : {'direct', 'mesh', 'rbm'}
            For a kernel W: the exact O(n^2) sum, the particle mesh on the model's domain (O(n + G log G),
            second order in the grid; the particles must stay in the domain), or the Random Batch Method
            (fpjko.samplers.random_batch: batches of `batch` particles, O(n p), biased in dt).
        cells : int, optional
            The particle mesh's cells per direction (default: fpjko.samplers.particle_mesh's).
        batch : int
            The Random Batch Method's batch size p.

        Returns
        -------
        streams : fpjko.samplers.streams.Streams
        x : numpy.ndarray, shape (streams.n_local, d)
            This rank's particles at t_end.
        """
        from fpjko.samplers.interacting import interaction_force
        from fpjko.samplers.sde import euler_maruyama
        from fpjko.samplers.streams import Streams

        n = checks.integer("n", n, 1)
        dt, t_end = checks.positive_number("dt", dt), checks.number("t_end", t_end, nonnegative=True)
        steps = int(round(t_end / dt))
        if abs(steps * dt - t_end) > 1e-9 * max(t_end, dt):
            raise ValueError(f"t_end={t_end:g} is not a whole number of particle steps dt={dt:g}")
        st = Streams(n, seed, comm=comm)
        x0 = self.sample_initial(st)
        W = self.W
        checks.one_of("force", force, ("direct", "mesh", "rbm"))
        pm = rbm = None
        if force == "rbm" and self.interaction_kind in ("polynomial", "kernel"):
            from fpjko.samplers.random_batch import RandomBatch

            rbm = RandomBatch(st, self.grad_W, batch)
        if force == "mesh" and self.interaction_kind in ("polynomial", "kernel"):
            from fpjko.samplers.particle_mesh import ParticleMesh

            if self.domain is None:
                raise ValueError(f"model {self.name!r}: the particle mesh needs the model's domain")
            pm = ParticleMesh(self.grad_W, *self.domain, cells)

        def drift(x, t):
            v = -self.grad_V(x) if x.shape[0] else np.zeros_like(x)
            if self.b is not None and x.shape[0]:
                v = v + self.b_np(x)
            if pm is not None:
                from fpjko.samplers.particle_mesh import particle_mesh_force

                v = v + particle_mesh_force(x, st, pm)
            elif rbm is not None:
                v = v + rbm.force(x)
            elif W is not None:
                v = v + (interaction_force(x, st, quadratic=self.k) if self.interaction_kind == "quadratic" else
                         interaction_force(x, st, grad_W=self.grad_W))
            return v
        diffusion = None
        if self.D is not None:
            diffusion = np.asarray(self.D.tolist(), float) if self.D_constant else self.D_np
        if callback is not None:
            callback(st, 0, 0.0, x0)
        watch = None if callback is None else (lambda k, t, x: callback(st, k, t, x))
        x = euler_maruyama(x0, drift, self.beta, dt, steps, st, diffusion=diffusion, callback=watch) if steps else x0
        return st, x

    def fokker_planck(self, mesh, dt: float = 1e-2, degree: int = 1, scheme: str = "bdf2", **kw):
        """The model's Fokker-Planck (McKean-Vlasov) solver on a mesh of its domain, from its initial law.

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
            Of the model's dimension (model.mesh(comm, h) builds one).
        dt : float
        degree : int
        scheme : str
        **kw
            More FokkerPlanckSolver keywords (method, solver, interaction_scheme, petsc_options, ...).

        Returns
        -------
        fpjko.solvers.FokkerPlanckSolver
            With set_initial done (normalised on the mesh).
        """
        from fpjko.solvers import FokkerPlanckSolver

        self._check_mesh(mesh)
        s = FokkerPlanckSolver(mesh, degree=degree, dt=dt, scheme=scheme, **self.fe_coefficients(), **kw)
        s.set_initial(self.initial_density, normalize=True)
        return s

    def jko(self, mesh, tau: float, **kw):
        """The model's JKO minimizing movement (NewtonJKO) from its initial law: only for a gradient flow.

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
        tau : float
        **kw
            More NewtonJKO keywords (tol, max_iter, mobility, ...).

        Returns
        -------
        fpjko.solvers.NewtonJKO
            With set_initial done.
        """
        from fpjko.solvers import NewtonJKO

        if not self.gradient_flow:
            why = [w for w, bad in (("a drift b", self.b is not None), ("an x-dependent D", not self.D_constant),
                                    ("an anisotropic D (D grad log rho is no gradient; the JKO step in the D^-1 "
                                     "metric is the preconditioned flow div(rho D grad(V + beta^-1 log rho)), for "
                                     "which NewtonJKO(D=...) takes D directly)",
                                     self.D_constant and self.D is not None and self.D_scale is None)) if bad]
            raise ValueError(f"model {self.name!r} is not a Wasserstein gradient flow (JKO needs b = 0 and D = c I; "
                             f"it has " + ", ".join(why) + ")")
        self._check_mesh(mesh)
        V = self._compiled("V", lambda: _numpy_fn(self.V, self.xs))
        beta = self.beta / (self.D_scale or 1.0)            # D = c I: the entropy's weight is c / beta
        s = NewtonJKO(mesh, tau, potential=lambda x: V(*x[: self.d]), beta=beta, interaction=self.interaction(), **kw)
        s.set_initial(self.initial_density, normalize=True)
        return s

    def stationary(self, mesh, **kw):
        """The model's stationary density: of the linear operator (no W), or the mean-field fixed point (W).

        Parameters
        ----------
        mesh : dolfinx.mesh.Mesh
        **kw
            For mean_field_stationary (tol, max_iter, guess) or stationary_density (petsc_options).

        Returns
        -------
        Stationary or MeanFieldStationary
        """
        from fpjko.solvers import mean_field_stationary, stationary_density

        s = self.fokker_planck(mesh)
        if self.W is None:
            return stationary_density(s, **kw)
        if self.D is not None or self.b is not None:
            raise ValueError(f"model {self.name!r}: the mean-field fixed point rho = exp(-beta (V + W * rho)) / Z needs "
                             "D = I and b = 0")
        return mean_field_stationary(s, **kw)

    def _check_mesh(self, mesh) -> None:
        if mesh.geometry.dim != self.d:
            raise ValueError(f"model {self.name!r} is {self.d}D, the mesh is {mesh.geometry.dim}D: mismatched meshes")


__all__ = ["Model", "ExpressionError"]
