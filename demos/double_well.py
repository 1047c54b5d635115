# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Main demo: Fokker-Planck flow in a 2D double well, relaxing to exp(-beta f)/Z
#
# The law of Langevin dynamics $dX = -\nabla f(X)\,dt + \sqrt{2/\beta}\,dW$ solves the Fokker-Planck equation
#
# $$\rho_t = \nabla\cdot\big(\rho\nabla f + \beta^{-1}\nabla\rho\big), \qquad f(x, y) = (x^2-1)^2 + \tfrac12 y^2,$$
#
# with no flux through the boundary of the box. Its free energy
# $F(\rho) = \int f\rho + \beta^{-1}\int\rho\log\rho$ decreases, and $\rho \to e^{-\beta f}/Z$.
# A Gaussian bump placed on the barrier, off-centre, splits between the wells and equilibrates. The problem is
# declared once as a `fpjko.model.Model` (f as a formula, beta, the initial Gaussian, the box); its
# `fokker_planck` builds the solver (the same model gives the Langevin particles, see `fpjko.model.validate`).
#
# What to look at: the density snapshots `rho_t*.png` (one colour scale for the whole run, the mesh outline
# drawn), `free_energy.png` (F and the relative entropy to $e^{-\beta f}/Z$ falling exponentially),
# the VTX/XDMF series for ParaView, `history.json`, and the printed summary (well occupancy against the
# Gibbs value). Runs under MPI too:
#
#     python3 -m fpjko.demos.double_well --out results/double_well
#     mpirun -n 2 python3 -m fpjko.demos.double_well --out results/double_well

# %%
from __future__ import annotations

import argparse
import os
import time

import dolfinx.fem
import numpy as np
import ufl
from mpi4py import MPI

from fpjko import cli
from fpjko.demos import figures
from fpjko.common.collective import on_root
from fpjko.common.files import write_json
from fpjko.model import Model
from fpjko.solvers.io.checkpoint import Checkpointer, resume
from fpjko.solvers.io.output import SeriesWriter, plot_png
from fpjko.solvers.io.rundir import OutputDir


def model(beta: float) -> Model:
    """The double well, declared once (fpjko.model.Model): f, beta, the initial Gaussian and the box."""
    return Model(2, V="(x**2 - 1)**2 + 0.5*y**2", beta=beta, initial={"mean": [0.15, 1.0], "cov": 0.08},
                 domain=([-2.2, -2.0], [2.2, 2.0]), name="double_well")


# %% [markdown]
# Parameters (change them here or on the command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description=cli.description("double_well"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/double_well")
    p.add_argument("--beta", type=float, default=3.0)
    p.add_argument("--h", type=float, default=0.06, help="mesh size")
    p.add_argument("--degree", type=int, default=2)
    p.add_argument("--method", choices=["galerkin", "sg"], default="galerkin")
    p.add_argument("--scheme", default="bdf2")
    p.add_argument("--dt", type=float, default=0.02)
    p.add_argument("--t-end", type=float, default=20.0)
    p.add_argument("--snapshots", type=float, nargs="*", default=[0.0, 0.5, 2.0, 20.0])
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz; the rho series goes on in a new segment")
    p.add_argument("--no-png", action="store_true")
    p.epilog = ("PETSc options for the time-step solver go under the prefix dw_, e.g. -dw_ksp_type gmres "
                "-dw_pc_type hypre (or -dw_ksp_type=gmres).")
    args = cli.parse_args(p, argv, petsc_prefixes=("dw_",))
    for name in ("t_end", "beta", "h", "dt"):
        v = getattr(args, name)
        if not (np.isfinite(v) and (v > 0 or (name == "t_end" and v == 0))):
            p.error(f"--{name.replace('_', '-')} must be {'>= 0' if name == 't_end' else 'positive'} and finite, "
                    f"got {v!r}")
    if args.checkpoint_every < 1:
        p.error(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
    bad = [s for s in args.snapshots if not np.isfinite(s)]
    if bad:
        p.error(f"--snapshots must be finite times, got {bad[0]!r}")
    if args.method == "sg":
        args.degree, args.scheme = 1, "backward_euler"
    return args


# %% [markdown]
# The run.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    say = print if comm.rank == 0 else (lambda *x, **k: None)
    t_start = time.perf_counter()
    dw = model(a.beta)
    fp = dw.fokker_planck(dw.mesh(comm, a.h), degree=a.degree, dt=a.dt, scheme=a.scheme, method=a.method,
                          prefix="dw_")                          # from the model's initial law
    say(f"double well: P{a.degree} {a.method}/{a.scheme}, {fp.num_dofs} dofs on {comm.size} rank(s), "
        f"beta={a.beta}, dt={a.dt}, T={a.t_end}")
    with OutputDir(comm, a.out) as out:
        return _run(a, comm, fp, out, say, t_start)


def _run(a, comm, fp, out, say, t_start) -> dict:
    ckpt = Checkpointer(out.file("checkpoint.npz"), every=a.checkpoint_every)
    if a.resume:
        resume(fp, ckpt.path)
        say(f"resumed at t={fp.t:.4f} (step {fp.steps})")

    writer = SeriesWriter(out.file("rho"), [fp.rho], resume_at=fp.t if a.resume else None)
    pngs, shots, pending = [], [], sorted(s for s in a.snapshots if s >= fp.t - 1e-12)

    def snapshot(s):
        while pending and s.t >= pending[0] - 1e-9 * s.dt:
            shots.append((pending.pop(0), s.t, s.rho.x.array.copy()))      # rendered at the end, one colour scale

    def every_step(s):
        if s.steps % 5 == 0:
            writer.write(s.t)
        snapshot(s)

    try:
        with writer:                # closed on every rank together, also on failure (ADIOS2's close is collective)
            writer.write(fp.t)
            snapshot(fp)
            fp.run(a.t_end, callback=every_step, checkpoint=ckpt, progress=True)
    except Exception as e:          # keep what was computed: the history up to the failure
        def save_partial():          # atomic: a full disk keeps the previous file instead of an empty one
            write_json(out.file("history.json"), {"status": "failed", "error": str(e), "history": fp.history},
                       "history")
        try:
            on_root(comm, save_partial, broadcast=False)
            kept = f"the history up to t={fp.t:g} is in {out.file('history.json')!r}"
        except OSError as e2:
            kept = f"the history could not be written either ({e2})"
        # name the checkpoint only where one was written (every rank sees rank 0's answer)
        have = comm.bcast(os.path.exists(ckpt.path) if comm.rank == 0 else None, root=0)
        e.add_note(f"{kept}; " + (f"the last checkpoint is {ckpt.path!r} (rerun with --resume)" if have else
                                  "no checkpoint was written (rerun from the start)"))
        raise

    if shots and not a.no_png:
        top = comm.allreduce(max(float(v[: fp.n_owned].max(initial=0.0)) for _, _, v in shots), op=MPI.MAX)
        shown = dolfinx.fem.Function(fp.rho.function_space, name="rho")
        for tag, t, vals in shots:
            shown.x.array[:] = vals
            name = out.file(f"rho_t{tag:07.3f}.png")
            if plot_png(shown, name, title=f"rho at t = {t:.3f}", clim=[0.0, top]):
                pngs.append(name)

    # equilibrium and well occupancy
    h = fp.history
    left = dolfinx.fem.form(ufl.conditional(ufl.lt(fp.x[0], 0), fp.rho, 0) * ufl.dx)
    p_left = comm.allreduce(dolfinx.fem.assemble_scalar(left))
    summary = {
        "dofs": fp.num_dofs, "ranks": comm.size, "steps": fp.steps, "t": fp.t,
        "mass_initial": h["mass"][0], "mass_final": h["mass"][-1],
        "mass_relative_drift": abs(h["mass"][-1] - h["mass"][0]) / h["mass"][0],
        "free_energy_initial": h["energy"][0], "free_energy_final": h["energy"][-1],
        "free_energy_equilibrium": -fp.functionals.logZ / a.beta,
        "free_energy_monotone": bool(np.all(np.diff(h["energy"]) <= 1e-12 * abs(h["energy"][0]))),
        "relative_entropy_final": h["relative_entropy"][-1], "min_rho": min(h["min_rho"]),
        "mass_in_left_well": p_left, "mass_in_left_well_equilibrium": 0.5, "seconds": time.perf_counter() - t_start, "series": writer.path,
        "pngs": pngs,
    }
    def save():
        write_json(out.file("history.json"), {"status": "done", "summary": summary, "history": h}, "history")
        _plot_energy(h, summary, out.file("free_energy.png"))
    on_root(comm, save, broadcast=False)
    if comm.rank == 0:
        say("\nsummary")
        for k, v in summary.items():
            if k != "pngs":
                say(f"  {k:30s} {v:.6g}" if isinstance(v, float) else f"  {k:26s} {v}")
        say(f"  outputs in {out.path}: {len(pngs)} snapshots, free_energy.png, history.json, {os.path.basename(writer.path)}")
    return summary


def _plot_energy(h, summary, filename):
    plt = figures.pyplot()

    t = np.array(h["t"])
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(t, h["energy"], label="F(rho_t)")
    ax[0].axhline(summary["free_energy_equilibrium"], color="k", ls="--", label="F(exp(-beta f)/Z)")
    ax[0].set_xlabel("t"), ax[0].set_ylabel("free energy"), ax[0].legend()
    kl = np.maximum(np.array(h["relative_entropy"]), 1e-16)
    ax[1].semilogy(t, kl)
    ax[1].set_xlabel("t"), ax[1].set_ylabel("KL(rho_t || exp(-beta f)/Z)")
    fig.suptitle("double well: free energy decay")
    fig.tight_layout()
    figures.save(fig, filename)


# %%
if __name__ == "__main__":
    main()
    figures.show_dir(parse().out)              # in a notebook: the figures below the cell
