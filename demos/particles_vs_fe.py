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
# What to look at: the distances decay like $n^{-1/2}$ (fitted slope printed) down to the time-step bias of the
# particles (propagation of chaos: the interaction adds an $O(1/n)$ bias, below the fluctuations); the
# overlaid histograms and densities (PNG); the tables (JSON).
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
from fpjko.metrics.distances import sliced_wasserstein, wasserstein_1d_cdf
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.interacting import mckean_vlasov
from fpjko.samplers.sde import langevin
from fpjko.samplers.streams import Streams
from fpjko.metrics.study import convergence_in_n, format_table
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.particles import empirical

CASES = {
    "ou_1d": dict(dim=1, f=lambda x: 0.5 * x[0] ** 2, grad=lambda x: x, beta=1.0, m0=[1.5], s0=0.3, L=7.0),
    "double_well_1d": dict(dim=1, f=lambda x: (x[0] ** 2 - 1) ** 2, grad=lambda x: 4 * x * (x ** 2 - 1),
                           beta=3.0, m0=[0.2], s0=0.2, L=3.0),
    "double_well_2d": dict(dim=2, f=lambda x: (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2,
                           grad=lambda x: np.stack([4 * x[:, 0] * (x[:, 0] ** 2 - 1), x[:, 1]], axis=1),
                           beta=3.0, m0=[0.2, 0.3], s0=0.25, L=3.0),
    "desai_zwanzig_1d": dict(dim=1, f=lambda x: 0.25 * x[0] ** 4 - 0.5 * x[0] ** 2, grad=lambda x: x ** 3 - x,
                             beta=3.0, m0=[0.5], s0=0.3, L=4.0, k=1.0),
    "interacting_2d": dict(dim=2, f=lambda x: (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2,
                           grad=lambda x: np.stack([4 * x[:, 0] * (x[:, 0] ** 2 - 1), x[:, 1]], axis=1),
                           beta=3.0, m0=[0.2, 0.3], s0=0.25, L=3.0, k=1.0),
}


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


def fe_solution(case, t_end, comm):
    c = CASES[case]
    if c["dim"] == 1:
        msh = meshes.interval(comm, -c["L"], c["L"], 0.01)
    else:
        msh = meshes.rectangle(comm, [-c["L"], -c["L"]], [c["L"], c["L"]], 0.05)
    # W*rho for quadratic W is exact from moments; the explicit variant (stable here: dt = 0.005 is far below
    # 2 beta^-1 / max|grad psi|^2 = 0.07) keeps the factorised matrix, as without interaction
    s = FokkerPlanckSolver(msh, c["f"], beta=c["beta"], degree=2, dt=0.005, scheme="bdf2", interaction=c.get("k"),
                           interaction_scheme="explicit")
    s.set_initial(lambda x: gaussian_density(x[: c["dim"]], c["m0"], c["s0"] ** 2 * np.eye(c["dim"])), normalize=True)
    s.run(t_end)
    return s


def particles(case, n, seed, t_end, dt, comm):
    c = CASES[case]
    st = Streams(n, seed, comm=comm)
    x0 = st.sample(lambda g, m: np.asarray(c["m0"]) + c["s0"] * g.standard_normal((m, c["dim"])))
    steps = int(round(t_end / dt))
    if c.get("k"):
        return st, mckean_vlasov(x0, st, c["beta"], dt, steps, grad_V=c["grad"], quadratic_W=c["k"])
    return st, langevin(x0, c["grad"], c["beta"], dt, steps, st)


# %% [markdown]
# The run.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    summary = {}
    for case in a.cases:
        t0 = time.perf_counter()
        fe = fe_solution(case, a.t_end, comm)
        dim = CASES[case]["dim"]
        if dim == 1:
            grid, cdf = empirical.cdf_1d(fe.rho)
            dist = lambda x: wasserstein_1d_cdf(x, grid, cdf, 1)                       # noqa: E731
            label = "W1"
        else:
            pts, w = empirical.density_as_measure(fe.rho, quadrature_degree=2)
            dist = lambda x: sliced_wasserstein(x, pts, wy=w, n_projections=64)           # noqa: E731
            label = "sliced W2"
        last = []

        def sample(n, seed):
            st, x = particles(case, n, seed, a.t_end, a.dt_particles, comm)
            last[:] = [st, x]
            return st.allgather(x)                          # the distance is the same on every rank

        # seeds a.seed + 1000 r, r < repeats (convergence_in_n adds 1000 r + 1)
        res = convergence_in_n(sample, dist, a.ns, repeats=a.repeats, seed=a.seed - 1, echo=False, label=label)
        rows, slope = list(zip(res["n"], res["mean"], res["std"])), res["slope"]
        st, x = last
        hist_mesh = (meshes.interval(comm, -CASES[case]["L"], CASES[case]["L"], 0.05) if dim == 1 else
                     meshes.rectangle(comm, [-CASES[case]["L"]] * 2, [CASES[case]["L"]] * 2, 0.15))
        h = empirical.histogram(hist_mesh, x)
        summary[case] = {"distance": label, "n": res["n"], "mean": res["mean"], "std": res["std"], "slope": slope,
                         "fe_dofs": fe.num_dofs,
                         "fe_mass_drift": abs(fe.history["mass"][-1] - fe.history["mass"][0]),
                         "hist_mass": empirical.integral(h), "seconds": time.perf_counter() - t0}
        if comm.rank == 0:
            print(f"\n{case} at t={a.t_end}: {label}(particles, FE density) versus n")
            print(format_table(rows, slope, label))
        if not a.no_png:
            _figure(case, fe, h, x, st, os.path.join(a.out, f"{case}.png"))
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
    if CASES[case]["dim"] == 1:
        grid = np.zeros((800, 3))
        grid[:, 0] = np.linspace(-CASES[case]["L"], CASES[case]["L"], 800)
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
    if CASES[case]["dim"] == 1:
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
