# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The exact JKO step and its W2 geodesic (teaching demo)
#
# One JKO step
#
# $$\rho_{k+1} = \operatorname*{argmin}_\rho\; \frac{W_2^2(\rho, \rho_k)}{2\tau} + F(\rho), \qquad
#   F(\rho) = \int V\rho + \beta^{-1}\int \rho\log\rho,$$
#
# with $W_2$ written as the Benamou-Brenier action over $K$ pseudo-time steps on the mesh's edge graph
# (NewtonJKO's default `pseudo_steps="auto"`: $K = 2, 3, 4, 6, 8, \dots$, and the step is extrapolated in $K$, until
# the estimate of the pseudo-time error is below `pseudo_tol`). Its $K + 1$ densities are the discrete $W_2$ geodesic
# (displacement interpolation) from $\rho_k$ to $\rho_{k+1}$ (`keep_geodesic=True`, `geodesic()`); at the default
# `pseudo_tol=1e-3` Part 1's picture has $K = 12$ slabs (`--geodesic-tol` for more).
#
# **Part 1, the geodesic on a non-convex domain.** On the L-shaped domain $[-1, 1]^2$ minus its upper-right
# quarter, $\rho_k$ is a Gaussian bump in the lower-right arm and $V = |x - m_1|^2 / (2 s^2)$ has its well in the
# upper-left arm, so $\exp(-V)$ (the equilibrium, $\beta = 1$) is a bump there. At a large $\tau$ the step lands
# near the equilibrium, and its geodesic is the $W_2$ geodesic between the two bumps *inside the domain*: the
# straight segment between them crosses the missing quarter, so the mass squeezes past the re-entrant corner.
# Its length $W_K$ is above the straight-line distance $|m_1 - m_0|$ of the two bumps in the plane.
#
# **Part 2, a JKO step at large $\tau$ beside the PDE.** In 1D, $V = A (x - c)^2 / 2$ and a Gaussian
# $\rho_k$: the exact JKO step, the exact PDE solution at $t = \tau$ and the one-pseudo-time-step scheme are three
# different densities at large $\tau A$. The JKO step is a minimizing movement, not the PDE at time $\tau$ (they
# agree to $O(\tau)$, which is why JKO converges as $\tau \to 0$); the one-step scheme (`pseudo_steps=1`, fast) is
# not the exact step either once the bump moves by more than its width. `"auto"` lands on the exact step.
#
# Writes `geodesic_l_shape.png` (five densities along the geodesic), `jko_step_vs_pde.png` and `summary.json`.
#
#     python3 -m fpjko.demos.jko_geodesic --out results/jko_geodesic      # also under mpirun -n 2

# %%
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
from mpi4py import MPI

from fpjko import cli, meshes
from fpjko.demos import figures
from fpjko.solvers.jko.newton import NewtonJKO

S, M0, M1 = 0.12, (0.6, -0.3), (-0.3, 0.6)            # Part 1: the bumps' width and centres
A, C, X0, S0 = 25.0, 0.6, -0.6, 0.15                   # Part 2: V = A (x - C)^2 / 2 from N(X0, S0^2)


def gauss2(x, m, s):
    return np.exp(-((x[0] - m[0]) ** 2 + (x[1] - m[1]) ** 2) / (2 * s * s)) / (2 * math.pi * s * s)


def gauss1(x, m, s):
    return np.exp(-((x - m) ** 2) / (2 * s * s)) / math.sqrt(2 * math.pi * s * s)


def exact_jko_step(m, s, tau):
    """The exact JKO step of N(m, s^2) for V = A (x - C)^2 / 2, beta = 1: N(m1, s1^2) (the Euler-Lagrange equation
    of the Gaussian family, whose optimal map is affine)."""
    a = 1 / tau + A
    return (m + tau * A * C) / (1 + tau * A), (s / tau + math.sqrt(s * s / tau ** 2 + 4 * a)) / (2 * a)


def exact_pde(m, s, t):
    """The Ornstein-Uhlenbeck law at time t from N(m, s^2): N(C + (m - C) e^(-At), s^2 e^(-2At) + (1 - e^(-2At))/A)."""
    e = math.exp(-A * t)
    return C + (m - C) * e, math.sqrt(s * s * e * e + (1 - e * e) / A)


# %% [markdown]
# Parameters (change them here or on the command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description=cli.description("jko_geodesic"),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/jko_geodesic")
    p.add_argument("--h", type=float, default=1 / 16, help="Part 1: the L-shaped mesh's leg")
    p.add_argument("--tau", type=float, default=10.0, help="Part 1: the step")
    p.add_argument("--taus", type=float, nargs="*", default=[0.01, 0.02, 0.04], help="Part 2: the steps")
    p.add_argument("--cells", type=int, default=1600, help="Part 2: cells on [-2, 2]")
    p.add_argument("--pseudo-tol", type=float, default=1e-3, help="Part 2: the tolerance of 'auto'")
    p.add_argument("--geodesic-tol", type=float, default=1e-3,
                   help="Part 1: the tolerance of 'auto' (tighter: more slabs in the picture of the geodesic)")
    p.add_argument("--no-png", action="store_true")
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# Part 1: one step at large $\tau$ on the L, its geodesic kept.

# %%
def geodesic_part(a, comm) -> dict:
    msh = meshes.l_shape(comm, [-1, -1], [1, 1], a.h)
    t0 = time.perf_counter()
    J = NewtonJKO(msh, a.tau, potential=lambda x: ((x[0] - M1[0]) ** 2 + (x[1] - M1[1]) ** 2) / (2 * S * S),
                  beta=1.0, pseudo_steps="auto", pseudo_tol=a.geodesic_tol, max_pseudo_steps=32, keep_geodesic=True)
    J.set_initial(lambda x: gauss2(x, M0, S), normalize=True)
    rec = J.step()
    secs = time.perf_counter() - t0
    geo = J.geodesic()
    masses = [comm.allreduce(float(J.ml[: J.n] @ g.x.array[: J.n])) for g in geo]
    eq = gauss2(J.X.T, M1, S)
    eq /= comm.allreduce(float(J.ml[: J.n] @ eq[: J.n]))
    to_eq = comm.allreduce(float(J.ml[: J.n] @ np.abs(J.rho.x.array[: J.n] - eq[: J.n])))
    K = rec["pseudo_steps"]
    shown = sorted({round(i * K / 4) for i in range(5)})
    snaps = {l: J.density(geo[l]) for l in shown}
    # how close to the corner each density's mass passes: the mass within 0.15 of (0, 0)
    near = [comm.allreduce(float(J.ml[: J.n] @ (g.x.array[: J.n] * (np.hypot(J.X[: J.n, 0], J.X[: J.n, 1]) < 0.15))))
            for g in geo]
    out = {"h": a.h, "tau": a.tau, "nodes": msh.topology.index_map(0).size_global, "K": K,
           "pseudo_error": rec["pseudo_error"], "converged": rec["converged"], "newton_iterations": rec["iterations"],
           "w_K": rec["w2"], "straight_line": math.dist(M0, M1), "l1_end_to_equilibrium": to_eq,
           "mass_drift": max(masses) - min(masses), "mass_near_corner": near, "seconds": secs}
    J.close()
    if comm.rank == 0:
        print(f"Part 1, L-shaped mesh ({out['nodes']} nodes), tau = {a.tau}: K = {K} (estimate "
              f"{rec['pseudo_error']:.1e}), {rec['iterations']} Newton iterations, converged {rec['converged']}, "
              f"{secs:.1f} s\n  W_K = {rec['w2']:.4f} against the straight line |m1 - m0| = {out['straight_line']:.4f}; "
              f"L1 of rho_(k+1) to the equilibrium {to_eq:.2e}; mass within 0.15 of the corner at the midpoint "
              f"{near[K // 2]:.2f} (at the ends {near[0]:.1e}, {near[-1]:.1e}); mass drift {out['mass_drift']:.1e}")
        if not a.no_png:
            _plot_geodesic(snaps, K, os.path.join(a.out, "geodesic_l_shape.png"))
    return out


def _plot_geodesic(snaps, K, path):
    import matplotlib.tri as mtri

    plt = figures.pyplot()
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.2 * len(snaps), 3.3))
    for ax, (l, (x, v)) in zip(axes, sorted(snaps.items())):
        tri = mtri.Triangulation(x[:, 0], x[:, 1])
        c = x[tri.triangles].mean(axis=1)
        tri.set_mask((c[:, 0] > 0) & (c[:, 1] > 0))          # Delaunay of the nodes fills the missing quarter
        ax.tricontourf(tri, v, 30, cmap="viridis")
        ax.fill([0, 1, 1, 0], [0, 0, 1, 1], color="0.85")
        ax.set_aspect("equal")
        ax.set_xticks([-1, 0, 1])
        ax.set_yticks([-1, 0, 1])
        ax.set_title(f"pseudo-time {l}/{K}")
    fig.suptitle("the W2 geodesic of one JKO step on an L-shaped mesh")
    fig.tight_layout()
    figures.save(fig, path)


# %% [markdown]
# Part 2: the step at several $\tau$ against the exact step and the PDE at $t = \tau$.

# %%
def step_part(a, comm) -> dict:
    msh = meshes.interval(comm, -2.0, 2.0, 4.0 / a.cells)
    rows, curves = [], {}
    for tau in a.taus:
        m1, s1 = exact_jko_step(X0, S0, tau)
        mp, sp = exact_pde(X0, S0, tau)
        row = {"tau": tau, "tau_A": tau * A, "exact_step": [m1, s1], "pde": [mp, sp]}
        for mode in (1, "auto"):
            J = NewtonJKO(msh, tau, potential=lambda x: 0.5 * A * (x[0] - C) ** 2, beta=1.0, pseudo_steps=mode,
                          pseudo_tol=a.pseudo_tol, max_pseudo_steps=64)
            J.set_initial(lambda x: gauss1(x[0], X0, S0), normalize=True)
            t0 = time.perf_counter()
            rec = J.step()
            x, r = J.X[: J.n, 0], J.rho.x.array[: J.n]
            l1 = lambda f: comm.allreduce(float(J.ml[: J.n] @ np.abs(r - f)))          # noqa: E731
            key = "one_step" if mode == 1 else "auto"
            row[key] = {"l1_to_exact_step": l1(gauss1(x, m1, s1)), "l1_to_pde": l1(gauss1(x, mp, sp)),
                        "K": rec["pseudo_steps"], "pseudo_error": rec["pseudo_error"], "w2": rec["w2"],
                        "converged": rec["converged"], "seconds": time.perf_counter() - t0}
            if tau == a.taus[-1]:
                curves[key] = J.density()
            J.close()
        row["exact_step_to_pde"] = _l1_gauss(m1, s1, mp, sp)
        row["exact_w2"] = math.hypot(m1 - X0, s1 - S0)
        rows.append(row)
    if comm.rank == 0:
        print("Part 2, 1D, V = 25 (x - 0.6)^2 / 2 from N(-0.6, 0.15^2): L1 distances after one step")
        print(f"{'tau':>6} {'tau A':>6} {'exact step-PDE':>15} {'one step-exact':>15} {'auto-exact':>11} {'K':>4} "
              f"{'W_K':>7} {'exact W2':>9}")
        for r in rows:
            print(f"{r['tau']:>6g} {r['tau_A']:>6.2f} {r['exact_step_to_pde']:>15.3e} "
                  f"{r['one_step']['l1_to_exact_step']:>15.3e} {r['auto']['l1_to_exact_step']:>11.3e} "
                  f"{r['auto']['K']:>4d} {r['auto']['w2']:>7.4f} {r['exact_w2']:>9.4f}")
        if not a.no_png:
            _plot_step(curves, rows[-1], os.path.join(a.out, "jko_step_vs_pde.png"))
    return {"rows": rows}


def _l1_gauss(m1, s1, m2, s2, n=20001):
    x = np.linspace(-4, 4, n)
    return float(np.trapezoid(np.abs(gauss1(x, m1, s1) - gauss1(x, m2, s2)), x))


def _plot_step(curves, row, path):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    x = curves["auto"][0][:, 0]
    ax.plot(x, gauss1(x, X0, S0), color="0.6", label=r"$\rho_k$")
    ax.plot(x, gauss1(x, *row["pde"]), "k--", label=r"PDE at $t = \tau$ (exact)")
    ax.plot(x, gauss1(x, *row["exact_step"]), "k", lw=3, alpha=0.35, label="JKO step (exact)")
    ax.plot(x, curves["auto"][1], "C0", label=f"NewtonJKO, pseudo_steps='auto' (K = {row['auto']['K']})")
    ax.plot(x, curves["one_step"][1], "C3", label="NewtonJKO, one pseudo-time step")
    ax.set_xlim(-1.5, 1.5)
    ax.set_xlabel("x")
    ax.set_title(rf"one JKO step, $\tau A$ = {row['tau_A']:g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figures.save(fig, path)


# %% [markdown]
# The run.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        os.makedirs(a.out, exist_ok=True)
    comm.barrier()
    summary = {"geodesic": geodesic_part(a, comm), "step": step_part(a, comm)}
    if comm.rank == 0:
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        figures.show_dir(a.out)
    return summary


if __name__ == "__main__":
    main()
