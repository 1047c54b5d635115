"""The comparison itself: a model's particles against its PDE, with rates.

validate(model, ns, t, ...) runs the model's Fokker-Planck equation to time t on a mesh of size h and on one of
size h/2, and for each n and seed the model's particles to t; it measures the distance between each empirical
measure and the PDE solution (W1 exact in 1D, sliced W2 in 2D/3D, and the error of the mean), the same distance
between the two PDE solutions (the FE floor), and fits the slope of the mean distance against n over the n where
it is still above the floor (a distance near the floor no longer measures the particles), with an interval from
the slopes of the single seeds. Under MPI the particles are split over the ranks (bitwise the same as serially)
and the PDE is distributed; every rank returns the same result.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from fpjko.common import checks
from fpjko.metrics.study import fitted_slope

BINS = {1: 32, 2: 16, 3: 8}  # histogram bins per direction over the domain (the L1 and KL metrics)
FLOOR_FACTOR = 3.0          # points whose mean distance is below FLOOR_FACTOR x the FE floor are left out of the fit


def _w1_cdfs(g1, c1, g2, c2) -> float:
    """W1 = int |F1 - F2| dx between two piecewise-linear CDFs (on a common refinement of their grids)."""
    x = np.union1d(g1, g2)
    d = np.abs(np.interp(x, g1, c1) - np.interp(x, g2, c2))
    return float(np.sum(0.5 * (d[1:] + d[:-1]) * np.diff(x)))


NEG_TOL = 1e-2              # Galerkin undershoots below this fraction of the density's maximum are set to zero (they
                            # are part of the FE error, which the floor measures); larger ones are an error


class DensityReference:
    """The PDE side at time t of a model on R^d: the distances of a cloud of particles to its density.

    The metrics: W1 (exact, 1D) or sliced W2 (2D/3D); the L1 distance and the KL divergence KL(hist || rho)
    between the particles' histogram and the density's masses on BINS[d] bins per direction of the domain (the
    DG0 histogram against the FE density on those bins; KL falls like (bins - 1) / (2n), slope -1); the errors of
    the mean and of the covariance (Frobenius); and, where the model gives its potential, the error of the
    potential energy int V d(mu_n - rho).

    Parameters
    ----------
    solver : a density solver of the protocol (its `rho` and `degree`)
    d : int
    n_projections : int
        Directions of the sliced W2 (d >= 2).
    seed : int
        Seed of those directions.
    V : callable, optional
        The potential, x of shape (n, d) -> (n,).
    domain : (lower, upper), optional
        The box of the histogram's bins (default: the density's quadrature points' bounding box).
    bins : sequence of int, optional
        Bins per direction (default BINS[d]); validate() picks a divisor of the mesh's cells per side, so that
        every FE cell lies in one bin and the density's bin masses are exact quadratures.
    """

    def __init__(self, solver, d: int, n_projections: int, seed: int, V=None, domain=None, bins=None):
        from fpjko.solvers.particles import empirical

        self.d, self.n_projections, self.seed, self.V = d, n_projections, seed, V
        self.pts, self.w = empirical.density_as_measure(solver.rho, quadrature_degree=2 * solver.degree + 2,
                                                        neg_tol=NEG_TOL)
        if d == 1:
            self.grid, self.cdf = empirical.cdf_1d(solver.rho, neg_tol=NEG_TOL)
        self.mean = self.w @ self.pts
        dev = self.pts - self.mean
        self.cov = (self.w[:, None] * dev).T @ dev
        self.energy = float(self.w @ V(self.pts)) if V is not None else None
        lo, hi = domain if domain is not None else (self.pts.min(axis=0), self.pts.max(axis=0))
        bins = [BINS[d]] * d if bins is None else list(bins)
        self.edges = [np.linspace(lo[i], hi[i], bins[i] + 1) for i in range(d)]
        self.P = self._masses(self.pts, self.w)

    def _masses(self, x, w=None) -> np.ndarray:
        """The (weighted) fraction of the points in each bin, flattened; points outside are clipped in."""
        x = np.column_stack([np.clip(x[:, i], e[0], e[-1]) for i, e in enumerate(self.edges)])
        h, _ = np.histogramdd(x, bins=self.edges, weights=w)
        h = h.ravel()
        return h / h.sum()

    @staticmethod
    def _kl(p, q) -> float:
        on = p > 0
        return float(np.sum(p[on] * np.log(p[on] / np.maximum(q[on], 1e-300))))

    @property
    def names(self) -> tuple:
        """The metrics' names."""
        return (("W1" if self.d == 1 else "sliced W2", "histogram L1", "histogram KL", "mean error", "covariance error")
                + (("energy error",) if self.V is not None else ()))

    def distances(self, x: np.ndarray) -> dict:
        """Each metric between the particles and the density.

        Parameters
        ----------
        x : numpy.ndarray, shape (n, d)
            All particles.

        Returns
        -------
        dict of str to float
        """
        from fpjko.metrics.distances import sliced_wasserstein, wasserstein_1d_cdf

        if self.d == 1:
            first = wasserstein_1d_cdf(x[:, 0], self.grid, self.cdf, 1)
        else:
            first = sliced_wasserstein(x, self.pts, wy=self.w, n_projections=self.n_projections, seed=self.seed)
        m, p = x.mean(axis=0), self._masses(x)
        out = {self.names[0]: first, "histogram L1": float(np.abs(p - self.P).sum()), "histogram KL": self._kl(p, self.P),
               "mean error": float(np.linalg.norm(m - self.mean)),
               "covariance error": float(np.linalg.norm((x - m).T @ (x - m) / len(x) - self.cov))}
        if self.V is not None:
            out["energy error"] = abs(float(np.mean(self.V(x))) - self.energy)
        return out

    def floors(self, other: "DensityReference") -> dict:
        """Each metric between this density and another (the FE floor).

        Parameters
        ----------
        other : DensityReference

        Returns
        -------
        dict of str to float
        """
        from fpjko.metrics.distances import sliced_wasserstein

        if self.d == 1:
            first = _w1_cdfs(self.grid, self.cdf, other.grid, other.cdf)
        else:
            first = sliced_wasserstein(self.pts, other.pts, wx=self.w, wy=other.w, n_projections=self.n_projections,
                                       seed=self.seed)
        out = {self.names[0]: first, "histogram L1": float(np.abs(self.P - other.P).sum()),
               "histogram KL": self._kl(self.P, other.P), "mean error": float(np.linalg.norm(self.mean - other.mean)),
               "covariance error": float(np.linalg.norm(self.cov - other.cov))}
        if self.V is not None:
            out["energy error"] = abs(self.energy - other.energy)
        return out


def _aligned_bins(domain, h: float, d: int) -> list:
    """Bins per direction that divide the cells per side of the coarser box mesh (h; the finer one has exactly twice
    as many, see validate), so that every FE cell of both lies in one bin and the densities' bin masses are exact
    quadratures: the largest divisor from 4 to BINS[d], else the smallest divisor above BINS[d]."""
    from fpjko.model.solvers import box_cells

    out = []
    for cells in box_cells(domain, h):
        within = [k for k in range(4, BINS[d] + 1) if cells % k == 0]
        above = [k for k in range(BINS[d] + 1, cells + 1) if cells % k == 0]
        out.append(max(within) if within else min(above) if above else cells)
    return out


def _fit(ns, mean, per_seed, floor):
    """Slope over the leading n whose mean distance is above FLOOR_FACTOR x floor, with a 2-standard-error interval
    from the single seeds' slopes; where the fit stopped."""
    ns, mean = np.asarray(ns, float), np.asarray(mean, float)
    keep = mean > FLOOR_FACTOR * floor
    # the fit uses the n before the first one at the floor (larger n only come closer to it)
    last = int(np.argmin(keep)) if not keep.all() else len(ns)
    used = slice(0, last)
    out = {"fit_ns": ns[used].astype(int).tolist(), "stopped_at_floor": last < len(ns),
           "stopped_at_n": int(ns[last]) if last < len(ns) else None}
    if last < 2:
        out.update(slope=math.nan, interval=[math.nan, math.nan])
        return out
    s = fitted_slope(ns[used], mean[used])
    seeds = [fitted_slope(ns[used], np.asarray(ps, float)[used]) for ps in per_seed]
    half = 2.0 * float(np.std(seeds, ddof=1)) / math.sqrt(len(seeds)) if len(seeds) > 1 else math.nan
    out.update(slope=s, interval=[s - half, s + half], seed_slopes=seeds)
    return out


def validate(model, ns, t: float, repeats: int = 3, seed: int = 0, dt: float = 1e-3, h: float | None = None,
             degree: int = 2, fe_dt: float | None = None, comm=None, n_projections: int = 64,
             out: str | None = None, echo: bool = True, plot: bool = True, keep: bool = False,
             particle_options: dict | None = None, progress: bool | None = None, **fe_options) -> dict:
    """The model's particles against its PDE at time t, for each n, with fitted rates.

    Every argument (and the model's fields) is compared across the ranks of comm first, the sizes (the finer mesh,
    the largest n) are refused before anything is allocated when they would not fit the memory, and `out` is
    created and probed (collectively) before anything runs.

    Parameters
    ----------
    model : fpjko.model.Model
        With a domain.
    ns : sequence of int
        Particle counts (each >= 1), increasing.
    t : float
        The time of the comparison (> 0; a whole number of particle steps dt and of PDE steps fe_dt).
        A model of its own kind (NetworkModel, GraphonModel) plugs in with the same methods: mesh(comm, h),
        fokker_planck(mesh, dt, degree, ...), particles(n, seed, comm, dt, t_end) -> (streams or None, x), and
        optionally reference(solver) -> an object with names, distances(x) and floors(other) (default:
        DensityReference).
    repeats : int
        Seeds per n (seed + 1000 r, r < repeats).
    seed : int
    dt : float
        The particles' Euler-Maruyama step.
    h : float, optional
        The FE cell size (default: the domain's shortest side / 200 in 1D, / 40 in 2D, / 12 in 3D); the floor uses
        h / 2 too.
    degree : int
        The FE degree.
    fe_dt : float, optional
        The FE time step (default min(dt * 10, t / 20)).
    comm : mpi4py.MPI.Comm, optional
    n_projections : int
        Directions of the sliced W2 (2D/3D).
    out : str, optional
        A folder for validate.json and validate.png (rank 0).
    echo : bool
        Print the table on rank 0.
    plot : bool
        Write the log-log plot (with out).
    keep : bool
        Also return the finer PDE solver ('solver', open: close it when done) and the last particle run
        ('particles': (streams, this rank's particles)), for figures.
    particle_options : dict, optional
        More keywords of model.particles (for a Model: force='auto' | 'direct' | 'mesh' | 'rbm', cells, batch).
    progress : bool, optional
        Lines on rank 0 (stderr) as the study goes: each run's n and seed, its time, the time elapsed and an
        estimate of what remains (None: on unless FPJKO_PROGRESS=0, which `fpjko ... --quiet` sets).
    **fe_options
        More keywords of the model's Fokker-Planck solver (interaction_scheme, solver, method, ...).

    Returns
    -------
    dict
        'model', 'metrics' (W1 or sliced W2, histogram L1 and KL, the errors of the mean, the covariance and the
        potential energy, or a model's own): {name: {'mean': (len(ns),), 'std', 'per_seed': (repeats, len(ns)), 'floor', 'slope',
        'interval', 'fit_ns', 'stopped_at_floor', 'stopped_at_n'}}, 'ns', 't', 'fe': {'h', 'dofs', 'mass_drift'}.
    """
    from mpi4py import MPI

    import inspect

    from fpjko.common.collective import agree, on_root, same_everywhere
    from fpjko.common.progress import StudyProgress
    from fpjko.model.solvers import box_cells

    comm = MPI.COMM_WORLD if comm is None else comm
    fields = model.fields("model.") if hasattr(model, "fields") else {"model": model}
    same_everywhere(comm, "validate", {**fields, "ns": ns, "t": t, "repeats": repeats, "seed": seed, "dt": dt,
                                       "h": h, "degree": degree, "fe_dt": fe_dt, "n_projections": n_projections,
                                       "out": out, "keep": keep, "particle_options": particle_options,
                                       "fe_options": fe_options})      # echo, plot, progress: rank 0's output
    plan = _plan(model, ns, t, repeats, seed, dt, h, degree, fe_dt, n_projections, particle_options, comm.size)
    ns, t, repeats, h, fe_dt, popts = plan["ns"], plan["t"], plan["repeats"], plan["h"], plan["fe_dt"], plan["popts"]
    agree(comm, plan["size_problem"], MemoryError)
    rundir = None
    if out:
        from fpjko.solvers.io.rundir import OutputDir

        rundir = OutputDir(comm, out, option="out")
    runs = [(n, seed + 1000 * r) for n in ns for r in range(repeats)]
    prog = StudyProgress("validate", [plan["weight"](n) for n, _ in runs], comm.rank, progress)
    prog.note(f"{len(runs)} particle runs (n = {ns}, {repeats} seeds, {plan['steps']} steps of dt = {dt:g}, "
              f"force {plan['force_text']}) and the PDE on h = {h:g} and h/2")
    try:
        refs, fe_info = [], []
        for hh in (h, h / 2):
            mesh = model.mesh(comm, hh) if hh == h or "cells" not in inspect.signature(model.mesh).parameters else \
                model.mesh(comm, hh, cells=[2 * c for c in box_cells(model.domain, h)])   # exactly twice the cells
            s = model.fokker_planck(mesh, dt=fe_dt, degree=degree, **{"scheme": "bdf2", **fe_options})
            s.run(t)
            refs.append(model.reference(s) if hasattr(model, "reference") else
                        DensityReference(s, model.d, n_projections, seed, V=getattr(model, "V_np", None),
                                         domain=model.domain, bins=_aligned_bins(model.domain, h, model.d)))
            fe_info.append({"h": hh, "dofs": getattr(s, "num_dofs", None),
                            "mass_drift": abs(s.history["mass"][-1] - s.history["mass"][0]) / s.history["mass"][0]})
            if hh == h or not keep:
                s.close()
            prog.note(f"the PDE on h = {hh:g} ({fe_info[-1]['dofs']} dofs): {prog.phase():.2f} s")
        ref = refs[1]                                    # the finer solution is the reference
        names = ref.names
        floors = refs[0].floors(refs[1])
        per_seed = {k: np.zeros((repeats, len(ns))) for k in names}
        for i, (n, sd) in enumerate(runs):
            j, r = divmod(i, repeats)
            st, x = model.particles(n, sd, comm=comm, dt=dt, t_end=t, **popts)
            xs = st.allgather(x) if st is not None else x   # the same cloud (and distances) on every rank
            _check_inside(xs, model.domain, n, sd, t)          # the same verdict on every rank
            for k, v in ref.distances(xs).items():
                per_seed[k][r, j] = v
            prog.run_done(f"n = {n}, seed {sd}")
    finally:
        if rundir is not None:
            rundir.close()
    metrics = {}
    for k in names:
        mean, std = per_seed[k].mean(axis=0), per_seed[k].std(axis=0, ddof=1) if repeats > 1 else np.zeros(len(ns))
        metrics[k] = {"mean": mean.tolist(), "std": np.asarray(std).tolist(), "per_seed": per_seed[k].tolist(),
                      "floor": floors[k], **_fit(ns, mean, per_seed[k], floors[k])}
    result = {"model": model.name, "d": model.d, "t": t, "ns": ns, "repeats": repeats, "dt": dt,
              "fe": {"h": h, "degree": degree, "dt": fe_dt, "dofs": [f["dofs"] for f in fe_info],
                     "mass_drift": max(f["mass_drift"] for f in fe_info)},
              "ranks": comm.size, "metrics": metrics}
    if echo and comm.rank == 0:
        print(format_result(result), flush=True)
    if out:
        on_root(comm, _write_result, result, out, plot, broadcast=False)
    if keep:
        result.update(solver=s, particles=(st, x))
    return result


def _check_inside(xs: np.ndarray, domain, n: int, seed: int, t: float) -> None:
    """Refuse a cloud with more particles outside the domain than MASS_OUTSIDE_TOL of the mass explains (with 4
    standard deviations of slack): the PDE lives on the box with no-flux walls, so it is not the law of particles
    that leave it (a drift that pushes them out, a pole of V)."""
    from fpjko.model.laws import MASS_OUTSIDE_TOL

    lo, hi = domain
    out = ~np.all((xs >= lo) & (xs <= hi), axis=1)
    k = int(out.sum())
    if k > n * MASS_OUTSIDE_TOL + 4 * math.sqrt(n * MASS_OUTSIDE_TOL) + 2:
        far = xs[out][int(np.argmax(np.max(np.maximum(lo - xs[out], xs[out] - hi), axis=1)))]
        raise ValueError(f"n = {n}, seed {seed}: {k} of the particles ({k / n:.1%}) are outside the domain "
                         f"{lo.tolist()} .. {hi.tolist()} at t = {t:g} (the farthest at {np.round(far, 4).tolist()}): "
                         "the PDE on the domain (no-flux walls) is not their law; take a larger domain, or check V "
                         "and b for a drift that pushes them out")


def _write_result(result: dict, out: str, plot: bool) -> None:
    from fpjko.common.files import write_json

    write_json(os.path.join(out, "validate.json"), result, "study result")
    if plot:
        plot_result(result, os.path.join(out, "validate.png"))


def _plan(model, ns, t, repeats, seed, dt, h, degree, fe_dt, n_projections, particle_options, ranks) -> dict:
    """validate's arguments checked (the same verdict on every rank: they are equal everywhere), the defaults filled
    in, the cost weight of each run and the refusal of sizes that do not fit the memory."""
    import inspect

    from fpjko.model.solvers import fe_problem, particles_problem

    if isinstance(ns, (str, bytes)) or not hasattr(ns, "__len__"):
        raise TypeError(f"ns must be a list of particle counts, got ns={ns!r}")
    ns = [checks.integer("n", n, 1) for n in ns]
    if len(ns) < 2 or any(b <= a for a, b in zip(ns, ns[1:])):
        raise ValueError(f"validate needs at least two increasing particle counts, got ns={ns}")
    t = checks.positive_number("t", t)
    repeats = checks.integer("repeats", repeats, 1)
    checks.integer("seed", seed, 0)
    dt = checks.positive_number("dt", dt)
    degree = checks.integer("degree", degree, 1)
    checks.integer("n_projections", n_projections, 1)
    domain = getattr(model, "domain", None)
    if domain is None:
        raise ValueError(f"model {model.name!r} has no domain: validate needs one for the PDE")
    law = getattr(model, "initial", None)
    if hasattr(law, "outside_problem") and law.outside_problem():
        raise ValueError(f"model {model.name!r}: {law.outside_problem()}")
    lo, hi = domain
    h = checks.positive_number("h", h) if h is not None else float(np.min(hi - lo)) / {1: 200, 2: 40, 3: 12}[model.d]
    fe_dt = checks.positive_number("fe_dt", fe_dt) if fe_dt is not None else min(10 * dt, t / 20)
    for what, step in (("particle steps dt", dt), ("PDE steps fe_dt", fe_dt)):
        k = t / step
        if abs(k - round(k)) > 1e-9 * k:
            raise ValueError(f"t={t:g} is not a whole number of {what}={step:g}")
    popts = dict(particle_options or {})
    if not isinstance(particle_options, (dict, type(None))):
        raise TypeError(f"particle_options must be a dict of model.particles keywords, got {particle_options!r}")
    known = set(inspect.signature(model.particles).parameters) - {"n", "seed", "comm", "dt", "t_end", "callback"}
    unknown = sorted(set(popts) - known)
    if unknown:
        raise ValueError(f"particle_options: unknown keys {unknown} (model.particles takes {sorted(known)})")
    force = popts.get("force", "auto")
    choose = getattr(model, "choose_force", None)
    kinds = {n: choose(force, n) if choose is not None else "own" for n in ns}
    steps = int(round(t / dt))

    from fpjko.model.solvers import step_seconds

    def weight(n):
        return steps * (step_seconds(kinds[n], n, model.d, popts.get("cells")) if choose is not None else n)
    from fpjko.common import sizes

    problem = (fe_problem(domain, h / 2, degree) or particles_problem(ns[-1], model.d, kinds[ns[-1]], ranks)
               or sizes.memory_problem(f"repeats = {repeats} seeds of {len(ns)} particle counts", 8.0 * 8 * repeats
                                       * len(ns), "take fewer repeats")
               or sizes.memory_problem(f"n_projections = {n_projections} directions in {model.d}D",
                                       8.0 * n_projections * model.d, "take fewer directions"))
    text = ", ".join(sorted({f"{v} (n = {min(k for k in ns if kinds[k] == v)}..)" for v in kinds.values()})) \
        if choose is not None else "the model's own"
    return {"ns": ns, "t": t, "repeats": repeats, "h": h, "fe_dt": fe_dt, "popts": popts, "weight": weight,
            "steps": steps, "size_problem": problem, "force_text": text}


def format_result(result: dict) -> str:
    """The table of a validate() result: distance against n per metric, the floor and the fitted slope.

    Parameters
    ----------
    result : dict
        As validate returns it.

    Returns
    -------
    str
    """
    names = list(result["metrics"])
    dofs = result["fe"]["dofs"][-1]
    lines = [f"{result['model']}: particles vs PDE at t = {result['t']:g} ({result['repeats']} seeds, "
             f"PDE h = {result['fe']['h']:g}" + (f", {dofs} dofs)" if dofs is not None else ")"),
             f"{'n':>9} " + " ".join(f"{k:>22}" for k in names)]
    for j, n in enumerate(result["ns"]):
        lines.append(f"{n:>9d} " + " ".join(f"{result['metrics'][k]['mean'][j]:>11.4e} +-{result['metrics'][k]['std'][j]:>8.1e}"
                                            for k in names))
    for k in names:
        m = result["metrics"][k]
        stop = (f"; the fit stops at n = {m['stopped_at_n']} (within {FLOOR_FACTOR:g}x the floor)"
                if m["stopped_at_floor"] else "")
        lines.append(f"{k}: slope {m['slope']:.3f} [{m['interval'][0]:.3f}, {m['interval'][1]:.3f}] over n = "
                     f"{m['fit_ns']}; FE floor {m['floor']:.2e}{stop}")
    return "\n".join(lines)


def plot_result(result: dict, filename: str) -> None:
    """Log-log plot of each distance against n with its seeds' spread, the FE floor and the n^(-1/2) reference.

    Parameters
    ----------
    result : dict
        As validate returns it.
    filename : str
        The PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = np.asarray(result["ns"], float)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for k, m in result["metrics"].items():
        mean, std = np.asarray(m["mean"]), np.asarray(m["std"])
        line, = ax.loglog(ns, mean, "o-", label=f"{k} (slope {m['slope']:.2f})")
        ax.fill_between(ns, np.maximum(mean - std, mean * 1e-3), mean + std, color=line.get_color(), alpha=0.2)
        ax.axhline(m["floor"], color=line.get_color(), ls=":", lw=1, label=f"{k}: FE floor")
    first = np.asarray(next(iter(result["metrics"].values()))["mean"])
    ax.loglog(ns, first[0] * (ns / ns[0]) ** -0.5, "k--", lw=1, label="n^(-1/2)")
    ax.set_xlabel("particles n")
    ax.set_ylabel("distance to the PDE at t = %g" % result["t"])
    ax.set_title(f"{result['model']}: particles vs Fokker-Planck")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(filename, dpi=110)
    plt.close(fig)
