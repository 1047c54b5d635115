# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Aggregation into a ring: a million particles against the McKean-Vlasov PDE, with any kernel
#
# Particles interact through an attraction-repulsion kernel that is no polynomial,
# $W(z) = |z|^4/4 - \log(1 + |z|^2)$ (repulsive below $|z| = 1$, attractive above), with noise:
# $dX_i = -\frac1n\sum_j \nabla W(X_i - X_j)\,dt + \sqrt{2/\beta}\,dB_i$, $\beta = 50$. As $n \to \infty$ their
# empirical measure follows $\rho_t = \nabla\cdot\big(\rho\,\nabla(W * \rho) + \beta^{-1}\nabla\rho\big)$, whose
# steady state is a ring of radius about $0.55$.
#
# Both sides compute the interaction in $O(N \log N)$ (`fpjko.kernels`): the particles by the particle mesh (a
# cloud-in-cell deposit on a $256^2$ grid, an FFT convolution with $\nabla W$, interpolation back), the finite
# elements by $W * \rho$ on a uniform grid (cubic transfer, FFT; $10^{-6}$ of the direct sum or better). The model
# is declared once (`fpjko.model.Model`) and `fpjko.model.validate` runs the study.
#
# What to look at: the sliced $W_2$ distance to the PDE at $t = 1$ falls like $n^{-1/2}$ from $10^3$ to $10^6$
# particles until the FE floor (`validate.png`, the fitted slope); the Random Batch Method (interactions only within
# random pairs, $O(n)$) is biased: its distance to the PDE grows with the step $dt$ while the particle-mesh particles
# at the same $dt$ stay at the sampling level (`rbm_vs_dt.png`); the GIF shows the particles over the PDE density
# while the ring forms (`ring.gif`), both sides reaching the same radial profile (`profile.png`).
#
#     python3 -m fpjko.demos.aggregation --out results/aggregation
#     mpirun -n 2 python3 -m fpjko.demos.aggregation --out results/aggregation

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
from fpjko.model import Model, validate
from fpjko.model.study import DensityReference
from fpjko.samplers.particle_mesh import ParticleMesh

BETA = 50.0


def model() -> Model:
    """The aggregation model: W(z) = |z|^4/4 - log(1 + |z|^2), no potential, beta = 50, a centred Gaussian."""
    return Model(2, V="0", W="(z0**2 + z1**2)**2/4 - log(1 + z0**2 + z1**2)", beta=BETA,
                 initial={"mean": [0.0, 0.0], "cov": 0.3 ** 2}, domain=([-2.0, -2.0], [2.0, 2.0]), name="aggregation")


# %% [markdown]
# Parameters (change them here or on the command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description=cli.description("aggregation"),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/aggregation")
    p.add_argument("--ns", type=int, nargs="*", default=[1000, 10000, 100000, 1000000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dt", type=float, default=0.01, help="the particles' step")
    p.add_argument("--h", type=float, default=0.1, help="the FE mesh (P2) of the floor; the reference is h/2")
    p.add_argument("--rbm-n", type=int, default=100000)
    p.add_argument("--rbm-dts", type=float, nargs="*", default=[0.1, 0.05, 0.025, 0.0125])
    p.add_argument("--gif-n", type=int, default=100000)
    p.add_argument("--gif-times", type=float, nargs="*", default=[0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--no-png", action="store_true")
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# Part 1, distance against $n$: `validate` runs the PDE on meshes $h$ and $h/2$ (their distance is the floor) and the
# particle-mesh particles for each $n$ and seed, and fits the slope above the floor. The PDE's interaction is
# semi-implicit (the default): the explicit variant needs $dt \lesssim 2\beta^{-1}/\max|\nabla\psi|^2$, and at
# $\beta = 50$ it blows up at $dt = 0.02$ (measured).

# %%
def distance_vs_n(m, a, comm):
    r = validate(m, a.ns, 1.0, repeats=a.repeats, seed=a.seed, dt=a.dt, h=a.h, degree=2, fe_dt=0.02, comm=comm,
                 echo=True, out=a.out, plot=not a.no_png, keep=True, particle_options={"force": "mesh"})
    fe = r.pop("solver")
    r.pop("particles")
    return r, fe


# %% [markdown]
# Part 2, the Random Batch Method's bias: $n$ particles, each step split at random into pairs ($p = 2$) that interact
# only with each other, against the PDE at $t = 1$, for several $dt$; the particle-mesh particles with the same $n$
# and $dt$ beside them.

# %%
def rbm_vs_dt(m, a, comm, fe):
    ref = DensityReference(fe, 2, 64, a.seed, domain=m.domain)
    rows = []
    for dt in a.rbm_dts:
        row = {"dt": dt}
        for force, kw in (("rbm", {"force": "rbm", "batch": 2}), ("mesh", {"force": "mesh"})):
            t0 = time.perf_counter()
            st, x = m.particles(a.rbm_n, a.seed + 7, comm=comm, dt=dt, t_end=1.0, **kw)
            row[force] = ref.distances(st.allgather(x))["sliced W2"]         # all particles, on every rank
            row[force + "_seconds"] = time.perf_counter() - t0
        rows.append(row)
        if comm.rank == 0:
            print(f"dt={dt:<7g} RBM p=2: sliced W2 {row['rbm']:.4f} ({row['rbm_seconds']:.1f} s)   particle mesh: "
                  f"{row['mesh']:.4f} ({row['mesh_seconds']:.1f} s)", flush=True)
    dts, d = np.array(a.rbm_dts), np.array([r["rbm"] for r in rows])
    slope = float(np.polyfit(np.log(dts), np.log(d), 1)[0]) if len(dts) > 1 else float("nan")
    return {"n": a.rbm_n, "batch": 2, "rows": rows, "rbm_slope_in_dt": slope}


# %% [markdown]
# Part 3, the ring: the PDE to $t = 3$ and the particles (particle mesh) beside it; frames of the particles over the
# density, and the radial profiles at the end.

# %%
def ring(m, a, comm):
    fe = m.fokker_planck(m.mesh(comm, a.h), dt=0.02, degree=2)
    st, x = m.particles(a.gif_n, a.seed + 11, comm=comm, dt=a.dt, t_end=0.0, force="mesh")
    pm = ParticleMesh(m.grad_W, *m.domain)                 # the grid and W's spectrum, once for every frame
    frames, t = [], 0.0
    rng = np.random.default_rng(0)
    for T in a.gif_times:
        if T > t:
            fe.run(T)
            st, x = _continue(m, st, x, T - t, a.dt, pm)
            t = T
        X = st.allgather(x)
        pts, vals = _density_points(fe)
        if comm.rank == 0:
            frames.append((t, X[rng.choice(len(X), min(len(X), 4000), replace=False)], pts, vals))
    prof = _profiles(fe, st.allgather(x), comm)
    if prof is not None:
        prof["t"] = t
    return frames, prof, fe


def _continue(m, st, x, t_more, dt, pm):
    """The particles of `st` from x for t_more more: the model's Euler-Maruyama step with the particle-mesh force of
    `pm` (as model.particles(force="mesh") takes them), -grad V included."""
    from fpjko.samplers.particle_mesh import particle_mesh_force
    from fpjko.samplers.sde import euler_maruyama

    def drift(y, s):
        v = -m.grad_V(y) if len(y) else np.zeros_like(y)       # (as the model's own drift: a rank may hold none)
        return v + particle_mesh_force(y, st, pm)

    return st, euler_maruyama(x, drift, m.beta, dt, int(round(t_more / dt)), st)


def _density_points(fe):
    X = fe.V.tabulate_dof_coordinates()[: fe.n_owned, :2]
    parts = fe.comm.gather((X, fe.rho.x.array[: fe.n_owned].copy()), root=0)
    if fe.comm.rank:
        return None, None
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _profiles(fe, X, comm):
    """The radial density of the PDE (dof averages per ring) and of the particles (histogram per ring)."""
    pts, vals = _density_points(fe)
    if comm.rank:
        return None
    edges = np.linspace(0.0, 1.2, 25)
    mid = (edges[:-1] + edges[1:]) / 2
    r = np.round(np.linalg.norm(pts, axis=1), 9)     # a dof on a ring's edge (r = 0.5) falls on one side on any
    pde = [float(vals[(r >= lo) & (r < hi)].mean()) for lo, hi in zip(edges[:-1], edges[1:])]   # partition
    counts = np.histogram(np.linalg.norm(X, axis=1), edges)[0]
    area = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    part = (counts / len(X) / area).tolist()
    return {"r": mid.tolist(), "pde": pde, "particles": part,
            "ring_radius_pde": float(mid[int(np.argmax(pde))]), "ring_radius_particles": float(mid[int(np.argmax(part))])}


# %% [markdown]
# The run and the figures.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    m = model()
    r, fe = distance_vs_n(m, a, comm)
    t1 = time.perf_counter()
    rbm = rbm_vs_dt(m, a, comm, fe)
    fe.close()
    t2 = time.perf_counter()
    frames, prof, fe_ring = ring(m, a, comm)
    fe_ring.close()
    t3 = time.perf_counter()
    if comm.rank == 0:
        print(f"seconds: validate {t1 - t0:.0f}, Random Batch {t2 - t1:.0f}, ring {t3 - t2:.0f}", flush=True)
    metric = r["metrics"]["sliced W2"]
    summary = {"ns": r["ns"], "sliced_W2": metric["mean"], "slope": metric["slope"], "interval": metric["interval"],
               "floor": metric["floor"], "stopped_at_floor": metric["stopped_at_floor"], "fe": r["fe"], "rbm": rbm,
               "profile": prof, "seconds": time.perf_counter() - t0}
    if comm.rank == 0:
        if not a.no_png:
            _gif(frames, os.path.join(a.out, "ring.gif"))
            _rbm_figure(rbm, os.path.join(a.out, "rbm_vs_dt.png"))
            _profile_figure(prof, os.path.join(a.out, "profile.png"))
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        print(f"sliced W2 slope {metric['slope']:.2f} {np.round(metric['interval'], 2).tolist()}; RBM distance ~ "
              f"dt^{rbm['rbm_slope_in_dt']:.2f}; ring radius PDE {prof['ring_radius_pde']:.3f}, particles "
              f"{prof['ring_radius_particles']:.3f}; {summary['seconds']:.0f} s on {comm.size} rank(s)")
    figures.show_dir(a.out)
    return summary


def _gif(frames, filename):
    import imageio.v2 as imageio
    import matplotlib.tri as mtri

    plt = figures.pyplot()
    images = []
    vmax = max(float(np.max(v)) for _, _, _, v in frames)
    tri = mtri.Triangulation(frames[0][2][:, 0], frames[0][2][:, 1])
    for t, X, pts, vals in frames:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        ax.tricontourf(tri, vals, levels=20, vmin=0, vmax=vmax, cmap="viridis")
        ax.scatter(X[:, 0], X[:, 1], s=0.3, c="w", alpha=0.5)
        ax.set(xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), aspect="equal", title=f"t = {t:g}: particles over the PDE")
        fig.canvas.draw()
        images.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    imageio.mimsave(filename, images, duration=0.8, loop=0)


def _rbm_figure(rbm, filename):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    dts = [r["dt"] for r in rbm["rows"]]
    ax.loglog(dts, [r["rbm"] for r in rbm["rows"]], "o-", label=f"Random Batch, p = {rbm['batch']}")
    ax.loglog(dts, [r["mesh"] for r in rbm["rows"]], "s-", label="particle mesh (all pairs)")
    ax.set(xlabel="dt", ylabel="sliced W2 to the PDE at t = 1", title=f"n = {rbm['n']}")
    ax.legend()
    figures.save(fig, filename)


def _profile_figure(prof, filename):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(prof["r"], prof["pde"], "-", label="PDE (P2)")
    ax.plot(prof["r"], prof["particles"], "o", ms=3, label="particles")
    ax.set(xlabel="|x|", ylabel="density", title=f"the ring at t = {prof['t']:g}")
    ax.legend()
    figures.save(fig, filename)


if __name__ == "__main__":
    main()
