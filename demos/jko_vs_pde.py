# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # JKO minimizing movements beside the Fokker-Planck PDE (teaching demo)
#
# The JKO scheme
#
# $$\rho_{k+1} = \operatorname*{argmin}_\rho\; \frac{W_2^2(\rho, \rho_k)}{2\tau} + F(\rho), \qquad
#   F(\rho) = \int f\rho + \beta^{-1}\int \rho\log\rho,$$
#
# is a time discretisation of $\rho_t = \nabla\cdot(\rho\nabla f) + \beta^{-1}\Delta\rho$: its iterates follow the
# PDE with an $O(\tau)$ error, and $F$ decreases at every step.
#
# `--dim 1` (default): the double well $f = (x^2-1)^2$, $\beta = 3$, from a Gaussian at $x = 0.3$; JKO steps by
# ALG2 (the dynamic Benamou-Brenier reference on a space-time box) for several $\tau$ against the FE
# Fokker-Planck solution (P2, BDF2, small dt). Writes `jko_steps.gif` (JKO iterates over the PDE density),
# `energy_distance.png` ($F$ versus $t$ and the $L^1$ distance to the PDE), `summary.json`.
#
# `--dim 2`: the same on a disk of radius 2.5 (a Delaunay mesh), $f = (x^2-1)^2 + y^2/2$, from a Gaussian at
# $(0.3, 0.4)$: JKO steps by `NewtonJKO` (the fully discrete step on the mesh's edge graph) against the FE
# solution (P1, BDF2) on the same mesh. Writes `snapshots_2d.png` (JKO above, PDE below),
# `energy_distance_2d.png`, `summary_2d.json`.
#
# What to look at: the $L^1$ distance to the PDE halving with $\tau$, $F$ decreasing, mass conserved.
#
#     python3 -m fpjko.demos.jko_vs_pde --out results/jko [--dim 2]

# %%
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from mpi4py import MPI

from fpjko import cli
from fpjko.demos import figures
from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.particles.evaluate import evaluate_on_points
from fpjko.solvers.jko.alg2 import JKOSolver

L, BETA = 2.5, 3.0


def f(x):
    return (x[0] ** 2 - 1) ** 2


def rho0(x):
    return gaussian_density(x[:1], [0.3], [[0.09]])


# %% [markdown]
# Parameters (change them here or on the command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description=cli.description("jko_vs_pde"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/jko")
    p.add_argument("--taus", type=float, nargs="*", default=[0.2, 0.1, 0.05])
    p.add_argument("--t-end", type=float, default=0.8)
    p.add_argument("--h", type=float, default=0.05)
    p.add_argument("--no-gif", action="store_true")
    p.add_argument("--dim", type=int, choices=(1, 2), default=1)
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# The run.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    if a.dim == 2:
        return main_2d(a, comm)
    fp = FokkerPlanckSolver(meshes.interval(comm, -L, L, 0.01), f, beta=BETA, degree=2, dt=0.0025, scheme="bdf2")
    fp.set_initial(rho0, normalize=True)
    grid = np.zeros((401, 3))
    grid[:, 0] = np.linspace(-L, L, 401)
    pde = {0.0: evaluate_on_points(fp.rho, grid)}
    pde_F = [(0.0, fp.history["energy"][-1])]
    times = sorted({round(k * tau, 10) for tau in a.taus for k in range(1, int(round(a.t_end / tau)) + 1)})
    for t in times:
        fp.run(t)
        pde[t] = evaluate_on_points(fp.rho, grid)
        pde_F.append((t, fp.history["energy"][-1]))
    results, frames = {}, []
    mid = a.taus[len(a.taus) // 2]
    for tau in a.taus:
        s = JKOSolver(meshes.space_time(comm, [-L], [L], a.h, 6), tau, potential=f, beta=BETA, max_iter=1000)
        s.set_initial(rho0, normalize=True)
        dist = [0.0]
        while s.t < a.t_end - 1e-9:
            s.step()
            x, rho = s.density()
            ref = np.interp(x[:, 0], grid[:, 0], pde[round(s.t, 10)])
            dist.append(float(np.trapezoid(np.abs(rho - ref), x[:, 0])))
            if tau == mid:
                frames.append((s.t, x[:, 0].copy(), rho.copy()))
        results[tau] = {**{k: list(map(float, v)) for k, v in s.history.items()}, "l1_to_pde": dist}
        if comm.rank == 0:
            h = s.history
            print(f"tau={tau}: {len(h['t']) - 1} steps, L1 to PDE at T={a.t_end}: {dist[-1]:.4f}, "
                  f"F monotone: {all(np.diff(h['energy']) < 0)}, mass drift {np.ptp(h['mass']):.1e}, "
                  f"ALG2 iterations {h['iterations'][1:]}, {sum(h['seconds']):.1f} s")
    summary = {"t_end": a.t_end, "pde_free_energy": pde_F, "jko": {str(k): v for k, v in results.items()}}
    if comm.rank == 0:
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        _plot(results, pde_F, os.path.join(a.out, "energy_distance.png"))
        if not a.no_gif:
            _gif(frames, grid[:, 0], pde, mid, os.path.join(a.out, "jko_steps.gif"))
    return summary


R2 = 2.5


def f2(x):
    return (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2


def rho0_2d(x):
    return gaussian_density(x[:2], [0.3, 0.4], 0.09 * np.eye(2))


def _gather(comm, X, values, n):
    """(x (N, 2), values (N,)) of the owned nodes of all ranks, in one order for any rank count."""
    parts = comm.allgather((X[:n, :2], values[:n]))
    xs = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts])
    order = np.lexsort(np.round(xs, 10).T[::-1])
    return xs[order], vals[order]


# %% [markdown]
# The 2D variant on a disk.

# %%
def main_2d(a, comm) -> dict:
    """JKO (NewtonJKO) against the PDE on a disk; see the module docstring."""
    from fpjko.solvers.jko.newton import NewtonJKO

    h = a.h if a.h != parse([]).h else 0.06
    msh = meshes.disk(comm, R2, h)
    fp = FokkerPlanckSolver(msh, f2, beta=BETA, degree=1, dt=0.0025, scheme="bdf2")
    fp.set_initial(rho0_2d, normalize=True)
    times = sorted({round(k * tau, 10) for tau in a.taus for k in range(1, int(round(a.t_end / tau)) + 1)})
    nown = fp.rho.function_space.dofmap.index_map.size_local
    pde = {0.0: fp.rho.x.array[:nown].copy()}
    pde_F = [(0.0, fp.history["energy"][-1])]
    for t in times:
        fp.run(t)
        pde[t] = fp.rho.x.array[:nown].copy()
        pde_F.append((t, fp.history["energy"][-1]))
    results, snaps = {}, {}
    mid = a.taus[len(a.taus) // 2]
    for tau in a.taus:
        s = NewtonJKO(msh, tau, potential=f2, beta=BETA)
        s.set_initial(rho0_2d, normalize=True)
        dist = [0.0]
        while s.t < a.t_end - 1e-9:
            s.step()
            diff = np.abs(s.rho.x.array[: s.n] - pde[round(s.t, 10)])
            dist.append(comm.allreduce(float(s.ml[: s.n] @ diff)))
            if tau == mid:
                snaps[round(s.t, 10)] = _gather(comm, s.X, s.rho.x.array, s.n)
        results[tau] = {**{k: list(map(float, v)) for k, v in s.history.items()}, "l1_to_pde": dist}
        if comm.rank == 0:
            H = s.history
            print(f"tau={tau}: {len(H['t']) - 1} steps, L1 to PDE at T={a.t_end}: {dist[-1]:.4f}, "
                  f"F monotone: {all(np.diff(H['energy']) < 0)}, mass drift {np.ptp(H['mass']):.1e}, "
                  f"Newton iterations {H['iterations'][1:]}, converged {all(H['converged'])}, "
                  f"{sum(H['seconds']):.2f} s")
    shown = [t for t in sorted(snaps)][:: max(1, len(snaps) // 3)][-3:]
    Xfp = fp.rho.function_space.tabulate_dof_coordinates()
    pde_snaps = {t: _gather(comm, Xfp, pde[t], nown) for t in shown}
    summary = {"t_end": a.t_end, "dim": 2, "dofs": msh.topology.index_map(0).size_global,
               "pde_free_energy": pde_F, "jko": {str(k): v for k, v in results.items()}}
    if comm.rank == 0:
        with open(os.path.join(a.out, "summary_2d.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        _plot(results, pde_F, os.path.join(a.out, "energy_distance_2d.png"))
        _snapshots(shown, snaps, pde_snaps, mid, os.path.join(a.out, "snapshots_2d.png"))
    return summary


def _snapshots(times, jko, pde, tau, filename):
    plt = figures.pyplot()
    import matplotlib.tri as mtri

    fig, axes = plt.subplots(2, len(times), figsize=(3.6 * len(times), 6.6), squeeze=False)
    for j, t in enumerate(times):
        vmax = max(jko[t][1].max(), pde[t][1].max())
        for i, (name, (x, v)) in enumerate((("JKO", jko[t]), ("PDE", pde[t]))):
            ax = axes[i, j]
            tri = mtri.Triangulation(x[:, 0], x[:, 1])
            im = ax.tripcolor(tri, v, shading="gouraud", vmin=0, vmax=vmax, cmap="viridis")
            ax.set(aspect="equal", title=f"{name}{f' tau={tau}' if name == 'JKO' else ''}, t = {t:.2f}",
                   xlabel="x", ylabel="y")
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    figures.save(fig, filename)


def _plot(results, pde_F, filename):
    plt = figures.pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    t, F = zip(*pde_F)
    ax1.plot(t, F, "k", lw=2, label="PDE (FE)")
    for tau, r in results.items():
        ax1.plot(r["t"], r["energy"], "o-", ms=3, label=f"JKO tau={tau}")
        ax2.plot(r["t"], np.maximum(r["l1_to_pde"], 1e-16), "o-", ms=3, label=f"tau={tau}")
    ax1.set(xlabel="t", ylabel="F(rho)", title="free energy")
    ax2.set(xlabel="t", ylabel="L1 distance", title="JKO iterate vs PDE solution", yscale="log")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    figures.save(fig, filename)


def _gif(frames, xg, pde, tau, filename):
    from fpjko.solvers.io import render

    ok, why = render.can_render()
    if not ok:
        import warnings

        warnings.warn(f"pyvista cannot render here ({why}); {filename} is not written", RuntimeWarning, stacklevel=2)
        return
    import pyvista

    pyvista.OFF_SCREEN = True
    ymax = max(max(fr[2].max() for fr in frames), max(v.max() for v in pde.values()))
    pl = pyvista.Plotter(off_screen=True, window_size=(800, 450))
    pl.open_gif(filename, fps=2)
    for t, x, rho in frames:
        pl.clear()
        sc = 2.0 * L / ymax
        p_pde = np.column_stack([xg, pde[round(t, 10)] * sc, np.zeros_like(xg)])
        p_jko = np.column_stack([x, rho * sc, np.zeros_like(x)])
        pl.add_mesh(pyvista.lines_from_points(p_pde), color="black", line_width=4, label="PDE (FE)")
        pl.add_mesh(pyvista.lines_from_points(p_jko), color="tomato", line_width=3, label=f"JKO tau={tau}")
        pl.add_mesh(pyvista.lines_from_points(np.array([[-L, 0, 0], [L, 0, 0]])), color="gray")
        pl.add_text(f"t = {t:.2f}", font_size=14)
        pl.add_legend(bcolor="white")
        pl.view_xy()
        pl.write_frame()
    pl.close()


# %%
if __name__ == "__main__":
    main()
    figures.show_dir(parse().out)              # in a notebook: the figures below the cell
