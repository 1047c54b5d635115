# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Wide and sharp minima: local entropy, Entropy-SGD and their Fokker–Planck laws
#
# A loss with a deep but sharp minimum and a shallower wide one. Its *local entropy* at scale $\gamma$ and inverse
# temperature $\beta$,
#
# $$f_\gamma(x) = -\beta^{-1}\log\int e^{-\beta f(y) - \beta|x-y|^2/(2\gamma)}\,dy ,$$
#
# is the viscous Hamilton–Jacobi solution $u_t = -\tfrac12|\nabla u|^2 + (2\beta)^{-1}\Delta u$, $u(0) = f$, at
# $t = \gamma$; `fpjko.solvers.hamilton_jacobi.LocalEntropy` computes it on a mesh by the Cole–Hopf transform. Smoothing
# at scale $\sqrt{\gamma/\beta}$ fills the sharp well: for $\gamma$ large enough the *wide* minimum becomes the
# global minimum of $f_\gamma$.
#
# Entropy-SGD (Chaudhari et al.) runs a fast replica $y$ in the Gibbs measure
# $\rho_x(y) \propto e^{-\beta(f(y) + |x-y|^2/(2\gamma))}$ and moves $x$ by $-(x - y)/\gamma$; as the time-scale
# ratio $\varepsilon \to 0$, $x$ follows $-\nabla f_\gamma$. With an outer noise of inverse temperature $\beta$ on $x$,
# its law solves the Fokker–Planck equation $\rho_t = \nabla\cdot(\rho\nabla f_\gamma) + \beta^{-1}\Delta\rho$,
# while plain Langevin (SGD) on $f$ follows the one with $f$. Both are solved on the mesh by
# `FokkerPlanckSolver` from the same uniform start.
#
# What to look at: `wide_minima.png`. Left, $f$ and $f_\gamma$ for several $\gamma$ (the global minimum moves from the
# sharp well at $x=-1$ to the wide one at $x=1.2$). Middle, particle histograms at time $T$ over the Fokker–Planck
# densities at $T$ (solid) and the stationary ones (dashed): Langevin on $f$, and Entropy-SGD with outer noise
# against $f_\gamma$. Right, the fraction of particles in the wide basin against $\gamma$: Entropy-SGD without outer
# noise (it descends $f_\gamma$) against the homogenized flow $\dot X = -\nabla f_\gamma(X)$ of the same starts with the FE
# gradient (and the wide basin of attraction of $f_\gamma$, its $T\to\infty$ limit), and with outer noise against the Fokker–Planck law of $f_\gamma$ at $T$ and its stationary law. The
# stationary law of $f_\gamma$ is the Gibbs law of $f$ smoothed by a Gaussian of variance $\gamma/\beta$, so with
# outer noise the preference for the wide basin hardly changes; the *descent* is what $\gamma$ moves. `wide_minima_2d.png`: the same in 2D, $f$ and
# $f_\gamma$ with Langevin and Entropy-SGD endpoints. Also writes `summary.json`.
#
#     python3 -m fpjko.demos.wide_minima --out results/wide_minima     (or: fpjko demo wide_minima)

# %%
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import ufl
from mpi4py import MPI

from fpjko import meshes
from fpjko import cli
from fpjko.demos import figures
from fpjko.samplers.deep_relaxation import entropy_sgd, homogenized_flow
from fpjko.samplers.sde import langevin
from fpjko.samplers.streams import Streams
from fpjko.solvers import FokkerPlanckSolver, stationary_density
from fpjko.solvers.hamilton_jacobi.cole_hopf import LocalEntropy

# %% [markdown]
# The loss: a quadratic bowl $0.1|x - (1.2, 0)|^2$ with a sharp Gaussian well (depth 1.3, width 0.08) at $x = -1$ and
# a wide one (depth 0.7, width 0.5) at its centre $x = 1.2$; the sharp minimum is the deeper (-0.82 against -0.70); in 2D the same wells around the points $(-1, 0)$ and $(1.2, 0)$.

# %%
SHARP, WIDE = (-1.0, 1.3, 0.08), (1.2, 0.7, 0.5)        # (centre, depth, width)


def loss(x, exp=np.exp):
    """f at points x (d, N) (numpy, what the FE solvers interpolate), or of a UFL SpatialCoordinate with exp=ufl.exp."""
    r2 = lambda c: (x[0] - c) ** 2 + sum(x[i] ** 2 for i in range(1, len(x)))          # noqa: E731
    return (0.1 * r2(WIDE[0]) - SHARP[1] * exp(-r2(SHARP[0]) / (2 * SHARP[2] ** 2))
            - WIDE[1] * exp(-r2(WIDE[0]) / (2 * WIDE[2] ** 2)))


def grad_loss(y):
    """grad f at points y (N, d)."""
    g = 0.2 * y
    g[:, 0] -= 0.2 * WIDE[0]
    for c, depth, w in (SHARP, WIDE):
        z = y.copy()
        z[:, 0] -= c
        g += depth * z / w ** 2 * np.exp(-(z ** 2).sum(axis=1, keepdims=True) / (2 * w ** 2))
    return g


def parse(argv=None):
    p = argparse.ArgumentParser(description="Wide vs sharp minima: local entropy and Entropy-SGD (demos/wide_minima.py).")
    p.add_argument("--out", default="results/wide_minima")
    p.add_argument("--beta", type=float, default=5.0)
    p.add_argument("--gamma", type=float, default=0.3, help="the scale of the histogram panel")
    p.add_argument("--gammas", default="0.01,0.03,0.1,0.3,1,3", help="scales of the f_gamma curves and the fractions")
    p.add_argument("--eps", type=float, default=0.05, help="Entropy-SGD time-scale ratio")
    p.add_argument("--particles", type=int, default=2000)
    p.add_argument("--t-end", type=float, default=6.0)
    p.add_argument("--h", type=float, default=0.005, help="1D mesh size on [-3, 3]")
    p.add_argument("--h2", type=float, default=0.04, help="2D mesh size on [-2.5, 2.5] x [-2, 2] (0: no 2D panel)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# The pieces: $f_\gamma$ by Cole–Hopf, the Fokker–Planck law of the potential $f$ or $f_\gamma$ from the uniform
# law on $[-2.5, 2.5]$ at time $T$ and at stationarity, and the particles (Langevin and Entropy-SGD with outer
# noise, $\varepsilon$ as given, Euler–Maruyama step $\varepsilon/400$).

# %%
def local_entropy(msh, beta, gamma):
    le = LocalEntropy(msh, loss, beta)
    return le, le.solve(gamma, 100)


def fp_law(msh, potential, beta, t_end):
    """The nodes X (sorted), the Fokker–Planck law there at t_end from the uniform start, and the stationary law."""
    s = FokkerPlanckSolver(msh, potential, beta=beta, dt=0.01, scheme="bdf2", record_every=50)
    s.set_initial(lambda x: (np.abs(x[0]) < 2.5).astype(float), normalize=True)
    s.run(t_end)
    X, rho_T = nodal(s.rho)
    return X, rho_T, nodal(stationary_density(s).rho)[1]


def nodal(fn):
    """Owned dof coordinates (sorted) and the values of a 1D Function there."""
    V = fn.function_space
    n = V.dofmap.index_map.size_local
    X = V.tabulate_dof_coordinates()[:n, 0]
    o = np.argsort(X)
    return X[o], fn.x.array[:n][o]


def wide_fraction_of_law(X, rho):
    return float(np.trapezoid(np.where(X > 0.1, rho, 0.0), X) / np.trapezoid(rho, X))


def wide_basin_share(X, U, lo=-2.5, hi=2.5):
    """The share of [lo, hi] from which gradient descent on the nodal f_gamma (X sorted) ends in the wide minimum's
    basin: the interval between the local maxima around the local minimum nearest the wide well's centre."""
    m = (X >= lo) & (X <= hi)
    X, U = X[m], U[m]
    inner = np.flatnonzero((U[1:-1] <= U[:-2]) & (U[1:-1] <= U[2:])) + 1               # local minima
    k = inner[np.argmin(np.abs(X[inner] - WIDE[0]))]
    left, right = k, k
    while left > 0 and U[left - 1] >= U[left]:
        left -= 1
    while right < len(U) - 1 and U[right + 1] >= U[right]:
        right += 1
    return float((X[right] - X[left]) / (hi - lo))


def start(n, d, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d))
    x[:, 0] = rng.uniform(-2.5, 2.5, n)
    return x


def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_SELF                                    # small 1D/2D problems: every rank runs its own copy
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    gammas = [float(g) for g in a.gammas.split(",")]
    msh = meshes.interval(comm, -3, 3, a.h)
    curves, fractions = {}, []
    x0 = start(a.particles, 1, a.seed)                      # every particle method starts from the same points
    grid = np.linspace(-2.9, 2.9, 2901)                     # where grad f_gamma is sampled for the flow
    for g in sorted(set(gammas + [a.gamma])):
        le, u = local_entropy(msh, a.beta, g)
        X, U = nodal(u)
        curves[g] = (X, U - le.constant())
        Xs, rho_T, rho_inf = fp_law(msh, u, a.beta, a.t_end)
        run = entropy_sgd(grad_loss, x0, g, a.beta, a.eps, a.t_end, runs=a.particles,
                          seed=a.seed, beta_x=a.beta, comm=comm, record_every=10 ** 9)
        xe = run["x"][-1, :, 0]
        descent = entropy_sgd(grad_loss, x0, g, a.beta, a.eps, a.t_end, runs=a.particles,
                              seed=a.seed, comm=comm, record_every=10 ** 9)["x"][-1, :, 0]
        dU = le.gradient(np.c_[grid, np.zeros((len(grid), 2))])[:, 0]
        flow = homogenized_flow(lambda z: np.interp(z[:, 0], grid, dU)[:, None], x0, a.t_end, 2e-3)[-1, :, 0]
        fractions.append({"gamma": g, "particles": float(np.mean(xe > 0.1)), "fp_T": wide_fraction_of_law(Xs, rho_T),
                          "stationary": wide_fraction_of_law(Xs, rho_inf),
                          "descent_particles": float(np.mean(descent > 0.1)), "descent_flow": float(np.mean(flow > 0.1)),
                          "descent_basin": wide_basin_share(X, U), "argmin_f_gamma": float(X[np.argmin(U)])})
        if g == a.gamma:
            hist_es = (xe, Xs, rho_T, rho_inf)
    Xs, rho_T, rho_inf = fp_law(msh, lambda x: loss(x, ufl.exp), a.beta, a.t_end)
    steps = int(round(a.t_end / 1e-3))
    xl = langevin(x0, grad_loss, a.beta, 1e-3, steps,
                  Streams(a.particles, a.seed, comm=comm))[:, 0]
    hist_l = (xl, Xs, rho_T, rho_inf)
    langevin_fraction = {"particles": float(np.mean(xl > 0.1)), "fp_T": wide_fraction_of_law(Xs, rho_T),
                         "stationary": wide_fraction_of_law(Xs, rho_inf)}
    two_d = _two_d(a) if a.h2 > 0 else None
    fields = two_d.pop("_fields") if two_d is not None else None
    summary = {"beta": a.beta, "gamma": a.gamma, "eps": a.eps, "particles": a.particles, "t_end": a.t_end,
               "entropy_sgd": fractions, "langevin": langevin_fraction, "two_d": two_d,
               "seconds": time.perf_counter() - t0}
    if MPI.COMM_WORLD.rank == 0:
        print(f"wide-basin fraction at T={a.t_end:g} (beta={a.beta:g}): Langevin on f {langevin_fraction['particles']:.3f} "
              f"(FP {langevin_fraction['fp_T']:.3f}, stationary {langevin_fraction['stationary']:.3f})")
        for r in fractions:
            print(f"  Entropy-SGD gamma={r['gamma']:<5g} descent {r['descent_particles']:.3f} (flow of -grad f_gamma "
                  f"{r['descent_flow']:.3f}, basin {r['descent_basin']:.3f});  outer noise {r['particles']:.3f}  FP(f_gamma) {r['fp_T']:.3f}  "
                  f"stationary {r['stationary']:.3f};  argmin f_gamma = {r['argmin_f_gamma']:+.2f}")
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        _plot(curves, hist_l, hist_es, fractions, langevin_fraction, a, os.path.join(a.out, "wide_minima.png"))
        if fields is not None:
            _plot_2d(fields, a, os.path.join(a.out, "wide_minima_2d.png"))
    return summary


# %% [markdown]
# The 2D panel: $f_\gamma$ on a triangle mesh of $[-2.5, 2.5]\times[-2, 2]$ sampled on a grid, and the end points
# of Langevin on $f$ and of Entropy-SGD (no outer noise: the homogenized flow descends $f_\gamma$).

# %%
def _two_d(a):
    from fpjko.solvers import evaluate_on_points

    msh = meshes.rectangle(MPI.COMM_SELF, [-2.5, -2.0], [2.5, 2.0], a.h2)
    le = LocalEntropy(msh, loss, a.beta)
    u = le.solve(a.gamma, 40)
    gx, gy = np.linspace(-2.4, 2.4, 121), np.linspace(-1.9, 1.9, 96)
    P = np.array([[x, y, 0.0] for y in gy for x in gx])
    F = loss(P[:, :2].T).reshape(len(gy), len(gx))
    U = (evaluate_on_points(u, P) - le.constant()).reshape(len(gy), len(gx))
    n = max(200, a.particles // 4)
    x0 = start(n, 2, a.seed + 1)
    x0[:, 1] = np.random.default_rng(a.seed + 2).uniform(-1.5, 1.5, n)
    xl = langevin(x0, grad_loss, a.beta, 1e-3, int(round(a.t_end / 1e-3)), Streams(n, a.seed, comm=MPI.COMM_SELF))
    xe = entropy_sgd(grad_loss, x0, a.gamma, a.beta, a.eps, a.t_end, runs=n, seed=a.seed, comm=MPI.COMM_SELF,
                     record_every=10 ** 9)["x"][-1]
    iu = np.unravel_index(np.argmin(U), U.shape)
    return {"dofs": int(le.V.dofmap.index_map.size_global), "langevin_wide": float(np.mean(xl[:, 0] > 0.1)),
            "entropy_sgd_wide": float(np.mean(xe[:, 0] > 0.1)),
            "argmin_f_gamma": [float(gx[iu[1]]), float(gy[iu[0]])],
            "_fields": (gx, gy, F, U, xl, xe)}


# %% [markdown]
# Figures.

# %%
def _plot(curves, hist_l, hist_es, fractions, lf, a, filename):
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    ax = axes[0]
    X = np.linspace(-2.5, 2.5, 1001)
    ax.plot(X, loss(X[None]) - loss(X[None]).min(), "k", lw=2, label="f")
    for g, (Xg, Ug) in curves.items():
        m = np.abs(Xg) <= 2.5
        ax.plot(Xg[m], Ug[m] - Ug[m].min(), label=f"f_gamma, gamma={g:g}")
    ax.set(xlabel="x", ylabel="minus its minimum", title=f"f and its local entropy (beta={a.beta:g})", ylim=(0, 1.6))
    ax.legend(fontsize=7)
    for ax, (x, Xs, rho_T, rho_inf), title in ((axes[1], hist_l, "Langevin on f"),
                                               (axes[2], hist_es, f"Entropy-SGD, gamma={a.gamma:g}")):
        ax.hist(x, bins=80, range=(-2.5, 2.5), density=True, alpha=0.4, label=f"{len(x)} particles at T={a.t_end:g}")
        ax.plot(Xs, rho_T, "C1", label="Fokker-Planck at T")
        ax.plot(Xs, rho_inf, "C2--", label="stationary")
        ax.set(xlabel="x", title=title, xlim=(-2.5, 2.5))
        ax.legend(fontsize=7)
    ax = axes[3]
    g = [r["gamma"] for r in fractions]
    ax.semilogx(g, [r["descent_particles"] for r in fractions], "o", color="C0", label="Entropy-SGD, no outer noise")
    ax.semilogx(g, [r["descent_flow"] for r in fractions], "-", color="C0", label="flow -grad f_gamma (FE) to T")
    ax.semilogx(g, [r["descent_basin"] for r in fractions], ":", color="C0", label="wide basin of f_gamma (T = inf)")
    ax.semilogx(g, [r["particles"] for r in fractions], "s", color="C1", label=f"with outer noise (beta={a.beta:g})")
    ax.semilogx(g, [r["fp_T"] for r in fractions], "-", color="C1", label="Fokker-Planck of f_gamma at T")
    ax.semilogx(g, [r["stationary"] for r in fractions], "--", color="C1", label="its stationary law")
    ax.axhline(lf["particles"], color="k", lw=0.8, label="Langevin on f at T")
    ax.set(xlabel="gamma", ylabel="fraction in the wide basin (x > 0.1)", ylim=(0, 1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    figures.save(fig, filename)


def _plot_2d(fields, a, filename):
    gx, gy, F, U, xl, xe = fields
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, Z, pts, title in ((axes[0], F, xl, "f, Langevin end points"),
                              (axes[1], U, xe, f"f_gamma (gamma={a.gamma:g}), Entropy-SGD end points")):
        c = ax.contourf(gx, gy, Z, levels=30, cmap="viridis")
        fig.colorbar(c, ax=ax)
        ax.plot(pts[:, 0], pts[:, 1], "w.", ms=2)
        ax.set(title=title, xlabel="x", ylabel="y", aspect="equal", xlim=(gx[0], gx[-1]), ylim=(gy[0], gy[-1]))
    fig.tight_layout()
    figures.save(fig, filename)


# %%
if __name__ == "__main__":
    main()
    out = parse().out
    figures.show(os.path.join(out, "wide_minima.png"), os.path.join(out, "wide_minima_2d.png"))
