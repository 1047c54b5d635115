"""Propagation of chaos where no PDE can be solved: two runs of a particle system against each other, with rates.

For each width N and seed s the study takes two runs of the same experiment (independent initialisations; the same
or independent data streams, as the experiment says) and measures the distance between their empirical laws: the
sliced W2 over all coordinates and the exact W1 of named coordinate marginals. When both runs converge to one
deterministic limit the distance falls with N (like N^-1/2 for the sampling of N particles, slower where the
dynamics add their own error, e.g. N^-(1-b)/2 for SGD with step gamma N^b); when the limit is random (SGD at b = 1
with common noise, runs on independent data) it does not. The slope of the mean distance against N is fitted with
an interval from the single seeds' slopes, and compared with the theory's exponent when one is given.

Snapshots from any trainer: a dict {(N, s): (theta_a, theta_b)} of (N, q) arrays, or an .npz file holding, for each
width N and seed s, the arrays `N<N>_s<s>_a` and `N<N>_s<s>_b` of shape (N, q) (rows the particles, the same q
columns everywhere) and optionally `names`, an array of q column names:

    np.savez("runs.npz", N250_s0_a=A, N250_s0_b=B, N1000_s0_a=..., names=np.array(["a0", "u0", ...]))
    chaos_study("runs.npz", marginals=["a0", "u0"], theory=-0.5)          # or `fpjko chaos runs.npz ...`

`train_snapshots` makes such pairs for the two-layer network of fpjko.samplers.two_layer.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

from fpjko.common import checks

KEY = re.compile(r"^N(\d+)_s(\d+)_([ab])$")


def load_snapshots(path: str) -> tuple[dict, list | None]:
    """The pairs and column names of a snapshot file (see the module doc), checked.

    Parameters
    ----------
    path : str

    Returns
    -------
    pairs : dict of (int, int) to (numpy.ndarray, numpy.ndarray)
    names : list of str or None
    """
    import zipfile

    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a snapshot file: an .npz (a zip of numpy arrays) is expected")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no snapshot file at {path!r}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{path!r} is not a snapshot file (.npz of arrays, maybe truncated): {e}") from None
    names = arrays.pop("names", None)
    bad = sorted(k for k in arrays if not KEY.match(k))
    if bad:
        raise ValueError(f"{path!r}: the keys {bad[:5]} are not of the form N<width>_s<seed>_<a|b> (or 'names')")
    runs, keys = {}, {}
    for k, v in arrays.items():
        N, s, r = KEY.match(k).groups()
        twin = keys.setdefault((int(N), int(s), r), k)
        if twin != k:
            raise ValueError(f"{path!r}: the keys {twin!r} and {k!r} name the same run (width {int(N)}, seed "
                             f"{int(s)}, run {r})")
        runs.setdefault((int(N), int(s)), {})[r] = v
    half = sorted(f"N{N}_s{s}" for (N, s), v in runs.items() if set(v) != {"a", "b"})
    if half:
        raise ValueError(f"{path!r}: the runs {half[:5]} lack their pair (both _a and _b are needed)")
    return {k: (v["a"], v["b"]) for k, v in runs.items()}, (None if names is None else [str(n) for n in names])


def check_snapshots(pairs: dict, names=None) -> tuple[list, list, int]:
    """The widths, the seeds and the columns q of the pairs, after checking shapes, seeds and values.

    Parameters
    ----------
    pairs : dict of (int, int) to (array, array)
    names : list of str, optional

    Returns
    -------
    ns : list of int
    seeds : list of int
    q : int
    """
    if not pairs:
        raise ValueError("no snapshots")
    ns = sorted({N for N, _ in pairs})
    seeds = sorted({s for _, s in pairs})
    missing = [f"N{N}_s{s}" for N in ns for s in seeds if (N, s) not in pairs]
    if missing:
        raise ValueError(f"every width needs every seed: {missing[:5]} missing (widths {ns}, seeds {seeds})")
    if len(ns) < 2:
        raise ValueError(f"a rate needs at least two widths, got {ns}")
    q = None
    for (N, s), pair in sorted(pairs.items()):
        for run, x in zip("ab", pair):
            x = np.asarray(x)
            if x.ndim != 2 or x.shape[0] != N or x.shape[1] == 0:
                raise ValueError(f"N{N}_s{s}_{run}: expected {N} particles as rows of an (N, q) array with q >= 1, "
                                 f"got shape {x.shape}")
            if x.dtype.kind not in "iuf":
                raise ValueError(f"N{N}_s{s}_{run}: the particles must be real numbers, got dtype {x.dtype}")
            q = x.shape[1] if q is None else q
            if x.shape[1] != q:
                raise ValueError(f"N{N}_s{s}_{run} has {x.shape[1]} columns, the others {q}: the runs disagree in "
                                 "shape")
            bad = ~(np.abs(np.asarray(x, float)) <= 1e150)         # their squares must stay finite
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(f"N{N}_s{s}_{run}: particle {i} holds {x[i, j]} in column {j}: "
                                 + ("not finite" if not np.isfinite(x[i, j]) else "too large (beyond 1e150)"))
    if names is not None and len(names) != q:
        raise ValueError(f"names has {len(names)} entries for {q} columns")
    return ns, seeds, q


def _w1_marginal(a: np.ndarray, b: np.ndarray) -> float:
    from fpjko.metrics.distances import wasserstein_1d

    return wasserstein_1d(a, b, 1)


def chaos_study(snapshots, marginals=(), names=None, theory=None, bound=None, n_projections: int = 128,
                seed: int = 0, label: str = "chaos", out: str | None = None, echo: bool = True, plot: bool = True,
                comm=None) -> dict:
    """The distance between the two runs of each (N, seed) against N, with fitted slopes.

    Parameters
    ----------
    snapshots : dict or str
        {(N, seed): (theta_a (N, q), theta_b (N, q))} or the path of an .npz (module doc).
    marginals : sequence of int or str
        Columns whose marginals' W1 is measured (indices, or names from `names` or the file's).
    names : sequence of str, optional
        The columns' names (default the file's, else 'x0', 'x1', ...).
    theory : float or dict, optional
        The exponent the theory predicts (one for all metrics, or {metric: exponent}); the result says whether
        it lies in each fitted interval.
    bound : float or dict, optional
        The exponent of a theorem's upper bound on the distance (e.g. -(1 - beta)/2 for SGD with step gamma N^beta):
        the result says whether the fitted interval lies at or below it (the distance falls at least that fast).
    n_projections : int
        Directions of the sliced W2.
    seed : int
        Their seed.
    label : str
        The experiment's name (tables, plot).
    out : str, optional
        A folder for chaos.json and chaos.png (rank 0, created and probed first on every rank).
    echo : bool
        Print the table (rank 0).
    plot : bool
        Write the plot (with out).
    comm : mpi4py.MPI.Comm, optional
        Rank 0 reads the file and measures; every rank gets the result (or the same error).

    Returns
    -------
    dict
        'label', 'ns', 'seeds', 'q', 'names', 'metrics': {name: {'mean': (len(ns),), 'std', 'per_seed':
        (seeds, len(ns)), 'slope', 'interval', 'theory', 'theory_in_interval', 'bound', 'bound_holds'}}.
    """
    from fpjko.common.collective import on_root, same_everywhere
    from fpjko.samplers.streams import default_comm

    comm = default_comm(comm)
    same_everywhere(comm, "chaos_study", {"snapshots": snapshots if isinstance(snapshots, str) else "pairs",
                                          "marginals": list(marginals), "names": names, "theory": theory,
                                          "bound": bound,
                                          "n_projections": n_projections, "seed": seed, "label": label, "out": out})
    rundir = None
    if out:
        from fpjko.solvers.io.rundir import OutputDir

        rundir = OutputDir(comm, out, option="out")
    try:
        result = on_root(comm, _measure, snapshots, list(marginals), names, theory, bound, n_projections, seed,
                         label)
        if echo and (comm is None or comm.rank == 0):
            print(format_chaos(result), flush=True)
        if out:
            on_root(comm, _write, result, out, plot, broadcast=False)
    finally:
        if rundir is not None:
            rundir.close()
    return result


def _measure(snapshots, marginals, names, theory, bound, n_projections, seed, label) -> dict:
    from fpjko.metrics.distances import sliced_wasserstein
    from fpjko.model.study import _fit

    if isinstance(snapshots, (str, os.PathLike)):
        pairs, file_names = load_snapshots(os.fspath(snapshots))
        names = names if names is not None else file_names
    else:
        pairs = snapshots
    ns, seeds, q = check_snapshots(pairs, names)
    names = list(names) if names is not None else [f"x{j}" for j in range(q)]
    cols = []
    for m in marginals:
        if isinstance(m, str):
            if m not in names:
                raise ValueError(f"marginal {m!r} is not a column name ({names[:8]}{'...' if q > 8 else ''})")
            cols.append(names.index(m))
        else:
            j = checks.integer("marginal", m, 0)
            if j >= q:
                raise ValueError(f"marginal column {j} is out of the {q} columns")
            cols.append(j)
    n_projections = checks.integer("n_projections", n_projections, 1)
    for what, v in (("theory", theory), ("bound", bound)):
        for k, e in (v.items() if isinstance(v, dict) else [(what, v)]):
            if e is not None:
                checks.number(f"{what} {k}" if isinstance(v, dict) else what, e)
    metrics = ["sliced W2"] + [f"W1 {names[j]}" for j in cols]
    per = {k: np.zeros((len(seeds), len(ns))) for k in metrics}
    for i, N in enumerate(ns):
        for r, s in enumerate(seeds):
            a, b = (np.asarray(x, float) for x in pairs[N, s])
            per["sliced W2"][r, i] = sliced_wasserstein(a, b, n_projections=n_projections, seed=seed)
            for j, k in zip(cols, metrics[1:]):
                per[k][r, i] = _w1_marginal(a[:, j], b[:, j])
    out = {}
    for k in metrics:
        mean = per[k].mean(axis=0)
        std = per[k].std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(len(ns))
        fit = _fit(ns, mean, per[k], 0.0)
        th = theory.get(k) if isinstance(theory, dict) else theory
        bd = bound.get(k) if isinstance(bound, dict) else bound
        lo, hi = fit["interval"]
        known = math.isfinite(lo)
        out[k] = {"mean": mean.tolist(), "std": std.tolist(), "per_seed": per[k].tolist(), **fit,
                  "theory": th, "theory_in_interval": None if th is None or not known else bool(lo <= th <= hi),
                  "bound": bd, "bound_holds": None if bd is None or not known else bool(hi <= bd)}
    return {"label": label, "ns": ns, "seeds": seeds, "q": q, "names": names, "metrics": out}


def _write(result: dict, out: str, plot: bool) -> None:
    from fpjko.common.files import write_json

    write_json(os.path.join(out, "chaos.json"), result, "study result")
    if plot:
        plot_chaos([result], os.path.join(out, "chaos.png"))


def format_chaos(result: dict) -> str:
    """The table of a chaos_study result: each distance against N with its spread, and the fitted slopes.

    Parameters
    ----------
    result : dict

    Returns
    -------
    str
    """
    names = list(result["metrics"])
    lines = [f"{result['label']}: two runs against each other ({len(result['seeds'])} seeds, {result['q']} "
             "coordinates per particle)", f"{'N':>8} " + " ".join(f"{k:>22}" for k in names)]
    for j, N in enumerate(result["ns"]):
        lines.append(f"{N:>8d} " + " ".join(f"{result['metrics'][k]['mean'][j]:>11.4e} +-{result['metrics'][k]['std'][j]:>8.1e}"
                                           for k in names))
    zero = [N for j, N in enumerate(result["ns"]) if result["metrics"][names[0]]["mean"][j] == 0.0]
    if zero:
        lines.append(f"the two runs are identical at N = {zero} (distance 0): no slope there")
    for k in names:
        m = result["metrics"][k]
        th = "" if m["theory"] is None else (f"; theory {m['theory']:g} " + ("inside" if m["theory_in_interval"]
                                                                           else "outside") + " the interval")
        if m.get("bound") is not None:
            th += f"; the bound's slope {m['bound']:g} " + ("holds (the interval lies below it)" if m["bound_holds"]
                                                           else "is not met by the interval")
        lines.append(f"{k}: slope {m['slope']:.3f} [{m['interval'][0]:.3f}, {m['interval'][1]:.3f}]{th}")
    return "\n".join(lines)


def plot_chaos(results: list, filename: str, metric: str = "sliced W2") -> None:
    """Log-log plot of one distance against N for one or several studies (e.g. one per beta), with the spread.

    Parameters
    ----------
    results : list of dict
        chaos_study results.
    filename : str
    metric : str
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for r in results:
        m = r["metrics"][metric]
        ns, mean, std = (np.asarray(v, float) for v in (r["ns"], m["mean"], m["std"]))
        line, = ax.loglog(ns, mean, "o-", label=f"{r['label']} (slope {m['slope']:.2f})")
        ax.fill_between(ns, np.maximum(mean - std, mean * 1e-3), mean + std, color=line.get_color(), alpha=0.2)
    ns = np.asarray(results[0]["ns"], float)
    first = np.asarray(results[0]["metrics"][metric]["mean"])
    ax.loglog(ns, first[0] * (ns / ns[0]) ** -0.5, "k--", lw=1, label="N^(-1/2)")
    ax.set_xlabel("width N")
    ax.set_ylabel(f"{metric} between two runs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(filename, dpi=110)
    plt.close(fig)


def train_snapshots(data, ns, seeds, beta: float, gamma: float, T: float | None = None, steps: int | None = None,
                    batch: int = 1, same_data: bool = False, mode: str = "shared", comm=None, progress=None,
                    **network) -> dict:
    """Pairs of two-layer networks trained by SGD with step gamma N^beta (fpjko.samplers.two_layer), for chaos_study.

    For each width N and seed s, runs a and b start from independent initialisations; run a reads the data stream
    of seed s, run b the same one (same_data=True: propagation of chaos given the data) or an independent one.

    Parameters
    ----------
    data : fpjko.samplers.data.Dataset
    ns : sequence of int
        The widths.
    seeds : sequence of int
    beta : float
    gamma : float
    T : float, optional
        The mean-field time of every run (steps = round(T / (gamma N^(beta - 1))): equal time).
    steps : int, optional
        The steps of every run instead (equal steps).
    batch : int
    same_data : bool
    mode : {'shared', 'independent'}
        As TwoLayerNetwork.sgd.
    comm : mpi4py.MPI.Comm, optional
        The neurons of each network are split over its ranks; every rank returns every run's neurons.
    progress : bool, optional
        Lines on rank 0 (stderr) per run (None: unless FPJKO_PROGRESS=0).
    **network
        TwoLayerNetwork keywords (outputs, activation, loss, bias, init, block).

    Returns
    -------
    dict
        'pairs' {(N, s): (theta_a, theta_b)} (chaos_study's input), 'names' (the columns), 'runs' {(N, s, 'a' or
        'b'): the run's history (train and test loss and accuracy, steps, t)}.
    """
    from fpjko.common.progress import StudyProgress
    from fpjko.samplers.streams import default_comm
    from fpjko.samplers.two_layer import TwoLayerNetwork

    comm = default_comm(comm)
    if (T is None) == (steps is None):
        raise ValueError("give the mean-field time T (equal time) or the number of steps (equal steps)")
    ns = [checks.integer("N", N, 1) for N in ns]
    seeds = [checks.integer("seed", s, 0) for s in seeds]

    def nsteps(N):
        return int(round(checks.positive_number("T", T) / (gamma * float(N) ** (beta - 1.0)))) if T is not None \
            else checks.integer("steps", steps, 0)
    weights = [nsteps(N) * N for N in ns for _ in seeds for _ in "ab"]
    prog = StudyProgress(f"chaos b={beta:g}", weights, comm.rank if comm is not None else 0, progress)
    pairs, runs, names = {}, {}, None
    for N in ns:
        for s in seeds:
            got = []
            for run in "ab":
                init = 1000 * s + (1 if run == "a" else 2)
                dseed = 1000 * s + (1 if run == "a" or same_data else 2)
                net = TwoLayerNetwork(N, data.p, seed=init, comm=comm, **network)
                hist = net.sgd(data, gamma, beta, nsteps(N), batch=batch, data_seed=dseed, mode=mode,
                               record_every=0)
                got.append(net.streams.allgather(net.neurons()))
                runs[N, s, run] = hist
                names = names or ([f"a{j}" for j in range(net.C)] + [f"u{j}" for j in range(net.p)]
                                  + (["c"] if net.bias else []))
                prog.run_done(f"N = {N}, seed {s}, run {run}: {nsteps(N)} steps, test accuracy "
                              f"{hist['test_accuracy'][-1]:.3f}")
            pairs[N, s] = tuple(got)
    return {"pairs": pairs, "names": names, "runs": runs}


def save_snapshots(path: str, pairs: dict, names=None) -> None:
    """Write pairs in the snapshot format (module doc), atomically.

    Parameters
    ----------
    path : str
    pairs : dict of (int, int) to (array, array)
    names : sequence of str, optional
    """
    from fpjko.common.files import _atomic

    arrays = {f"N{N}_s{s}_{r}": np.asarray(x, float) for (N, s), pair in pairs.items() for r, x in zip("ab", pair)}
    if names is not None:
        arrays["names"] = np.array(list(names))
    _atomic(path, "snapshot file", lambda fh: np.savez(fh, **arrays))

