# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A phase transition of a McKean-Vlasov equation: Desai-Zwanzig
#
# $n$ particles in the double well $f(x) = x^4/4 - x^2/2$, attracted to their mean,
#
# $$dX_i = -f'(X_i)\,dt - k\,(X_i - \bar X)\,dt + \sqrt{2/\beta}\,dB_i ,$$
#
# have the McKean-Vlasov limit $\rho_t = \partial_x\big(\rho\,\partial_x(f + W*\rho)\big) + \beta^{-1}\rho_{xx}$
# with $W(z) = kz^2/2$. Its stationary states are $\rho_m \propto e^{-\beta(f(x) + k(x-m)^2/2)}$ with the
# self-consistency $m = \int x\rho_m$. For $\beta < \beta_c$ only $m = 0$ solves it; above, a pair $\pm m^*$
# branches off, where $\beta_c k\,\mathrm{Var}_0(\beta_c) = 1$; for $k = 1$,
# $\beta_c = \big(\Gamma(\tfrac14)/(2\Gamma(\tfrac34))\big)^2 \approx 2.188$.
#
# What to look at: `bifurcation.png` (the self-consistency curve $m^*(\beta)$ by quadrature, the
# stationary solver's branches, the FE flow's $m(T)$ and the particles' mean at $T$, all on one diagram),
# and `magnetisation_vs_t.png` ($m(t)$ of the PDE and of $n = 10^4$ particles below and above $\beta_c$; near
# $\beta_c$ the relaxation slows down).
#
#     python3 -m fpjko.demos.phase_transition --out results/phase_transition

# %%
from __future__ import annotations

import argparse
import json
import math
import os
import time

import dolfinx.fem
import numpy as np
import ufl
from mpi4py import MPI

from fpjko import meshes
from fpjko import cli
from fpjko.demos import figures
from fpjko.references.gaussian import gaussian_density
from fpjko.model import Model
from fpjko.references import desai_zwanzig as dz


def parse(argv=None):
    p = argparse.ArgumentParser(description="Desai-Zwanzig phase transition: PDE, stationary solver, particles")
    p.add_argument("--out", default="results/phase_transition")
    p.add_argument("--betas", type=float, nargs="*", default=[1.0, 1.5, 2.0, 2.4, 2.7, 3.0, 4.0, 5.0])
    p.add_argument("--k", type=float, default=1.0)
    p.add_argument("--t-end", type=float, default=40.0)
    p.add_argument("--n", type=int, default=10000, help="particles")
    p.add_argument("--h", type=float, default=0.02)
    p.add_argument("--dt", type=float, default=0.05)
    p.add_argument("--dt-particles", type=float, default=0.01)
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# ## One value of $\beta$: the model declared once (`fpjko.model.Model`), its FE flow from an off-centre start,
# its stationary solver (the mean-field fixed point) from three guesses, and its particles from the same initial
# law $N(0.5, 0.1)$.

# %%
def model(beta, k):
    """Desai-Zwanzig, declared once: the particles and the McKean-Vlasov equation both come from it."""
    return Model(1, V="x**4/4 - x**2/2", W=k, beta=beta, initial={"mean": [0.5], "cov": 0.1}, domain=([-4.0], [4.0]),
                 name=f"desai_zwanzig_beta{beta:g}")


def one_beta(comm, beta, a):
    dz_model = model(beta, a.k)
    msh = dz_model.mesh(comm, a.h)
    s = dz_model.fokker_planck(msh, dt=a.dt)
    xform = dolfinx.fem.form(s.x[0] * s.rho * ufl.dx)

    def mean(rho=None):
        form = xform if rho is None else dolfinx.fem.form(s.x[0] * rho * ufl.dx)
        return comm.allreduce(dolfinx.fem.assemble_scalar(form))

    m_pde = [(0.0, mean())]
    s.run(a.t_end, callback=lambda sol: m_pde.append((sol.t, mean())) if sol.steps % 10 == 0 else None)
    branches = {}
    for c in (0.7, -0.7, 0.0):
        r = dz_model.stationary(msh, guess=lambda x, c=c: gaussian_density(x, [c], np.array([[0.3]])))
        branches[c] = dict(m=mean(r.rho), converged=r.converged, iterations=r.iterations, F=r.free_energy)
    m_part = []
    every = max(1, int(round(0.5 / a.dt_particles)))
    dz_model.particles(a.n, seed=7, comm=comm, dt=a.dt_particles, t_end=round(a.t_end / a.dt_particles) * a.dt_particles,
                       callback=lambda st, k, t, x: m_part.append((t, float(st.mean(x)[0]))) if k % every == 0 else None)
    return dict(beta=beta, m_star=dz.magnetisation(beta, a.k), m_pde=np.array(m_pde), m_particles=np.array(m_part),
                branches=branches, free_energy_monotone=bool(np.all(np.diff(s.history["energy"]) < 0)))


# %% [markdown]
# ## All $\beta$, the diagram and the figures

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    bc = dz.critical_beta(a.k)
    runs = [one_beta(comm, b, a) for b in a.betas]
    summary = {"beta_c": bc, "k": a.k, "seconds": time.perf_counter() - t0, "runs": [
        {"beta": r["beta"], "m_star": r["m_star"], "m_pde_T": float(r["m_pde"][-1, 1]),
         "m_particles_T": float(r["m_particles"][-1, 1]), "free_energy_monotone": r["free_energy_monotone"],
         "branches": {str(c): v for c, v in r["branches"].items()}} for r in runs]}
    if comm.rank == 0:
        print(f"beta_c = {bc:.6f} (k = {a.k})")
        print(f"{'beta':>6} {'m* (quad)':>10} {'stat +':>10} {'stat -':>10} {'PDE m(T)':>10} {'particles':>10}")
        for r in runs:
            br = r["branches"]
            print(f"{r['beta']:>6.2f} {r['m_star']:>10.5f} {br[0.7]['m']:>10.5f} {br[-0.7]['m']:>10.5f} "
                  f"{r['m_pde'][-1, 1]:>10.5f} {r['m_particles'][-1, 1]:>10.5f}")
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        _plot(runs, bc, a, a.out)
    return summary


def _plot(runs, bc, a, out):
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bs = np.linspace(min(a.betas), max(a.betas), 120)
    ms = np.array([dz.magnetisation(b, a.k) for b in bs])
    ax.plot(bs, ms, "k-", lw=1.5, label="self-consistency m*(beta) (quadrature)")
    ax.plot(bs, -ms, "k-", lw=1.5)
    ax.plot(bs, 0 * bs, "k:", lw=1, label="m = 0 (unstable above beta_c)")
    b = np.array([r["beta"] for r in runs])
    for c, mk, lab in ((0.7, "^", "stationary solver, guess +"), (-0.7, "v", "stationary solver, guess -")):
        ax.plot(b, [r["branches"][c]["m"] for r in runs], mk, color="C0", ms=8, mfc="none", label=lab)
    ax.plot(b, [r["m_pde"][-1, 1] for r in runs], "o", color="C1", label=f"FE flow m(T = {a.t_end:g}) from m(0) = 0.5")
    ax.plot(b, [r["m_particles"][-1, 1] for r in runs], "x", color="C3", ms=8,
            label=f"{a.n} particles, mean at T")
    ax.axvline(bc, color="gray", lw=0.8, ls="--")
    ax.text(bc, -0.9, " beta_c", color="gray")
    ax.set_xlabel("beta")
    ax.set_ylabel("m = int x rho")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Desai-Zwanzig: W = k z^2/2, f = x^4/4 - x^2/2")
    figures.save(fig, os.path.join(out, "bifurcation.png"))
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, r in enumerate(runs):
        c = f"C{i % 10}"
        ax.plot(*r["m_pde"].T, color=c, lw=1.5, label=f"beta = {r['beta']:g}")
        ax.plot(*r["m_particles"].T, ".", color=c, ms=3)
    ax.set_xlabel("t")
    ax.set_ylabel("m(t)")
    ax.set_title("FE flow (lines) and particles (dots)")
    ax.legend(fontsize=7, ncol=2)
    figures.save(fig, os.path.join(out, "magnetisation_vs_t.png"))


if __name__ == "__main__":
    main()
    figures.show_dir(parse().out)              # in a notebook: the figures below the cell
