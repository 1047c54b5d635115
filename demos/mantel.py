# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Mantel's theorem recovered by gradient flow: SGD on a large symmetric matrix and its graphon limit
#
# A symmetric $n\times n$ matrix $W$ with entries in $[0,1]$ is a weighted graph, and, as the step function
# $W(u,v) = W_{ij}$ on $[\tfrac{i-1}n,\tfrac in)\times[\tfrac{j-1}n,\tfrac jn)$, a *graphon*. Its edge and
# triangle densities are
#
# $$t(K_2,W) = \int W = \frac1{n^2}\sum_{ij}W_{ij}, \qquad t(K_3,W) = \iiint W(u,v)W(v,z)W(z,u) = \frac{\operatorname{tr}W^3}{n^3}.$$
#
# A triangle-free graph has at most $n^2/4$ edges (Mantel). For graphons, Goodman's bound
# $t(K_3) \ge t(K_2)(2t(K_2)-1)$ gives
#
# $$R(W) = t(K_3,W) - t(K_2,W) \;\ge\; 2t(K_2)^2 - 2t(K_2) \;\ge\; -\tfrac12,$$
#
# with equality only at the balanced complete bipartite graphon. Gradient descent on the matrix,
#
# $$W \leftarrow P\big(W - \tau\, DR(W)\big), \qquad DR(W) = 3\,\frac{W W}{n} - 1,$$
#
# ($P$ clips to $[0,1]$, $DR = n^2\,\partial R/\partial W$ the graphon derivative) is the projected Euler scheme of the
# graphon gradient flow $W_t = -DR(W)$, $DR(W)(u,v) = 3\int W(u,z)W(z,v)\,dz - 1$, which
# `fpjko.solvers.graphon.flow.GraphonFlow` solves on a mesh of $[0,1]^2$. Both should end at $t(K_2) = \tfrac12$, $t(K_3) = 0$.
#
# What to look at: in `mantel.gif` the matrix (vertices in their final classes) starts as noise and splits into
# two classes, empty inside and complete across, while the graphon from the smooth
# $W_0 = \tfrac12 - \tfrac15\cos\pi u\cos\pi v$ does the same on $[0,1]^2$; in `densities.png`,
# $t(K_2)\to\tfrac12$, $t(K_3)\to 0$ and $R$ decreasing to $-\tfrac12$. Also writes `summary.json`.
#
#     python3 -m fpjko.demos.mantel --out results/mantel [--n 200] [--t-end 100]     (or: fpjko demo mantel)

# %%
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from mpi4py import MPI

from fpjko import cli
from fpjko import meshes
from fpjko.demos import figures
from fpjko.samplers import graphon as G
from fpjko.solvers.graphon.flow import GraphonFlow


# %% [markdown]
# Parameters: the matrix size, the graphon mesh, the step $\tau$ and the final time (change them here or on the
# command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description="Mantel's theorem recovered by gradient flow (demos/mantel.py).")
    p.add_argument("--out", default="results/mantel")
    p.add_argument("--n", type=int, default=200, help="matrix size")
    p.add_argument("--flow-n", type=int, default=64, help="graphon mesh cells per side")
    p.add_argument("--tau", type=float, default=0.2)
    p.add_argument("--t-end", type=float, default=100.0)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-gif", action="store_true")
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# The run: gradient descent from a random symmetric matrix, and the graphon flow (DG0 on an $n_f\times n_f$ mesh)
# from a smooth graphon, with frames for the animation.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    R = G.GraphonObjective(edges=-1.0, triangles=1.0)
    steps = int(round(a.t_end / a.tau))
    every = max(1, steps // a.frames)
    frames_gd, frames_flow = [], []

    t0 = time.perf_counter()
    gd = G.gradient_descent(G.random_symmetric(a.n, seed=a.seed), R, a.tau, a.t_end, record_every=every,
                            callback=lambda k, t, W: frames_gd.append((t, W.copy())))
    t_gd = time.perf_counter() - t0

    t0 = time.perf_counter()
    F = GraphonFlow(meshes.unit_square(comm, a.flow_n), R, tau=a.tau, degree=0, record_every=every)
    F.set_initial(lambda u, v: 0.5 - 0.2 * np.cos(np.pi * u) * np.cos(np.pi * v))
    frames_flow.append((0.0, F.matrix()))
    F.run(a.t_end, callback=lambda s: frames_flow.append((s.t, s.matrix()))
          if s.steps % every == 0 or s.t >= a.t_end - 1e-9 * a.tau else None)
    t_flow = time.perf_counter() - t0

    W = gd["W"]
    A, B = G.bipartition(W)
    # one relabelling for every frame: the final classes, each sorted by its degree at t = 0 (at the end all
    # degrees are n/2, so sorting by degree alone shows nothing; a fixed order lets the split emerge)
    d0 = frames_gd[0][1].sum(axis=1)
    order = np.concatenate([A[np.argsort(d0[A], kind="stable")], B[np.argsort(d0[B], kind="stable")]])
    frames_gd = [(t, M[np.ix_(order, order)]) for t, M in frames_gd]
    summary = {
        "n": a.n, "t_end": a.t_end, "tau": a.tau,
        "matrix": {"edge_density": G.edge_density(W), "triangle_density": G.triangle_density(W),
                   "objective": R.value(W), "classes": [len(A), len(B)],
                   "max_inside": float(max(W[np.ix_(A, A)].max(), W[np.ix_(B, B)].max())),
                   "min_across": float(W[np.ix_(A, B)].min()), "seconds": t_gd},
        "graphon": {"edge_density": F.history["edge_density"][-1],
                    "triangle_density": F.history["triangle_density"][-1],
                    "objective": F.history["energy"][-1], "seconds": t_flow},
        "history": {"matrix": gd["history"], "graphon": F.history},
    }
    if comm.rank == 0:
        m, g = summary["matrix"], summary["graphon"]
        print(f"matrix n={a.n}: t(K2)={m['edge_density']:.5f} t(K3)={m['triangle_density']:.2e} classes {m['classes']} "
              f"(inside <= {m['max_inside']:.1e}, across >= {m['min_across']:.4f}), {t_gd:.1f} s")
        print(f"graphon {a.flow_n}x{a.flow_n}: t(K2)={g['edge_density']:.5f} t(K3)={g['triangle_density']:.2e}, "
              f"{t_flow:.1f} s")
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        _plot(gd["history"], F.history, os.path.join(a.out, "densities.png"))
        if not a.no_gif:
            _gif(frames_gd, frames_flow, os.path.join(a.out, "mantel.gif"))
    return summary


# %% [markdown]
# Figures.

# %%
def _plot(hm, hg, filename):
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for key, flow_key, ax, title in (("edge_density", "edge_density", axes[0], "edge density t(K2)"),
                                     ("triangle_density", "triangle_density", axes[1], "triangle density t(K3)"),
                                     ("objective", "energy", axes[2], "R = t(K3) - t(K2)")):
        ax.plot(hm["t"], hm[key], label="n x n gradient descent")
        ax.plot(hg["t"], hg[flow_key], "--", label="graphon flow (DG0)")
        ax.set(xlabel="t", title=title)
    axes[0].axhline(0.5, color="gray", lw=0.8)
    axes[2].axhline(-0.5, color="gray", lw=0.8)
    axes[1].set_yscale("symlog", linthresh=1e-4)
    axes[0].legend()
    fig.tight_layout()
    figures.save(fig, filename)


def _gif(frames_gd, frames_flow, filename):
    plt = figures.pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 4))
    im1 = ax1.imshow(frames_gd[0][1], vmin=0, vmax=1, cmap="gray_r")
    im2 = ax2.imshow(frames_flow[0][1], vmin=0, vmax=1, cmap="gray_r", extent=(0, 1, 1, 0))
    ax1.set(title="matrix (final classes)", xticks=[], yticks=[])
    ax2.set(title="graphon W(u, v)", xlabel="v", ylabel="u")
    text = fig.suptitle("")
    k = min(len(frames_gd), len(frames_flow))

    def update(i):
        im1.set_data(frames_gd[i][1])
        im2.set_data(frames_flow[i][1])
        text.set_text(f"t = {frames_gd[i][0]:.1f}")
        return im1, im2, text

    FuncAnimation(fig, update, frames=k, blit=False).save(filename, writer=PillowWriter(fps=6))
    plt.close(fig)


# %%
if __name__ == "__main__":
    summary = main()
    out = parse().out
    figures.show(os.path.join(out, "densities.png"), os.path.join(out, "mantel.gif"))
