"""Initial laws of a model: exactly the law written, the same for the particles and for the PDE (numpy only).

initial = {'mean': (d,), 'cov': number or (d, d)}   a Gaussian: the particles are exact draws; the PDE starts from
                                                      its restriction to the domain, which for a comparison of the
                                                      two must hold all but MASS_OUTSIDE_TOL of it
initial = {'density': formula}                      a density on the domain, checked (finite, >= 0, positive mass)
                                                      at every point it is evaluated, then sampled exactly (below)

Any other key ('covariance', 'mu', 'sigma', ...) is refused naming the accepted ones: a misspelt key must not
silently leave the standard Gaussian in place.

A density is sampled in two stages. (1) Its masses on an adaptive partition of the box: a uniform grid of
BASE_CELLS[d] cells per direction, each integrated by a tensor Gauss-Legendre rule and compared with the sum over
its 2^d children; a cell whose two estimates differ by more than MASS_TOL of the total, or whose children see a
maximum above 1.25 times the parent's (where the difference could carry TOP_TOL of the mass), is replaced by its children (up to MAX_LEVELS levels and MAX_CELLS cells,
else an error says the density is not resolved). (2) A cell is drawn by its mass, then a point in it by rejection
under the cell's envelope (1.5 times the largest value seen in the cell). The envelope is checked: a proposal
above it (a peak no evaluation point saw) doubles that cell's envelope and the block is drawn again, so the sample
follows the density, not min(density, envelope). Each block of particles uses only its own stream, so the sample is
bitwise the same on any number of ranks. A peak narrower than the first grid is found by the refinement as long as
one evaluation point sees it (about 4 * BASE_CELLS[d] points per direction).
"""

from __future__ import annotations

import math

import numpy as np

KEYS = {"gaussian": ("mean", "cov"), "density": ("density",)}
MASS_OUTSIDE_TOL = 1e-3       # the most of an initial Gaussian's mass that may lie outside the model's domain
BASE_CELLS = {1: 256, 2: 48, 3: 12}
GAUSS = 4                     # Gauss-Legendre points per direction and cell
MASS_TOL = 1e-8               # per-cell agreement of the two quadratures, relative to the total mass
TOP_TOL = 1e-6                # a cell is refined for its maximum only where the unseen part could carry this mass
MAX_LEVELS = 14
MAX_CELLS = 400_000
ENVELOPE = 1.5


def check_keys(initial, d: int) -> str:
    """The kind of an initial law ('gaussian' or 'density'), after refusing anything but those keys.

    Parameters
    ----------
    initial : dict
    d : int

    Returns
    -------
    str
    """
    if not isinstance(initial, dict):
        raise TypeError(f"initial must be a table: {{'mean': [...], 'cov': ...}} (a Gaussian) or {{'density': "
                        f"'formula'}}, got {initial!r}")
    keys = set(initial)
    if not keys:
        raise ValueError("initial is an empty table: give {'mean': [...], 'cov': ...} (a Gaussian) or {'density': "
                         "'formula'}, or leave it out for the standard Gaussian N(0, I)")
    kind = "density" if "density" in keys else "gaussian"
    unknown = sorted(keys - set(KEYS[kind]))
    if unknown:
        raise ValueError(f"initial: unknown key{'s' if len(unknown) > 1 else ''} {unknown} (a Gaussian takes "
                         f"'mean' and 'cov', a density 'density' alone)")
    return kind


def gaussian_law(initial: dict, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The checked (mean, cov) of an initial Gaussian {'mean': (d,), 'cov': number or (d, d)}.

    Parameters
    ----------
    initial : dict
        Only the keys 'mean' (default 0) and 'cov' (default 1, the identity).
    d : int

    Returns
    -------
    mean : numpy.ndarray, shape (d,)
    cov : numpy.ndarray, shape (d, d)
        Symmetric positive definite.
    """
    check_keys(initial, d)
    try:
        mean = np.atleast_1d(np.asarray(initial.get("mean", np.zeros(d)), float))
        cov = np.asarray(initial.get("cov", 1.0), float)
    except (TypeError, ValueError):
        raise ValueError(f"initial mean and cov must be numbers, got {initial!r}") from None
    cov = cov * np.eye(d) if cov.ndim == 0 else cov
    if mean.shape != (d,) or cov.shape != (d, d):
        raise ValueError(f"initial mean of shape ({d},) and cov a number or ({d}, {d}), got "
                         f"{mean.tolist()}, {cov.tolist()}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError(f"initial mean and cov must be finite, got {mean.tolist()}, {cov.tolist()}")
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


def _box_text(lo, hi) -> str:
    return f"[{np.asarray(lo).tolist()}, {np.asarray(hi).tolist()}]"


class GaussianLaw:
    """N(mean, cov): exact draws for the particles; its restriction to the domain, normalised, for the PDE.

    Parameters
    ----------
    mean : numpy.ndarray, shape (d,)
    cov : numpy.ndarray, shape (d, d)
    domain : (lower, upper) or None
        The model's domain; a comparison of both sides (validate) refuses a law with more than MASS_OUTSIDE_TOL of
        its mass outside it (outside_problem).
    """

    kind = "gaussian"

    def __init__(self, mean, cov, domain=None):
        self.mean, self.cov, self.domain = mean, cov, domain
        self.d = len(mean)
        self.mass = 1.0 if domain is None else self.box_mass(*domain)
        if domain is not None and not self.mass > 1e-12:
            raise ValueError(f"the initial Gaussian N({mean.tolist()}, {cov.tolist()}) has no mass in the domain "
                             f"{_box_text(*domain)} ({self.mass:.3g}): move it or widen the domain")

    def outside_problem(self) -> str | None:
        """Why the particles (exact draws) and the PDE (the law restricted to the domain) would not start from the
        same law, or None: more than MASS_OUTSIDE_TOL of the Gaussian lies outside the domain."""
        if self.domain is None or 1.0 - self.mass <= MASS_OUTSIDE_TOL:
            return None
        return (f"the initial Gaussian N({self.mean.tolist()}, {self.cov.tolist()}) has {100 * (1 - self.mass):.3g}% "
                f"of its mass outside the domain {_box_text(*self.domain)}: the particles would start from the "
                f"Gaussian and the PDE from its restriction to the domain; widen the domain or narrow the law (at most "
                f"{100 * MASS_OUTSIDE_TOL:g}% may lie outside)")

    def box_mass(self, lo, hi) -> float:
        """P(X in [lo, hi]): exact (erf) for a diagonal cov, else by 2^18 fixed quasi-random draws.

        Parameters
        ----------
        lo, hi : numpy.ndarray, shape (d,)

        Returns
        -------
        float
        """
        sd = np.sqrt(np.diag(self.cov))
        if np.allclose(self.cov, np.diag(np.diag(self.cov)), rtol=0, atol=0):
            p = 1.0
            for i in range(self.d):
                a, b = (lo[i] - self.mean[i]) / (sd[i] * math.sqrt(2)), (hi[i] - self.mean[i]) / (sd[i] * math.sqrt(2))
                p *= 0.5 * (math.erf(b) - math.erf(a))
            return p
        z = np.random.default_rng(12345).standard_normal((2**18, self.d))
        x = self.mean + z @ np.linalg.cholesky(self.cov).T
        return float(np.mean(np.all((x >= lo) & (x <= hi), axis=1)))

    def density(self, x: np.ndarray) -> np.ndarray:
        """The Gaussian density at points given components first (dolfinx's (3, n) is fine).

        Parameters
        ----------
        x : numpy.ndarray, shape (>= d, n)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        from fpjko.references.gaussian import gaussian_density

        return gaussian_density(np.asarray(x, float)[: self.d], self.mean, self.cov) / self.mass

    def sample(self, streams) -> np.ndarray:
        """This rank's particles (exact draws), shape (streams.n_local, d)."""
        return sample_gaussian(streams, self.mean, self.cov)

    def fields(self) -> dict:
        """The law's numbers, for comparisons across ranks."""
        return {"kind": self.kind, "mean": self.mean.tolist(), "cov": self.cov.tolist()}


def _gauss_rule(d: int):
    t, w = np.polynomial.legendre.leggauss(GAUSS)
    t = (t + 1) / 2                                       # on [0, 1]
    w = w / 2
    T = np.stack([g.ravel() for g in np.meshgrid(*([t] * d), indexing="ij")], axis=1)       # (P, d)
    Wt = np.prod(np.stack([g.ravel() for g in np.meshgrid(*([w] * d), indexing="ij")], axis=1), axis=1)
    corners = np.array(list(np.ndindex(*(2,) * d)), float)                                  # (2^d, d)
    return T, Wt, np.vstack([T, corners, np.full((1, d), 0.5)])


class DensityLaw:
    """A density formula on the domain: checked, integrated on an adaptive partition, sampled exactly.

    Parameters
    ----------
    fn : callable
        The formula as a numpy function of the columns, fn(x0, x1, ...) -> values (unnormalised).
    domain : (lower, upper)
    text : str
        The formula (for messages).
    """

    kind = "density"

    def __init__(self, fn, domain, text: str = "density"):
        self.fn, self.text = fn, text
        self.lo, self.hi = (np.asarray(v, float) for v in domain)
        self.d = d = len(self.lo)
        self._T, self._W, self._E = _gauss_rule(d)
        n0 = BASE_CELLS[d]
        axes = [np.arange(n0) for _ in range(d)]
        idx = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
        size = (self.hi - self.lo) / n0
        lo = self.lo + idx * size
        hi = lo + size
        mass, top = self._cells(lo, hi)
        self.mass = float(mass.sum())
        if not self.mass > 0:
            raise ValueError(f"initial density {self.text!r} has no mass on the domain {_box_text(self.lo, self.hi)} "
                             "(it is 0 at every point evaluated)")
        done_lo, done_hi, done_m, done_top = [], [], [], []
        for level in range(MAX_LEVELS + 1):
            clo, chi, cm, ctop, parent = self._children(lo, hi)
            cmass = np.bincount(parent, weights=cm, minlength=len(lo))
            ctop_max = np.zeros(len(lo))
            np.maximum.at(ctop_max, parent, ctop)
            vol = np.prod(hi - lo, axis=1)
            bad = ((np.abs(cmass - mass) > MASS_TOL * self.mass)
                   | ((ctop_max > 1.25 * top) & ((ctop_max - top) * vol > TOP_TOL * self.mass)))
            keep = ~bad
            done_lo.append(lo[keep]), done_hi.append(hi[keep])
            done_m.append(cmass[keep]), done_top.append(np.maximum(top, ctop_max)[keep])
            if not bad.any():
                break
            sel = bad[parent]
            lo, hi, mass, top = clo[sel], chi[sel], cm[sel], ctop[sel]
            total = sum(len(a) for a in done_lo) + len(lo)
            if total > MAX_CELLS or level == MAX_LEVELS:
                x = (lo[0] + hi[0]) / 2
                raise ValueError(f"initial density {self.text!r} is not resolved by {MAX_LEVELS} levels of refinement "
                                 f"({total} cells; e.g. near x = {np.round(x, 6).tolist()}): it varies on a scale "
                                 "below the sampler's resolution; smooth it or shrink the domain")
        self.cell_lo, self.cell_hi = np.vstack(done_lo), np.vstack(done_hi)
        m = np.concatenate(done_m)
        self.mass = float(m.sum())
        self.cum = np.cumsum(m) / self.mass
        self.cum[-1] = 1.0
        self.envelope = ENVELOPE * np.concatenate(done_top)
        self.envelope_raised = 0             # proposals that found a value above the envelope (counted, then fixed)

    def _values(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            v = np.asarray(self.fn(*x.T), float)
        v = np.broadcast_to(v, (len(x),)) if v.shape != (len(x),) else v
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"initial density {self.text!r} is not finite at x = {np.round(x[i], 6).tolist()} "
                             f"(value {v[i]})")
        if (v < 0).any():
            i = int(np.argmin(v))
            raise ValueError(f"initial density {self.text!r} is negative at x = {np.round(x[i], 6).tolist()} "
                             f"(value {v[i]:.6g}): a density must be >= 0 on the domain")
        return v

    def _cells(self, lo, hi):
        """Each cell's Gauss mass and the largest value at its Gauss points, corners and centre."""
        size = hi - lo
        pts = lo[:, None, :] + size[:, None, :] * self._E[None, :, :]              # (C, P + 2^d + 1, d)
        v = self._values(pts.reshape(-1, self.d)).reshape(len(lo), -1)
        P = len(self._W)
        return v[:, :P] @ self._W * np.prod(size, axis=1), v.max(axis=1)

    def _children(self, lo, hi):
        offs = np.array(list(np.ndindex(*(2,) * self.d)), float)                  # (2^d, d)
        half = (hi - lo) / 2
        clo = (lo[:, None, :] + offs[None] * half[:, None, :]).reshape(-1, self.d)
        chi = clo + np.repeat(half, len(offs), axis=0)
        parent = np.repeat(np.arange(len(lo)), len(offs))
        m, top = self._cells(clo, chi)
        return clo, chi, m, top, parent

    def density(self, x: np.ndarray) -> np.ndarray:
        """The normalised density at points given components first (dolfinx's (3, n) is fine).

        Parameters
        ----------
        x : numpy.ndarray, shape (>= d, n)

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        x = np.asarray(x, float)[: self.d]
        with np.errstate(all="ignore"):
            v = np.asarray(self.fn(*x), float)
        return np.broadcast_to(v, x.shape[1:]) / self.mass if v.shape != x.shape[1:] else v / self.mass

    def _block(self, g: np.random.Generator, k: int) -> np.ndarray:
        envelope = self.envelope
        while True:
            c = np.searchsorted(self.cum, g.random(k), side="right").clip(0, len(self.cum) - 1)
            out = np.empty((k, self.d))
            pending = np.arange(k)
            above = None
            while len(pending):
                cc = c[pending]
                y = self.cell_lo[cc] + (self.cell_hi[cc] - self.cell_lo[cc]) * g.random((len(pending), self.d))
                v = self._values(y)
                over = v > envelope[cc]
                if over.any():
                    above = (cc[over], v[over])
                    break
                acc = g.random(len(pending)) * envelope[cc] < v
                out[pending[acc]] = y[acc]
                pending = pending[~acc]
            if above is None:
                return out
            self.envelope_raised += len(above[0])
            envelope = envelope.copy()                       # this block's own, raised where a value exceeded it
            np.maximum.at(envelope, above[0], 2.0 * above[1])

    def sample(self, streams) -> np.ndarray:
        """This rank's particles from the density, shape (streams.n_local, d)."""
        return streams.sample(self._block)

    def outside_problem(self) -> None:
        """None: a density lives on the domain."""
        return None

    def fields(self) -> dict:
        """The law's description, for comparisons across ranks."""
        return {"kind": self.kind, "density": self.text}


def initial_law(initial, d: int, domain, density_fn=None):
    """The model's initial law from its declaration.

    Parameters
    ----------
    initial : dict or None
        None: the standard Gaussian.
    d : int
    domain : (lower, upper) or None
    density_fn : callable, optional
        (text) -> (numpy function of the columns, the formula's text): how the model builds a density formula.

    Returns
    -------
    GaussianLaw or DensityLaw
    """
    if initial is None:
        initial = {"mean": np.zeros(d), "cov": 1.0}
    kind = check_keys(initial, d)
    if kind == "density":
        if domain is None:
            raise ValueError("an initial density formula needs the model's domain (to normalise and sample it)")
        fn, text = density_fn(initial["density"])
        return DensityLaw(fn, domain, text)
    mean, cov = gaussian_law(initial, d)
    return GaussianLaw(mean, cov, domain)
