"""A mean-field model declared once: its fields as written, checked, and compared across ranks.

    dX_i = (-grad V(X_i) - (1/n) sum_j grad W(X_i - X_j) + b(X_i)) dt + sqrt(2/beta D(X_i)) dB_i,   i = 1..n,

each particle with its own Brownian motion, whose empirical measure converges to the McKean-Vlasov equation

    rho_t = div(rho grad(V + W * rho) - rho b + beta^-1 div(D rho)),   (div(D rho))_i = sum_j d_j(D_ij rho),

with no flux through the boundary of the domain. Each field is given once (a formula as text, a number, a
sympy expression, or lists of those; fpjko.model.expressions parses text without evaluating it); sympy derives
what each side needs (fpjko.model.forms), the structure is read from the formulas (fpjko.model.structure) and
the two sides are built from one initial law (fpjko.model.laws, fpjko.model.solvers).

Under MPI a Model is declared on every rank of its communicator (default COMM_WORLD): the arguments are compared
first, so a field that differs on one rank is one error on every rank naming the field and both values.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from fpjko.common import checks
from fpjko.common.collective import collectively, same_everywhere
from fpjko.model import structure
from fpjko.model.expressions import field
from fpjko.model.forms import ModelForms, numpy_fn
from fpjko.model.laws import initial_law
from fpjko.model.poles import find_pole
from fpjko.model.solvers import ModelSolvers

GRID_CHECK = {1: 257, 2: 65, 3: 17}     # points per direction at which V, grad V, D and b are checked on the domain


class Model(ModelForms, ModelSolvers):
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
        The initial law: {'mean': (d,), 'cov': number or (d, d)} (a Gaussian, which must lie in the domain up to
        fpjko.model.laws.MASS_OUTSIDE_TOL of its mass) or {'density': formula in x} (on the domain: checked finite,
        >= 0 and of positive mass, normalised, sampled exactly). Any other key is an error. Default: the standard
        Gaussian.
    domain : (lower, upper), optional
        The box of the finite elements (lower, upper of length d); also where V, grad V, D and b are checked.
    name : str
    comm : mpi4py.MPI.Comm, optional
        The ranks that declare the model together (default COMM_WORLD; MPI.COMM_SELF for a rank's own model).

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
    initial : GaussianLaw or DensityLaw
        The initial law (fpjko.model.laws): its `density` (normalised on the domain) and `sample`.
    """

    def __init__(self, d: int, V=0, W=None, D=None, b=None, beta: float = 1.0, initial: dict | None = None,
                 domain=None, name: str = "model", comm=None):
        from fpjko.samplers.streams import default_comm

        comm = default_comm(comm)
        same_everywhere(comm, "Model", {"d": d, "V": V, "W": W, "D": D, "b": b, "beta": beta, "initial": initial,
                                        "domain": domain, "name": name})
        collectively(comm, self._declare, d, V, W, D, b, beta, initial, domain, name)

    def _declare(self, d, V, W, D, b, beta, initial, domain, name) -> None:
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
        self.V = field(V, xsym, "V")
        self.W, self.interaction_kind, self.k = structure.interaction(W, self.zs, zsym)
        self.D = structure.diffusion(D, self.d, xsym, self._on_domain if self.domain is not None else None)
        self.b = None if b is None else field(b, xsym, "b", (self.d,))
        self.D_constant = self.D is None or not self.D.free_symbols
        # D = c I (constant): the W2 gradient flow of F at temperature c / beta. A constant anisotropic D is not one:
        # div(rho grad V + beta^-1 D grad rho) needs D grad log rho to be a gradient; the JKO step in the D^-1
        # metric is the preconditioned flow div(rho D grad(V + W * rho + beta^-1 log rho)), another model
        self.D_scale = structure.isotropic_scale(self.D)
        self.gradient_flow = self.b is None and (self.D is None or self.D_scale is not None)
        self.gibbs = self.D is None and self.b is None and self.W is None
        if self.domain is not None:
            self._check_on_domain()
        self.initial = initial_law(initial, self.d, self.domain, self._density)

    # ------------------------------------------------------------------ declaration
    def _box(self, domain):
        def bad():
            return ValueError(f"domain must be (lower, upper): two lists of {self.d} numbers with lower < upper, "
                              f"got {domain!r}")
        if isinstance(domain, (str, bytes)) or not hasattr(domain, "__len__") or len(domain) != 2:
            raise bad()
        try:
            lower, upper = (np.atleast_1d(np.asarray(v, float)) for v in domain)
        except (TypeError, ValueError):
            raise bad() from None
        if lower.shape != (self.d,) or upper.shape != (self.d,) or not np.all(np.isfinite(lower) & np.isfinite(upper)):
            raise bad()
        if not np.all(lower < upper):
            raise bad()
        return lower, upper

    def _grid(self, m: int) -> np.ndarray:
        lo, hi = self.domain
        axes = [np.linspace(lo[i], hi[i], m) for i in range(self.d)]
        return np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)

    def _on_domain(self, M):
        pts = self._grid(GRID_CHECK[self.d])
        with np.errstate(all="ignore"):
            return pts, self._matrix_np(M)(pts)

    def _check_on_domain(self) -> None:
        """V, grad V and b finite on a grid of the domain: a formula that is not (sqrt(x) at x < 0) is named here,
        not blamed later on a time step."""
        pts = self._grid(GRID_CHECK[self.d])
        with np.errstate(all="ignore"):
            for what, vals in (("V", self.V_np(pts)[:, None]), ("grad V", self.grad_V(pts)),
                               ("b", self.b_np(pts))):
                bad = ~np.all(np.isfinite(vals), axis=1)
                if bad.any():
                    i = int(np.argmax(bad))
                    expr = {"V": self.V, "grad V": self.V, "b": self.b}[what]
                    raise ValueError(f"{what} is not finite at x = {np.round(pts[i], 6).tolist()} of the domain "
                                     f"(value {vals[i].tolist()}; {'V' if what != 'b' else 'b'} = {str(expr)[:80]})")
        # and between the grid's points: a pole of V, b or D (1/(x - 0.123456)^2 is finite on any grid that
        # misses 0.123456)
        fields = [("V", self.V)] + [("b", e) for e in (list(self.b) if self.b is not None else [])] + \
            [("D", e) for e in (list(self.D) if self.D is not None else [])]
        for what, expr in fields:
            hit = find_pole(sp.sympify(expr), self.xs, *self.domain, numpy_fn)
            if hit is not None:
                raise ValueError(f"{what} has a pole in the domain near x = {np.round(hit[0], 6).tolist()}, where "
                                 f"{str(hit[1])[:60]} vanishes ({what} = {str(expr)[:80]}): the particles and the PDE "
                                 "are not defined there; move the domain or regularise the formula")

    def _density(self, text):
        expr = field(text, self._xsym, "initial density")
        return numpy_fn(expr, self.xs), str(text) if isinstance(text, str) else str(expr)

    def fields(self, prefix: str = "") -> dict:
        """The model's declared fields in canonical form (sympy's srepr, numbers by repr): what the entries compare
        across ranks.

        Parameters
        ----------
        prefix : str
            Prepended to each name, e.g. 'model.'.

        Returns
        -------
        dict of str to str or tuple
        """
        def canon(e):
            return None if e is None else sp.srepr(e)
        out = {"d": self.d, "V": canon(self.V), "W": canon(self.W), "D": canon(self.D), "b": canon(self.b),
               "beta": repr(self.beta), "initial": self.initial.fields(),
               "domain": None if self.domain is None else (self.domain[0].tolist(), self.domain[1].tolist())}
        return {prefix + k: v for k, v in out.items()}

    def describe(self) -> str:
        """One line per field and what the model's structure allows.

        Returns
        -------
        str
        """
        law = self.initial
        start = (f"  initial: N({law.mean.tolist()}, {law.cov.tolist()})" if law.kind == "gaussian" else
                 f"  initial: density {law.text}")
        lines = [f"model {self.name!r}: d = {self.d}, beta = {self.beta:g}",
                 f"  V(x) = {self.V}",
                 f"  W(z) = {self.W} ({self.interaction_kind})" if self.W is not None else "  W = 0",
                 f"  D(x) = {self.D.tolist()}" if self.D is not None else "  D = I",
                 f"  b(x) = {list(self.b)}" if self.b is not None else "  b = 0", start,
                 f"  gradient flow (JKO): {self.gradient_flow}; Gibbs density exp(-beta V)/Z: {self.gibbs}"]
        return "\n".join(lines)
