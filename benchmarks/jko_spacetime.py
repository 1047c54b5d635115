"""The JKO step at large tau: NewtonJKO's one pseudo-time step against K pseudo-time steps ('auto'), on a problem
whose JKO iterates are exact Gaussians.

[0, 1]^2, V = 125 |x - (0.6, 0.6)|^2, beta = 1, tau = 0.001, rho_0 = N((0.4, 0.4), 0.04^2 I): each step moves the bump
about 1.4 widths. Per grid and mode: L1 to the exact iterate after step 1 and after the last step, the K that
'auto' chose, Newton iterations and CPU seconds per step (one core). The space-time solve is a direct (MUMPS)
Cholesky factorisation of a K n x K n system per interior-point iteration (about 42 s per step at 128^2, K = 8).

    python3 -m benchmarks.jko_spacetime [--out results/benchmarks] [--quick]
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
from mpi4py import MPI

from benchmarks import write_result
from fpjko import meshes
from fpjko.solvers.jko.newton import NewtonJKO

TAU, A, C, M0, S0 = 0.001, 250.0, (0.6, 0.6), (0.4, 0.4), 0.04


def gauss(x, m, s):
    return np.exp(-((x[0] - m[0]) ** 2 + (x[1] - m[1]) ** 2) / (2 * s * s)) / (2 * math.pi * s * s)


def exact_step(m, s):
    c, a = 1 + TAU * A, 1 / TAU + A
    return [(mi + TAU * A * ci) / c for mi, ci in zip(m, C)], (s / TAU + math.sqrt(s * s / TAU ** 2 + 4 * a)) / (2 * a)


def run(N: int, mode, steps: int, tol: float) -> dict:
    msh = meshes.unit_square(MPI.COMM_WORLD, N)
    J = NewtonJKO(msh, TAU, potential=lambda x: 0.5 * A * ((x[0] - C[0]) ** 2 + (x[1] - C[1]) ** 2), beta=1.0,
                  pseudo_steps=mode, pseudo_tol=tol)
    J.set_initial(lambda x: gauss(x, M0, S0), normalize=True)
    m, s, errs, secs, Ks, its = list(M0), S0, [], [], [], []
    for _ in range(steps):
        t0 = time.process_time()
        rec = J.step()
        secs.append(time.process_time() - t0)
        m, s = exact_step(m, s)
        errs.append(J.comm.allreduce(float(J.ml[: J.n] @ np.abs(J.rho.x.array[: J.n] - gauss(J.X.T, m, s)[: J.n]))))
        Ks.append(rec["pseudo_steps"])
        its.append(rec["iterations"])
    J.close()
    return {"grid": f"{N}^2", "mode": "one step" if mode == 1 else f"auto (tol {tol:g})", "steps": steps,
            "l1_step1": errs[0], "l1_last": errs[-1], "K": Ks, "newton_iterations": its,
            "cpu_s_per_step": float(np.mean(secs))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--quick", action="store_true", help="24^2, 2 steps (CI smoke run)")
    a = p.parse_args(argv)
    plan = [(24, 1, 2), (24, "auto", 2)] if a.quick else [(32, 1, 10), (64, 1, 10), (128, 1, 10), (32, "auto", 10),
                                                          (64, "auto", 10), (128, "auto", 10)]
    rows = [run(N, mode, steps, 2e-3) for N, mode, steps in plan]
    if MPI.COMM_WORLD.rank == 0:
        print(f"{'grid':>6} {'mode':<18} {'steps':>5} {'L1 step 1':>10} {'L1 last':>10} {'K':>12} {'CPU s/step':>11}")
        for r in rows:
            print(f"{r['grid']:>6} {r['mode']:<18} {r['steps']:>5d} {r['l1_step1']:>10.3e} {r['l1_last']:>10.3e} "
                  f"{str(sorted(set(r['K']))):>12} {r['cpu_s_per_step']:>11.3f}")
        write_result(a.out, "jko_spacetime", 1, {"benchmark": "jko_spacetime", "machine": platform.machine(),
                                                 "numpy": np.__version__, "rows": rows})


if __name__ == "__main__":
    main()
