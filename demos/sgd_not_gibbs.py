# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # SGD is not sampling exp(-beta f): minibatch SGD on 2-parameter least squares
#
# Per-sample losses $f_i(x) = \tfrac12(a_i\cdot x - y_i)^2$ on $n$ samples whose label noise depends on the
# features (heteroscedastic); SGD with learning rate lr and batch $B$. Its diffusion limit is
#
# $$dX = -\nabla f\,dt + \sqrt{2\beta^{-1} D(X)}\,dW, \qquad \beta^{-1} = \frac{\mathrm{lr}}{2B}, \qquad
#   D(x) = \mathrm{Cov}_i\big(\nabla f_i(x)\big),$$
#
# a quadratic matrix field: `LeastSquares.formulas` writes f and D as formulas with the data's coefficients, and the
# problem is declared once as a `fpjko.model.Model` (exact UFL on the FE side, no interpolation of D). The
# Fokker-Planck equation $\rho_t = \nabla\cdot(\rho\nabla f + \beta^{-1}\nabla\cdot(D\rho))$ then has a stationary
# density $\rho_{ss} = e^{-\beta\Phi}$ with $\Phi \ne f$ and a nonzero probability current, because
# $H D(x^*) \ne D(x^*) H$.
#
# What to look at: the FE stationary density (solved directly) against the Gibbs density $e^{-\beta f}/Z$ and
# against real SGD iterates: covariances, $\mathrm{KL}(\rho_{ss}\,\|\,\text{Gibbs})$, $\Phi$ against $f$, and
# the current $J$ (PNGs and `summary.json`).
#
#     python3 -m fpjko.demos.sgd_not_gibbs --out results/sgd_not_gibbs

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

from fpjko import cli
from fpjko.demos import figures
from fpjko.references.gaussian import lyapunov
from fpjko.samplers import LeastSquares, minibatch_sgd, sgd_diffusion, sgd_temperature
from fpjko.model import Model
from fpjko.solvers.particles.evaluate import evaluate_on_points
from fpjko.solvers.io.output import plot_current_png, plot_png
from fpjko.solvers.fokker_planck.stationary import stationary_density


def make_data(n: int, rng) -> LeastSquares:
    a = rng.multivariate_normal([0, 0], [[1.0, 0.5], [0.5, 0.6]], size=n)
    noise = (0.2 + 1.5 * (a[:, 0] > 0)) * rng.normal(size=n)        # noisier labels when a_1 > 0
    return LeastSquares(a, a @ np.array([1.0, -0.5]) + noise)


# %% [markdown]
# Parameters (change them here or on the command line).

# %%
def parse(argv=None):
    p = argparse.ArgumentParser(description=cli.description("sgd_not_gibbs"), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/sgd_not_gibbs")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--chains", type=int, default=20000)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--cells", type=int, default=60, help="cells across the domain")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-png", action="store_true")
    return p.parse_args(cli.script_args(argv))


# %% [markdown]
# The run.

# %%
def main(argv=None) -> dict:
    a = parse(argv)
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    prob = make_data(a.n, np.random.default_rng(a.seed))
    T = sgd_temperature(a.lr, a.batch)
    beta = 1.0 / T
    xs, H = prob.minimizer, prob.hessian
    Dstar = sgd_diffusion(prob.per_sample_grads(xs[:, None]), a.batch)[:, :, 0]
    S_lyap = lyapunov(H, 2 * T * Dstar)
    S_gibbs = T * np.linalg.inv(H)
    half = 6 * math.sqrt(max(np.linalg.eigvalsh(S_lyap).max(), np.linalg.eigvalsh(S_gibbs).max()))
    # the model, declared once: f and SGD's noise covariance D(x) are quadratic polynomials with coefficients from
    # the data (LeastSquares.formulas), so the FE operator is exact (no interpolation of D)
    V, D = prob.formulas(a.batch)
    sgd = Model(2, V=V, D=D, beta=beta, initial={"mean": xs, "cov": S_gibbs}, domain=(xs - half, xs + half),
                name="sgd_least_squares")
    msh = sgd.mesh(comm, 2 * half / a.cells)
    fp = sgd.fokker_planck(msh, degree=2, prefix="sgd_")
    st = stationary_density(fp)
    x = fp.x
    logZ = fp.functionals.logZ
    gibbs = ufl.exp(-beta * fp.f_expr - logZ)

    def integrate(e):
        return comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(e * ufl.dx(metadata={"quadrature_degree": 8}))))

    mean = np.array([integrate(x[i] * st.rho) for i in range(2)])
    cov = np.array([[integrate((x[i] - mean[i]) * (x[j] - mean[j]) * st.rho) for j in range(2)] for i in range(2)])
    kl = integrate(st.rho * ufl.ln(ufl.max_value(st.rho, 1e-300)) - st.rho * ufl.ln(gibbs))
    ang = integrate((x[0] - mean[0]) * st.current[1] - (x[1] - mean[1]) * st.current[0])
    # Phi - f over the bulk (rho above 1% of its max): constant iff rho_ss is Gibbs
    n = fp.n_owned
    phi_minus_f = dolfinx.fem.Function(fp.V, name="Phi - f")
    phi_minus_f.x.array[:] = st.phi.x.array - fp.f.x.array
    rmax = comm.allreduce(float(st.rho.x.array[:n].max()), op=MPI.MAX)
    bulk = st.rho.x.array[:n] > 0.01 * rmax
    pm = phi_minus_f.x.array[:n][bulk]
    spread = comm.allreduce(float(pm.max()) if len(pm) else -np.inf, op=MPI.MAX) - \
        comm.allreduce(float(pm.min()) if len(pm) else np.inf, op=MPI.MIN)
    phi_minus_f.x.array[:] -= comm.allreduce(float(pm.min()) if len(pm) else np.inf, op=MPI.MIN)

    # real SGD: chains split over ranks, seeded per rank
    rng = np.random.default_rng([a.seed, comm.rank])
    mine = a.chains // comm.size + (comm.rank < a.chains % comm.size)
    xsgd = minibatch_sgd(prob, np.tile(xs, (mine, 1)), a.lr, a.batch, a.steps, rng)
    allx = np.vstack(comm.allgather(xsgd))
    cov_sgd = np.cov(allx.T)
    se = np.sqrt((cov_sgd**2 + np.outer(np.diag(cov_sgd), np.diag(cov_sgd))) / len(allx))

    summary = {
        "n_samples": a.n, "lr": a.lr, "batch": a.batch, "beta": beta, "dofs": fp.num_dofs,
        "commutator_HD_norm": float(np.abs(H @ Dstar - Dstar @ H).max()),
        "cov_fe_stationary": cov.tolist(), "cov_sgd_iterates": cov_sgd.tolist(), "cov_sgd_stderr": se.tolist(),
        "cov_lyapunov_at_minimizer": S_lyap.tolist(), "cov_gibbs": S_gibbs.tolist(),
        "kl_stationary_vs_gibbs": kl, "phi_minus_f_spread_in_bulk": spread,
        "current_L2": st.current_norm, "angular_momentum_of_current": ang,
        "stationarity_residual": st.residual, "seconds": time.perf_counter() - t0,
    }
    pngs = []
    if not a.no_png:
        os.makedirs(a.out, exist_ok=True) if comm.rank == 0 else None
        gib = dolfinx.fem.Function(fp.V, name="gibbs")
        from fpjko.solvers.core.compat import interpolate
        interpolate(gib, gibbs)
        st.rho.name = "rho_ss"
        for fn, name, title in ((st.rho, "rho_stationary.png", "FE stationary density of SGD's diffusion"),
                                (gib, "gibbs.png", "Gibbs density exp(-beta f)/Z"),
                                (phi_minus_f, "phi_minus_f.png", "Phi - f (constant iff SGD samples Gibbs)")):
            if plot_png(fn, os.path.join(a.out, name), title=title):
                pngs.append(name)
        if plot_current_png(st.current, os.path.join(a.out, "current.png"), title="probability current J",
                            background=st.rho):
            pngs.append("current.png")
    grid = _grid(xs, half)
    rho_grid = evaluate_on_points(st.rho, grid[2])
    if comm.rank == 0:
        if not a.no_png:
            _scatter(allx[:4000], grid, rho_grid, os.path.join(a.out, "sgd_samples.png"), beta, prob)
            pngs.append("sgd_samples.png")
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        print(f"SGD on least squares, n={a.n}, lr={a.lr}, B={a.batch}: beta = 2B/lr = {beta:g}; "
              f"FE P2, {fp.num_dofs} dofs; ||H D - D H|| = {summary['commutator_HD_norm']:.3g}")
        fmt = lambda M: np.array2string(np.asarray(M), precision=5, suppress_small=False)  # noqa: E731
        print(f"  covariance  FE stationary      {fmt(cov).replace(chr(10), ' ')}")
        print(f"              SGD iterates       {fmt(cov_sgd).replace(chr(10), ' ')}  (+- {fmt(se).replace(chr(10), ' ')})")
        print(f"              Lyapunov at x*     {fmt(S_lyap).replace(chr(10), ' ')}")
        print(f"              Gibbs exp(-beta f) {fmt(S_gibbs).replace(chr(10), ' ')}")
        print(f"  KL(rho_ss || Gibbs) = {kl:.4f}; spread of Phi - f in the bulk = {spread:.4g} (0 for Gibbs)")
        print(f"  current: ||J|| = {st.current_norm:.4g}, angular momentum = {ang:.4g}; "
              f"stationarity residual {st.residual:.2e}; {summary['seconds']:.1f} s")
        if pngs:
            print(f"  outputs in {a.out}: {', '.join(pngs)}, summary.json")
    return summary


def _grid(xs, half, n=161):
    g = np.linspace(-half, half, n) * (1 - 1e-9)
    X, Y = np.meshgrid(xs[0] + g, xs[1] + g)
    return X, Y, np.column_stack([X.ravel(), Y.ravel(), np.zeros(X.size)])


def _scatter(samples, grid, rho, filename, beta, prob):
    plt = figures.pyplot()

    X, Y, pts = grid
    f = prob.loss(pts[:, :2].T).reshape(X.shape)
    gib = np.exp(-beta * (f - f.min()))
    rho = rho.reshape(X.shape)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.25, color="0.4", label="SGD iterates")
    ax.contour(X, Y, rho / np.nanmax(rho), levels=[0.05, 0.25, 0.6], colors="C0")
    ax.contour(X, Y, gib / gib.max(), levels=[0.05, 0.25, 0.6], colors="C3", linestyles="--")
    ax.plot([], [], "C0", label="FE stationary density (SGD diffusion)")
    ax.plot([], [], "C3--", label="Gibbs exp(-beta f)")
    ax.set_aspect("equal"), ax.legend(loc="upper right", fontsize=8)
    ax.set_title("SGD does not sample exp(-beta f)")
    fig.tight_layout()
    figures.save(fig, filename)


# %%
if __name__ == "__main__":
    main()
    figures.show_dir(parse().out)              # in a notebook: the figures below the cell
