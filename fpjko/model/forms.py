"""A model's numpy and UFL forms, built once from its sympy fields (the `ModelForms` part of fpjko.model.Model).

numpy forms take particles first (x of shape (n, d)) and are lambdified once per model (they run at every particle
step and kernel block); the UFL forms take the mesh's SpatialCoordinate, components first.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

_UFL_NAMES = ("exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh", "atan", "erf")


def ufl_module() -> dict:
    """The names a lambdified formula calls, mapped to UFL's."""
    import ufl

    m = {name: getattr(ufl, "ln" if name == "log" else name) for name in _UFL_NAMES}
    m.update({"Abs": abs, "pi": math.pi, "E": math.e})
    return m


def _erf(x):
    """erf on arrays (numpy has none; scipy's where present, else math.erf elementwise)."""
    try:
        from scipy.special import erf
    except ImportError:                                     # pragma: no cover  (scipy is in the packages)
        erf = np.vectorize(math.erf, otypes=[float])
    return erf(x)


def numpy_fn(expr, syms):
    """A vectorised numpy function of the columns (arrays of one shape) for a sympy scalar; constants broadcast.

    Parameters
    ----------
    expr : sympy.Expr
    syms : sequence of sympy.Symbol

    Returns
    -------
    callable
        f(*columns) -> numpy.ndarray of the columns' shape.
    """
    f = sp.lambdify(syms, expr, modules=[{"erf": _erf}, "numpy"])

    def call(*cols):
        v = np.asarray(f(*cols), dtype=float)
        return np.broadcast_to(v, np.shape(cols[0])) if v.shape != np.shape(cols[0]) else v
    return call


class ModelForms:
    """The numpy forms (particles) and UFL forms (finite elements) of a Model's fields."""

    def _compiled(self, name: str, build):
        """The numpy function(s) `name`, lambdified once."""
        cache = self.__dict__.setdefault("_numpy_cache", {})
        if name not in cache:
            cache[name] = build()
        return cache[name]

    # ------------------------------------------------------------------ numpy (x of shape (n, d))
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
        return self._compiled("V", lambda: numpy_fn(self.V, self.xs))(*x.T)

    def grad_V(self, x: np.ndarray) -> np.ndarray:
        """The exact gradient of V (sympy's derivative) at points.

        Parameters
        ----------
        x : numpy.ndarray, shape (n, d)

        Returns
        -------
        numpy.ndarray, shape (n, d)
        """
        fns = self._compiled("grad_V", lambda: [numpy_fn(sp.diff(self.V, s), self.xs) for s in self.xs])
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
        return self._compiled("W", lambda: numpy_fn(self.W, self.zs))(*np.moveaxis(np.asarray(z, float), -1, 0))

    def grad_W(self, z: np.ndarray) -> np.ndarray:
        """The exact gradient of W at differences.

        Parameters
        ----------
        z : numpy.ndarray, shape (..., d)

        Returns
        -------
        numpy.ndarray, shape (..., d)
        """
        fns = self._compiled("grad_W", lambda: [numpy_fn(sp.diff(self.W, s), self.zs) for s in self.zs])
        cols = np.moveaxis(np.asarray(z, float), -1, 0)
        return np.stack([g(*cols) for g in fns], axis=-1)

    def _matrix_np(self, M):
        fns = [[numpy_fn(M[i, j], self.xs) for j in range(self.d)] for i in range(self.d)]

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
        return self._compiled("D", lambda: self._matrix_np(self.D))(x)

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
        fns = self._compiled("b", lambda: [numpy_fn(c, self.xs) for c in self.b])
        return np.stack([f(*x.T) for f in fns], axis=1)

    def initial_density(self, x: np.ndarray) -> np.ndarray:
        """The initial law's density, normalised on the domain, at points given components first.

        Parameters
        ----------
        x : numpy.ndarray, shape (>= d, n)
            dolfinx's interpolation points (3, n) are fine.

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        return self.initial.density(x)

    # ------------------------------------------------------------------ UFL (components first: x[0], x[1], ...)
    def _ufl(self, expr):
        f = sp.lambdify(self.xs, expr, modules=[ufl_module()])
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
