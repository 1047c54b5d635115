# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Particles against the finite-element Fokker-Planck solution, with and without interaction
#
# Langevin particles $dX = -f'(X)\,dt + \sqrt{2/\beta}\,dW$ (Euler-Maruyama, seeded, split across MPI ranks) and
# the FE solution of $\rho_t = \nabla\cdot(\rho\nabla f + \beta^{-1}\nabla\rho)$ from the same initial law:
# the 1D Ornstein-Uhlenbeck process ($f = x^2/2$) and double well ($f = (x^2-1)^2$), with the exact $W_1$
# distance (the CDF of the FE density) against $n$; the 2D double well with sliced $W_2$ and a DG0 histogram
# beside the FE density. Interacting particles
# $dX_i = -f'(X_i)\,dt - k\,(X_i - \tfrac1n\sum_j X_j)\,dt + \sqrt{2/\beta}\,dB_i$ against the McKean-Vlasov equation
# $\rho_t = \nabla\cdot\big(\rho\nabla(f + W*\rho) + \beta^{-1}\nabla\rho\big)$, $W = k|z|^2/2$: Desai-Zwanzig
# ($f = x^4/4 - x^2/2$, $k = 1$, $\beta = 3$, above the phase transition) and the 2D double well with $k = 1$.
#
# Each case is one `fpjko.model.Model` and the study is `fpjko.model.validate`: the PDE on meshes of size $h$ and
# $h/2$ (their distance is the FE floor), the particles for each $n$ and seed, the distances and the fitted slope.
#
# What to look at: the distances decay like $n^{-1/2}$ (fitted slope printed, with an interval from the seeds) down
# to the time-step bias of the particles or the FE floor (propagation of chaos: the interaction adds an $O(1/n)$
# bias, below the fluctuations); the overlaid histograms and densities (PNG); the log-log plots and tables
# (`CASE/validate.png`, `CASE/validate.json`, `summary.json`).
#
#     python3 -m fpjko.demos.particles_vs_fe --out results/particles
#     mpirun -n 2 python3 -m fpjko.demos.particles_vs_fe --out results/particles

# %%
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from mpi4py import MPI

from fpjko import cli
from fpjko.demos import figures
from fpjko import meshes
from fpjko.model import Model, validate
from fpjko.solvers.particles import empirical

# %% [markdown]
# Each case is one model, declared once (`fpjko.model.Model`): the formulas give the FE potential (UFL), the
# particles' exact gradients (numpy), and the structure (W = k|z|^2/2: the O(n) particle force and the exact
# moment path of the FE solver).

# %%
DOUBLE_WELL_2D = "(x**2 - 1)**2 + 0.5*y**2"
CASES = {
    "ou_1d": Model(1, V="0.5*x**2", beta=1.0, initial={"mean": [1.5], "cov": 0.3 ** 2}, domain=([-7.0], [7.0]),
                   name="ou_1d"),
    "double_well_1d": Model(1, V="(x**2 - 1)**2", beta=3.0, initial={"mean": [0.2], "cov": 0.2 ** 2},
                            domain=([-3.0], [3.0]), name="double_well_1d"),
    "double_well_2d": Model(2, V=DOUBLE_WELL_2D, beta=3.0, initial={"mean": [0.2, 0.3], "cov": 0.25 ** 2},
                            domain=([-3.0, -3.0], [3.0, 3.0]), name="double_well_2d"),
    "desai_zwanzig_1d": Model(1, V="x**4/4 - x**2/2", W=1.0, beta=3.0, initial={"mean": [0.5], "cov": 0.3 ** 2},
                              domain=([-4.0], [4.0]), name="desai_zwanzig_1d"),
    "interacting_2d": Model(2, V=DOUBLE_WELL_2D, W=1.0, beta=3.0, initial={"mean": [0.2, 0.3], "cov": 0.25 ** 2},
                            domain=([-3.0, -3.0], [3.0, 3.0]), name="interacting_2d"),
}
H = {1: 0.02, 2: 0.1}           # the FE mesh of the floor; the reference is h/2 (0.01 in 1D, 0.05 in 2D), P2


# %% [markdown]
# Parameters (change them here or on the command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description=cli.description("particles_vs_fe"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/particles")
    p.add_argument("--cases", nargs="*", default=list(CASES))
    p.add_argument("--t-end", type=float, default=1.0)
    p.add_argument("--ns", type=int, nargs="*", default=[100, 400, 1600, 6400, 25600, 102400])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dt-particles", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--no-png", action="store_true")
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# The run: `validate` does the study (the PDE at h and h/2, the particles for each n and seed, the distances, the
# FE floor and the fitted slope); the demo adds the histogram and the figure.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    summary = {}
    for case in a.cases:
        t0 = time.perf_counter()
        model = CASES[case]
        # W*rho for quadratic W is exact from moments; the explicit variant (stable here: dt = 0.005 is far below
        # 2 beta^-1 / max|grad psi|^2 = 0.07) keeps the factorised matrix, as without interaction
        r = validate(model, a.ns, a.t_end, repeats=a.repeats, seed=a.seed, dt=a.dt_particles, h=H[model.d], degree=2,
                     fe_dt=0.005, comm=comm, echo=True, out=os.path.join(a.out, case), plot=not a.no_png,
                     keep=True, interaction_scheme="explicit")
        fe, (st, x) = r.pop("solver"), r.pop("particles")
        label = next(iter(r["metrics"]))
        m = r["metrics"][label]
        L = float(model.domain[1][0])
        hist_mesh = (meshes.interval(comm, -L, L, 0.05) if model.d == 1 else
                     meshes.rectangle(comm, [-L, -L], [L, L], 0.15))
        h = empirical.histogram(hist_mesh, x)
        summary[case] = {"distance": label, "n": r["ns"], "mean": m["mean"], "std": m["std"], "slope": m["slope"],
                         "interval": m["interval"], "floor": m["floor"], "fe_dofs": r["fe"]["dofs"][-1],
                         "fe_mass_drift": r["fe"]["mass_drift"], "hist_mass": empirical.integral(h),
                         "seconds": time.perf_counter() - t0}
        if not a.no_png:
            _figure(case, fe, h, x, st, os.path.join(a.out, f"{case}.png"))
        fe.close()
    if comm.rank == 0:
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
    return summary


def _cells(h):
    """Owned cells of a DG0 function: vertex coordinates (c, k, gdim) and values, gathered on rank 0."""
    msh = h.function_space.mesh
    tdim, gdim = msh.topology.dim, msh.geometry.dim
    nc = msh.topology.index_map(tdim).size_local
    nodes = msh.geometry.dofmap[:nc, : tdim + 1]
    xy = msh.geometry.x[nodes][:, :, :gdim]
    vals = h.x.array[h.function_space.dofmap.list[:nc, 0]]
    parts = msh.comm.gather((xy, vals), root=0)
    if msh.comm.rank:
        return None, None
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _figure(case, fe, h, x, st, filename):
    from fpjko.solvers.particles.evaluate import evaluate_on_points

    xy, vals = _cells(h)
    comm = fe.comm
    dim, L = CASES[case].d, float(CASES[case].domain[1][0])
    if dim == 1:
        grid = np.zeros((800, 3))
        grid[:, 0] = np.linspace(-L, L, 800)
        rho = evaluate_on_points(fe.rho, grid)
    else:
        cen = np.zeros((0, 3))
        if comm.rank == 0:
            cen = np.zeros((len(xy), 3))
            cen[:, :2] = xy.mean(axis=1)
        cen = comm.bcast(cen, root=0)
        rho = evaluate_on_points(fe.rho, cen)
    if comm.rank:
        return
    plt = figures.pyplot()
    from matplotlib.collections import PolyCollection

    n = st.n
    if dim == 1:
        fig, ax = plt.subplots(figsize=(7, 4))
        order = np.argsort(xy[:, 0, 0])
        left, right = xy[order, :, 0].min(axis=1), xy[order, :, 0].max(axis=1)
        ax.bar(left, vals[order], width=right - left, align="edge", alpha=0.45, label=f"histogram, n={n}")
        ax.plot(grid[:, 0], rho, "k", lw=1.5, label="FE density")
        ax.set_xlabel("x")
        ax.legend()
    else:
        fig, axs = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
        vmax = max(vals.max(), np.nanmax(rho))
        for ax, v, title in ((axs[0], vals, f"particle histogram (DG0), n={n}"), (axs[1], rho, "FE density (P2)")):
            pc = PolyCollection(xy, array=v, cmap="viridis", edgecolors="face", linewidths=0.2, antialiaseds=False)
            pc.set_clim(0, vmax)
            ax.add_collection(pc)
            ax.autoscale_view()
            ax.set_aspect("equal")
            ax.set_title(title)
        fig.colorbar(pc, ax=axs, shrink=0.8)
    fig.suptitle(f"{case}: Langevin particles vs Fokker-Planck FE")
    figures.save(fig, filename)


# %%
if __name__ == "__main__":
    main()
    figures.show_dir(parse().out)              # in a notebook: the figures below the cell
