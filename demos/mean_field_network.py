# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The mean-field limit of a two-layer network, neurons against the PDE
#
# A student network $f_N(x) = \frac1N \sum_{i=1}^N \tanh(\langle\theta_i, x\rangle)$, $\theta_i\in\mathbb R^2$,
# learns a teacher $y = \frac12(\tanh\langle\theta^*_1,x\rangle + \tanh\langle\theta^*_2,x\rangle)$ from
# $M = 64$ Gaussian inputs by square loss. As $N\to\infty$ the empirical measure of the neurons follows
# a PDE for the density $\rho(t,\theta)$ in parameter space,
#
# $$\rho_t = \nabla\cdot\big(\rho\,\nabla\Psi(\theta;\rho)\big)\;\Big[+\tfrac\gamma2\,\partial_{ij}\big(\rho\,\Sigma_{ij}(\theta;\rho)\big)\Big],
# \qquad \Psi = V + \textstyle\int U(\theta,\theta')\rho(d\theta'),$$
#
# $V(\theta) = -\frac1M\sum_m y_m\sigma(\langle\theta,x_m\rangle)$,
# $U(\theta,\theta') = \frac1M\sum_m \sigma(\langle\theta,x_m\rangle)\sigma(\langle\theta',x_m\rangle)$ (rank $M$:
# one pass of $M$ moments per step), and $\Sigma$ the covariance over the data of the per-sample gradient.
# Which particle system has which limit:
#
# * **online SGD, step $\gamma N^b$, $b<1$**, one sample shared by all neurons per step: the noiseless
#   continuity equation (solved by DG upwind, `fpjko.solvers.transport`);
# * **the continuous-time model** $d\theta_k = -\nabla\Psi\,dt + (\gamma\Sigma)^{1/2}dB_k$ with independent
#   noise per neuron: the diffusive PDE (FokkerPlanckSolver with the density-dependent $D=\frac\gamma2\Sigma$);
# * **online SGD at $b = 1$**: the shared noise does not average out; it has no deterministic limit.
#
# What to look at: `neurons_over_pde.gif` (the neurons of each particle system over the density of its
# limit), `risk.png` (the risk of particles and PDEs along training), `distance_vs_N.png` (sliced $W_2$
# between the neurons and each PDE against $N$: the distance to the right limit keeps falling like
# $N^{-1/2}$ down to the FE floor, the distance to the wrong one levels off).
#
#     python3 -m fpjko.demos.mean_field_network --out results/mean_field_network
#     mpirun -n 2 python3 -m fpjko.demos.mean_field_network

# %%
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko import cli
from fpjko.demos import figures
from fpjko.metrics.distances import sliced_wasserstein
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.mean_field_nn import TeacherData, TwoLayerMeanField, continuous_time
from fpjko.samplers.streams import Streams
from fpjko.metrics.study import fitted_slope
from fpjko.solvers.mean_field.network import network_pde, risk
from fpjko.solvers.particles.empirical import density_as_measure
from fpjko.solvers.particles.evaluate import evaluate_on_points

TEACHER = [[2.0, 1.0], [-1.0, 1.5]]


def parse(argv=None):
    p = argparse.ArgumentParser(description="Two-layer network: neurons against its mean-field PDEs")
    p.add_argument("--out", default="results/mean_field_network")
    p.add_argument("--ns", type=int, nargs="*", default=[100, 1000, 10000, 100000])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--n-show", type=int, default=10000, help="neurons drawn in the GIF and risk curves")
    p.add_argument("--M", type=int, default=64, help="data points")
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--b", type=float, default=0.5, help="SGD step gamma N^b (b < 1)")
    p.add_argument("--t-end", type=float, default=1.0)
    p.add_argument("--h", type=float, default=0.1)
    p.add_argument("--dt-particles", type=float, default=2e-3)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--no-floor", action="store_true", help="skip the FE floor (PDEs again at h/2)")
    p.add_argument("--no-gif", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# ## The two limit PDEs
# `network_pde` builds the solver for each noise model; the interaction's state is $c_m = f_\rho(x_m)$, so
# the risk of the PDE is $R(\rho) = \frac12\,\mathrm{mean}_m (c_m - y_m)^2$. Snapshots of the density on a
# grid are kept for the animation.

# %%
def solve_pdes(comm, data, a, h, times, grid=None, models=None):
    msh = meshes.rectangle(comm, [-3.5, -3.5], [3.5, 3.5], h)
    out = {}
    models = models or {"noiseless": {}, "diffusive": dict(gamma=a.gamma, dt=0.01)}
    for name, kw in models.items():
        t0 = time.perf_counter()
        s = network_pde(msh, data, **kw)
        s.set_initial(lambda x: gaussian_density(x, [0.0, 0.0], 0.25 * np.eye(2)), normalize=True)
        curve, frames = [(0.0, risk(s, data))], []
        for t in times:
            if t > s.t:
                s.run(t, callback=lambda sol: curve.append((sol.t, risk(sol, data))))
            if grid is not None:
                frames.append(evaluate_on_points(s.rho, grid))
        # (Galerkin undershoots at the fringe, below 1e-4 of the peak weight on coarse meshes, are clipped)
        out[name] = dict(cloud=density_as_measure(s.rho, quadrature_degree=2, neg_tol=1e-4), risk=np.array(curve),
                         frames=frames, dofs=s.num_dofs, seconds=time.perf_counter() - t0,
                         mass_drift=float(np.ptp(s.history["mass"])))
    return out


# %% [markdown]
# ## The particle systems
# Both start from the same $N$ neurons drawn from $N(0, 0.5^2 I)$ (seeded blocks, any number of ranks).
# The continuous-time model is integrated by Euler-Maruyama with $dt = 2\cdot10^{-3}$; SGD takes
# $t N^{1-b}/\gamma$ steps of size $\gamma N^b$.

# %%
def run_particles(comm, data, a, N, seed, times, show):
    st = Streams(N, seed, comm=comm)
    th0 = st.sample(lambda g, m: 0.5 * g.standard_normal((m, 2)))
    snaps = {"continuous-time": [], "sgd": []}
    curves = {"continuous-time": [], "sgd": []}
    marks = set(np.round(times / a.dt_particles).astype(int).tolist())

    def keep(name, t, th):
        curves[name].append((t, data.risk(st.mean(data.features(th)))))
        if show:
            snaps[name].append(st.allgather(th))

    def ct_cb(k, t, th):
        if k in marks:
            keep("continuous-time", t, th)

    if 0 in marks:
        keep("continuous-time", 0.0, th0)
    th_ct = continuous_time(th0, st, data, a.gamma, a.t_end, a.dt_particles, callback=ct_cb)
    h = a.gamma * N ** (a.b - 1.0)
    net = TwoLayerMeanField(st, data=data)
    due = list(times)

    def sgd_cb(k, t, th):
        while due and t >= due[0] - 1e-9:
            keep("sgd", due.pop(0), th)

    if due and due[0] <= 0:
        keep("sgd", due.pop(0), th0)
    th_sgd = net.train(th0, a.gamma, a.b, a.t_end, data_seed=seed, callback=sgd_cb)
    if due:
        keep("sgd", a.t_end, th_sgd)
    return st.allgather(th_ct), st.allgather(th_sgd), snaps, curves, h


def spread_at_b1(comm, data, a, clouds, Ns=(100, 1000, 10000), seeds=8, gamma=0.1):
    """Online SGD at b = 1 (step gamma = 0.1, 10 steps per unit time whatever N) against b = a.b: the spread
    over data seeds of the neurons' mean, and the mean sliced W2 of the b = 1 measures to the noiseless PDE
    and to the diffusive PDE with the same gamma, against N."""
    rows = []
    for N in Ns:
        st = Streams(N, 5, comm=comm)
        th0 = st.sample(lambda g, m: 0.5 * g.standard_normal((m, 2)))
        net = TwoLayerMeanField(st, data=data)
        row = {"N": N}
        for b in (1.0, a.b):
            finals = [st.allgather(net.train(th0, gamma, b, a.t_end, data_seed=r)) for r in range(seeds)]
            row[f"spread_b{b:g}"] = float(np.linalg.norm(np.array([f.mean(axis=0) for f in finals]).std(axis=0)))
            if b == 1.0:
                for k, cloud in clouds.items():
                    row[f"b1_to_{k}"] = float(np.mean([sliced_wasserstein(f, cloud[0], wy=cloud[1], n_projections=64)
                                                       for f in finals]))
        rows.append(row)
    return rows


# %% [markdown]
# ## Run: distances, risks, and the spread of SGD at $b=1$

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    t_start = time.perf_counter()
    data = TeacherData.teacher(a.M, TEACHER, seed=a.seed)
    times = np.linspace(0.0, a.t_end, a.frames + 1)
    xs = np.linspace(-3.5, 3.5, 141)
    grid = np.zeros((len(xs) ** 2, 3))
    grid[:, 0], grid[:, 1] = [g.ravel() for g in np.meshgrid(xs, xs)]
    pdes = solve_pdes(comm, data, a, a.h, times, grid if not a.no_gif else None)
    clouds = {k: v["cloud"] for k, v in pdes.items()}

    def sw2(theta, cloud):
        return sliced_wasserstein(theta, cloud[0], wy=cloud[1], n_projections=64)

    floor = {}
    if not a.no_floor:
        fine = solve_pdes(comm, data, a, a.h / 2, times[-1:])
        floor = {k: sliced_wasserstein(clouds[k][0], fine[k]["cloud"][0], wx=clouds[k][1], wy=fine[k]["cloud"][1],
                                       n_projections=64) for k in clouds}
    rows, show = [], {}
    for N in a.ns:
        for rep in range(a.repeats):
            t0 = time.perf_counter()
            th_ct, th_sgd, snaps, curves, h = run_particles(comm, data, a, N, 100 + rep, times,
                                                             show=(N == a.n_show and rep == 0 and not a.no_gif))
            if N == a.n_show and rep == 0:
                show = dict(snaps=snaps, curves=curves)
            rows.append({"N": N, "seed": 100 + rep, "sgd_step": h,
                         "ct_to_diffusive": sw2(th_ct, clouds["diffusive"]),
                         "ct_to_noiseless": sw2(th_ct, clouds["noiseless"]),
                         "sgd_to_noiseless": sw2(th_sgd, clouds["noiseless"]),
                         "sgd_to_diffusive": sw2(th_sgd, clouds["diffusive"]),
                         "ct_risk": curves["continuous-time"][-1][1], "sgd_risk": curves["sgd"][-1][1],
                         "seconds": time.perf_counter() - t0})
    for r in rows:      # risk of the particles against the risk of their limit PDE at t_end
        r["ct_risk_error"] = abs(r["ct_risk"] - pdes["diffusive"]["risk"][-1, 1])
        r["sgd_risk_error"] = abs(r["sgd_risk"] - pdes["noiseless"]["risk"][-1, 1])
    keys = ("ct_to_diffusive", "ct_to_noiseless", "sgd_to_noiseless", "sgd_to_diffusive", "ct_risk_error",
            "sgd_risk_error", "ct_risk", "sgd_risk")
    table = [{"N": N, **{k: float(np.mean([r[k] for r in rows if r["N"] == N])) for k in keys}} for N in a.ns]
    slopes = {k: fitted_slope(a.ns, [t[k] for t in table]) for k in keys[:6]} if len(a.ns) > 1 else {}
    b1 = solve_pdes(comm, data, a, a.h, times[-1:], models={"diffusive_gamma0.1": dict(gamma=0.1, dt=0.01)})
    spread = spread_at_b1(comm, data, a, {"noiseless": clouds["noiseless"],
                                          "diffusive_gamma0.1": b1["diffusive_gamma0.1"]["cloud"]})
    summary = {"pde": {k: {"dofs": v["dofs"], "seconds": v["seconds"], "risk_t_end": float(v["risk"][-1, 1]),
                           "mass_drift": v["mass_drift"]} for k, v in pdes.items()},
               "fe_floor_sw2": floor, "table": table, "slopes": slopes, "runs": rows, "spread_b1": spread,
               "seconds": time.perf_counter() - t_start}
    if comm.rank == 0:
        _report(summary, a)
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        _plot_distances(table, slopes, floor, os.path.join(a.out, "distance_vs_N.png"))
        _plot_risk(pdes, show.get("curves"), a, os.path.join(a.out, "risk.png"))
        if not a.no_gif and show:
            _gif(pdes, show["snaps"], xs, times, a, os.path.join(a.out, "neurons_over_pde.gif"))
    return summary


def _report(s, a):
    print(f"PDEs ({', '.join(f'{k}: {v['dofs']} dofs, {v['seconds']:.1f} s' for k, v in s['pde'].items())}); "
          f"FE floor (SW2 to h/2): {s['fe_floor_sw2']}")
    print("sliced W2 of the neurons to each PDE, and |R(particles) - R(their limit PDE)| at t_end:")
    print(f"{'N':>8} {'ct->diff':>10} {'ct->plain':>10} {'sgd->plain':>11} {'sgd->diff':>10} {'|dR| ct':>9} "
          f"{'|dR| sgd':>9}")
    for t in s["table"]:
        print(f"{t['N']:>8d} {t['ct_to_diffusive']:>10.4f} {t['ct_to_noiseless']:>10.4f} {t['sgd_to_noiseless']:>11.4f} "
              f"{t['sgd_to_diffusive']:>10.4f} {t['ct_risk_error']:>9.2e} {t['sgd_risk_error']:>9.2e}")
    print("fitted slopes in N:", {k: round(v, 3) for k, v in s["slopes"].items()})
    print(f"PDE risks at t={a.t_end}: " + ", ".join(f"{k} {v['risk_t_end']:.4f}" for k, v in s["pde"].items()))
    print(f"online SGD at b = 1 (gamma = 0.1) against b = {a.b:g}: spread over data seeds of the neurons' mean, "
          "and sliced W2 of the b = 1 measures to each PDE:")
    for r in s["spread_b1"]:
        print("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))


# %% [markdown]
# ## Figures

# %%
def _plot_distances(table, slopes, floor, filename):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    N = [t["N"] for t in table]
    styles = {"ct_to_diffusive": ("continuous-time model -> diffusive PDE", "C0", "-o"),
              "ct_to_noiseless": ("continuous-time model -> noiseless PDE", "C0", "--o"),
              "sgd_to_noiseless": ("online SGD (b<1) -> noiseless PDE", "C3", "-s"),
              "sgd_to_diffusive": ("online SGD (b<1) -> diffusive PDE", "C3", "--s")}
    for k, (label, c, st) in styles.items():
        ax.loglog(N, [t[k] for t in table], st, color=c, label=f"{label} (slope {slopes.get(k, float('nan')):.2f})")
    for k, c in (("diffusive", "C0"), ("noiseless", "C3")):
        if k in floor:
            ax.axhline(floor[k], color=c, lw=0.8, ls=":", label=f"FE floor ({k})")
    ax.loglog(N, [table[0]["ct_to_diffusive"] * (n / N[0]) ** -0.5 for n in N], "k:", lw=1, label="N^(-1/2)")
    ax.set_xlabel("number of neurons N")
    ax.set_ylabel("sliced W2(neurons, PDE density)")
    ax.legend(fontsize=7)
    ax.set_title("which PDE is the limit")
    figures.save(fig, filename)


def _plot_risk(pdes, curves, a, filename):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, c in (("noiseless", "C3"), ("diffusive", "C0")):
        r = pdes[k]["risk"]
        ax.plot(r[:, 0], r[:, 1], color=c, lw=2, label=f"{k} PDE")
    if curves:
        for k, c in (("sgd", "C3"), ("continuous-time", "C0")):
            r = np.array(curves[k])
            ax.plot(r[:, 0], r[:, 1], "o", color=c, ms=4, label=f"{k}, N={a.n_show}")
    ax.set_xlabel("mean-field time t")
    ax.set_ylabel("risk R")
    ax.legend()
    figures.save(fig, filename)


def _gif(pdes, snaps, xs, times, a, filename):
    import imageio.v2 as imageio

    plt = figures.pyplot()
    panels = (("noiseless", "sgd", f"online SGD, b={a.b:g}"), ("diffusive", "continuous-time", "continuous-time model"))
    vmax = max(np.nanmax(f) for k, _, _ in panels for f in pdes[k]["frames"])
    images = []
    for i, t in enumerate(times):
        fig, axs = plt.subplots(1, 2, figsize=(10.5, 4.8), sharey=True, constrained_layout=True)
        for ax, (pde, part, title) in zip(axs, panels):
            dens = pdes[pde]["frames"][i].reshape(len(xs), len(xs))
            im = ax.imshow(dens, origin="lower", extent=(xs[0], xs[-1], xs[0], xs[-1]), cmap="Blues", vmin=0,
                           vmax=vmax)
            th = snaps[part][i][:1500]
            ax.plot(th[:, 0], th[:, 1], ".", color="tab:red", ms=2, alpha=0.5, label=f"neurons ({len(th)} shown)")
            ax.plot(*np.array(TEACHER).T, "*", color="darkorange", mec="k", ms=14, label="teacher neurons")
            ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), xlabel="theta_1", title=f"{title}\nover the {pde} PDE")
        axs[0].set_ylabel("theta_2")
        axs[0].legend(loc="lower left", fontsize=8)
        fig.colorbar(im, ax=axs, shrink=0.8, label="PDE density rho(t, theta)")
        fig.suptitle(f"mean-field time t = {t:.2f}")
        fig.canvas.draw()
        images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    imageio.mimsave(filename, images, duration=0.5, loop=0)


if __name__ == "__main__":
    main()
    figures.show_dir(parse().out)              # in a notebook: the figures below the cell
