# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Wide two-layer networks on handwritten digits: SGD against its mean-field PDE, and against itself
#
# The experiment of De Bortoli, Durmus, Fontaine and Simsekli ("Quantitative propagation of chaos for SGD in wide
# neural networks", NeurIPS 2020) with numbers: a two-layer network
# $f(x) = \frac1N\sum_{k=1}^N a_k\,\sigma(\langle u_k, x\rangle + c_k)$, both layers trained by SGD with step
# $\gamma N^\beta$ on scikit-learn's digits (1797 images of $8\times 8$ pixels, 10 classes; a fixed seeded split,
# 1347 for training, 450 for testing). One SGD step moves each neuron $\theta_k = (a_k, u_k, c_k)$ by
# $\gamma N^{\beta-1}$ times its per-sample gradient, so it advances the mean-field time by $h = \gamma N^{\beta-1}$.
# Which particle system has which limit:
#
# * $\beta < 1$, SGD as run (every neuron sees the same samples): $h\to 0$, the law of the neurons converges to the
#   deterministic continuity equation $\rho_t = \nabla\cdot(\rho\nabla\Psi(\theta;\rho))$ with
#   $\mathbb E\sup_t|\theta^N-\theta^*|^2 \le C N^{-(1-\beta)}$ besides the $N^{-1}$ of sampling $N$ neurons;
# * $\beta = 1$, each neuron its own samples (independent noise): the McKean-Vlasov equation with the diffusion
#   $\frac{\gamma}{2B}\partial_{ij}(\rho\Sigma_{ij})$, $\Sigma$ the covariance of the per-sample gradient;
# * $\beta = 1$, SGD as run: the noise is common to all neurons and does not average out. The law stays random as
#   $N$ grows: two runs on independent data streams do not approach each other; two runs on the same data stream
#   from independent initialisations do (propagation of chaos given the data).
#
# **Part 1** checks the limits against the PDE where it can be solved: the digits 3 and 8 projected on their first
# principal component, a scalar output with square loss, neurons $(a, u)\in\mathbb R^2$, their law against
# `fpjko.solvers.network_pde` through `fpjko.model.validate`. **Part 2** runs the full network (64 inputs, 10
# outputs, cross-entropy, 75 numbers per neuron), where no PDE can be solved, against itself:
# `fpjko.model.chaos`. **Part 3** is the paper's Figure 1 and Table 1, at equal steps and at equal time.
#
#     python3 -m fpjko.demos.digits --out results/digits
#     mpirun -n 2 python3 -m fpjko.demos.digits

# %%
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from mpi4py import MPI

from fpjko import cli
from fpjko.model import NetworkModel, validate
from fpjko.model.chaos import chaos_study, format_chaos, plot_chaos, save_snapshots, train_snapshots
from fpjko.samplers import data as datasets
from fpjko.samplers.mean_field_nn import TeacherData
from fpjko.samplers.two_layer import TwoLayerNetwork

BETAS = (0.5, 0.75, 1.0)


def parse(argv=None):
    p = argparse.ArgumentParser(description="Wide two-layer networks on digits: SGD against its PDE and itself")
    p.add_argument("--out", default="results/digits")
    p.add_argument("--ns", type=int, nargs="*", default=[250, 1000, 4000, 16000], help="widths of Part 2 and 3")
    p.add_argument("--seeds", type=int, default=3, help="pairs of runs per width")
    p.add_argument("--gamma", type=float, default=0.1, help="the step is gamma N^beta")
    p.add_argument("--T", type=float, default=10.0, help="mean-field time of Part 2 (equal time)")
    p.add_argument("--steps", type=int, default=2000, help="steps of the equal-steps table")
    p.add_argument("--pde-ns", type=int, nargs="*", default=[250, 1000, 4000, 16000], help="widths of Part 1")
    p.add_argument("--pde-repeats", type=int, default=3)
    p.add_argument("--pde-t", type=float, default=1.0, help="mean-field time of Part 1")
    p.add_argument("--pde-gamma", type=float, default=0.2)
    p.add_argument("--h", type=float, default=0.15, help="the PDE's mesh size (the floor uses h/2)")
    p.add_argument("--no-pde", action="store_true", help="skip Part 1")
    p.add_argument("--no-png", action="store_true")
    return cli.parse_args(p, argv)


# %% [markdown]
# ## The data and the network
#
# `fpjko.samplers.data.digits()` reads the file Debian's python3-sklearn ships (nothing is downloaded), splits it
# with a fixed seed (stratified, 25% for testing) and standardises the pixels with the training part's statistics;
# `from_arrays(X, y)` and `from_npz(path)` take any other data (MNIST on disk runs the same study).
# `fpjko.samplers.two_layer.TwoLayerNetwork` holds the neurons, split over the MPI ranks in fixed blocks of 1024,
# every sum over neurons added in block order: a run is bitwise the same on any number of ranks.

# %%
def pde_part(a, comm):
    """Part 1: digits 3 and 8 on their first principal component; neurons (a, u) in R^2; square loss on +-1."""
    d = datasets.digits(classes=(3, 8), pca=1)
    td = TeacherData(d.X_train, d.targets(d.y_train), "tanh", output_weight=True)
    common = dict(initial={"mean": [0.0, 0.0], "cov": 0.25}, domain=([-3.5, -3.0], [3.5, 3.0]))
    g = a.pde_gamma
    cases = [("b = 0.5, SGD as run, vs the continuity equation", dict(sgd={"beta": 0.5, "gamma": g})),
             ("b = 1, continuous-time model (independent noise), vs the diffusive PDE", dict(gamma=g)),
             ("b = 1, SGD as run (common noise), vs the diffusive PDE", dict(sgd={"beta": 1.0, "gamma": g}))]
    out = {}
    for label, kw in cases:
        m = NetworkModel(td, name=label, **kw, **common)
        fe_steps = max(1, round(40 * a.pde_t / a.h))            # a CFL number of about 0.1 for the transport
        r = validate(m, a.pde_ns, a.pde_t, repeats=a.pde_repeats, dt=a.pde_t / max(1, round(a.pde_t / 0.01)), h=a.h,
                     degree=1, fe_dt=a.pde_t / fe_steps, comm=comm, echo=True, plot=False)
        out[label] = {"ns": r["ns"], "sliced W2": r["metrics"]["sliced W2"], "mean error": r["metrics"]["mean error"],
                      "floor": r["metrics"]["sliced W2"]["floor"]}
    return out


# %% [markdown]
# ## Part 2: the full network against itself
#
# 64 inputs, 10 outputs, relu, cross-entropy, minibatch $B=1$, $\gamma = 0.1$. For each $\beta$, width $N$ and seed,
# two runs from independent initialisations to the same mean-field time $T$, and the distance between their laws of
# neurons: sliced $W_2$ over all 75 coordinates, $W_1$ of the marginal of one output weight $a_0$ and of one input
# weight $u_{36}$ (a central pixel). At $\beta=1$ twice: on independent data streams and on the same stream.

# %%
def chaos_part(a, d, comm):
    net = dict(outputs=10, activation="relu", loss="cross_entropy")
    studies, runs = {}, {}
    plan = [(f"b = {b:g}", b, False) for b in BETAS] + [("b = 1, same data", 1.0, True)]
    for label, b, same in plan:
        t = train_snapshots(d, a.ns, range(a.seeds), b, a.gamma, T=a.T, same_data=same, comm=comm, **net)
        # the theory: for b < 1 the bound N^-(1-b)/2 on the distance (the sampling of N neurons adds N^-1/2); at
        # b = 1 no decay on independent data (common noise), N^-1/2 on the same data (chaos given the data)
        theory = None if b < 1 else (-0.5 if same else 0.0)
        bound = -(1 - b) / 2 if b < 1 else None
        studies[label] = chaos_study(t["pairs"], marginals=["a0", "u36"], names=t["names"], theory=theory,
                                     bound=bound, label=label, echo=False, comm=comm)
        runs[label] = t
        if comm.rank == 0:
            print(format_chaos(studies[label]), flush=True)
    return studies, runs


# %% [markdown]
# ## Part 3: the paper's Figure 1 and Table 1
#
# Histograms of $u_{k,36}$ and $a_{k,0}$ across $N$, one row per $\beta$ (run a of seed 0), and the train and test
# accuracy by $N$ and $\beta$, each two ways: after the same number of steps (as the paper compares), and at the
# same mean-field time $T$ (Part 2's runs). `figure1_equal_steps.png`, `figure1_equal_time.png`.

# %%
def equal_steps(a, d, comm):
    """Run a of seed 0 of every beta and N again, for `steps` SGD steps (its mean-field time is steps gamma
    N^(beta - 1)): the accuracies and the neurons (the same initialisation and data stream as Part 2's run a)."""
    rows, neurons = {}, {}
    for b in BETAS:
        for N in a.ns:
            net = TwoLayerNetwork(N, d.p, 10, "relu", "cross_entropy", seed=1, comm=comm)
            h = net.sgd(d, a.gamma, b, a.steps, data_seed=1, record_every=a.steps)
            rows[f"{b:g}/{N}"] = {"beta": b, "N": N, "t": h["t"][-1], "train": h["train_accuracy"][-1],
                                  "test": h["test_accuracy"][-1]}
            neurons[b, N] = net.streams.allgather(net.neurons())
    return rows, neurons


def table(rows) -> str:
    lines = [f"{'beta':>6} {'N':>7} {'time':>9} {'train acc':>10} {'test acc':>9}"]
    for r in rows.values():
        lines.append(f"{r['beta']:>6g} {r['N']:>7d} {r['t']:>9.3g} {r['train']:>10.3f} {r['test']:>9.3f}")
    return "\n".join(lines)


def figure1(neurons, ns, filename, when):
    """neurons[beta, N]: the (N, 75) neurons of one run; one row per beta, u_{k,36} and a_{k,0} across N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(BETAS), 2, figsize=(9, 2.6 * len(BETAS)))
    for row, b in enumerate(BETAS):
        for col, (j, name) in enumerate(((10 + 36, "$u_{k,36}$"), (0, "$a_{k,0}$"))):
            ax = axes[row, col]
            for N in ns:
                ax.hist(neurons[b, N][:, j], bins=60, density=True, histtype="step", label=f"N = {N}")
            ax.set_title(f"beta = {b:g}: {name} ({when})", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(filename, dpi=100)
    plt.close(fig)


# %% [markdown]
# ## The run

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    pde = {} if a.no_pde else pde_part(a, comm)
    t1 = time.perf_counter()
    d = datasets.digits()
    studies, runs = chaos_part(a, d, comm)
    t2 = time.perf_counter()
    by_steps, steps_neurons = equal_steps(a, d, comm)
    by_time = {}
    for b in BETAS:
        for N in a.ns:
            hist = [runs[f"b = {b:g}"]["runs"][N, s, "a"] for s in range(a.seeds)]
            by_time[f"{b:g}/{N}"] = {"beta": b, "N": N, "t": hist[0]["t"][-1],
                                     "train": float(np.mean([h["train_accuracy"][-1] for h in hist])),
                                     "test": float(np.mean([h["test_accuracy"][-1] for h in hist]))}
    t3 = time.perf_counter()
    summary = {"pde": pde, "chaos": studies, "table1_equal_steps": by_steps, "table1_equal_time": by_time,
               "gamma": a.gamma, "T": a.T, "steps": a.steps, "ns": a.ns, "seeds": a.seeds, "ranks": comm.size,
               "seconds": {"pde": t1 - t0, "chaos": t2 - t1, "table": t3 - t2}}
    if comm.rank == 0:
        print(f"Table 1, after {a.steps} steps:\n{table(by_steps)}\nTable 1, at mean-field time T = {a.T:g}:\n"
              f"{table(by_time)}", flush=True)
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1, default=str)
        save_snapshots(os.path.join(a.out, "runs_b1.npz"), runs["b = 1"]["pairs"], runs["b = 1"]["names"])
        if not a.no_png:
            plot_chaos(list(studies.values()), os.path.join(a.out, "chaos.png"))
            time_neurons = {(b, N): runs[f"b = {b:g}"]["pairs"][N, 0][0] for b in BETAS for N in a.ns}
            figure1(time_neurons, a.ns, os.path.join(a.out, "figure1_equal_time.png"), f"time T = {a.T:g}")
            figure1(steps_neurons, a.ns, os.path.join(a.out, "figure1_equal_steps.png"), f"{a.steps} steps")
    return summary


# %% [markdown]
# ## What the numbers show (the defaults, measured)
#
# * **Part 1.** At $\beta = 1/2$ the neurons' law approaches the continuity equation like $N^{-1/2}$ (sliced $W_2$
#   slope $-0.50$) down to the FE floor; the continuous-time model with independent noise approaches the diffusive
#   PDE the same way (histogram $L^1$ slope $-0.52$ over every $N$ up to 16000), while SGD as run at $eta = 1$,
#   whose noise is common to the neurons, levels off at a sliced $W_2$ of 0.04 from that PDE and keeps a covariance
#   error of 0.08 at every $N$: it has no deterministic limit.
# * **Part 2.** Two runs from independent initialisations approach each other like $N^{-0.41}$ ($\beta = 1/2$) and
#   $N^{-0.25}$ ($\beta = 3/4$): faster than the theorem's bounds $N^{-(1-\beta)/2}$, slower than the sampling rate
#   $N^{-1/2}$. At $\beta = 1$ on independent data streams their distance is 0.27-0.28 at every $N$ (slope $-0.01$);
#   on the same data stream it falls like $N^{-0.45}$: propagation of chaos given the data.
# * **Part 3.** After 2000 steps $\beta = 3/4$ has the best test accuracy (0.96-0.97) and $\beta = 1$ the worst
#   (0.60-0.77): at equal steps a larger step travels further. At equal mean-field time $T = 10$ the order is
#   $\beta = 1/2$ (0.96), $3/4$ (0.94), $1$ (0.70): with batch 1 the common noise of $\beta = 1$ costs accuracy, and
#   "$\beta = 1$ regularises" does not survive the comparison at equal time.

# %% [markdown]
# ## Bring your own particles
#
# The chaos study takes pairs of runs from any trainer: an .npz holding, for each width N and seed s, the arrays
# `N<N>_s<s>_a` and `N<N>_s<s>_b` of shape (N, q) (e.g. a PyTorch network's neurons, one row each), and optionally
# `names`. This demo writes its $\beta = 1$ runs that way (`runs_b1.npz`), and
#
#     fpjko chaos results/digits/runs_b1.npz --marginals a0 u36 --theory 0 --out results/digits/b1
#
# gives the same distances, slopes, table, JSON and plot. With numpy alone:
#
#     np.savez("runs.npz", N250_s0_a=theta_a, N250_s0_b=theta_b, N1000_s0_a=..., names=np.array(["a0", ...]))

# %%
if __name__ == "__main__" and "ipykernel" not in __import__("sys").modules:
    main()
