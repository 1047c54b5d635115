"""Deep relaxation: seconds per local-entropy (viscous HJ) solve against dofs, Cole–Hopf against the direct Newton
solve, and Entropy-SGD / Elastic-SGD particle-steps per second.

The HJ solves: f = cos(3x)/2 + x^2/10 + y^2/2 on [-2.5, 2.5]^2, beta 4, gamma 0.5 in 20 BDF2 steps, P1, n x n
squares (--cells); per size the seconds of the solve, the Newton iterations of the direct one, and the largest
difference between the two on |x| < 1.5 (their discretisation errors differ; it falls as O(h^2) until the
time error of the 20 steps shows, 1.5e-3). The particles:
Entropy-SGD on the tilted double well (f = (y^2 - 1)^2 + 0.3 y, beta 4, gamma 0.5, eps 0.05, ds = eps/400) with
--runs independent centres, and Elastic-SGD with 4 replicas each; particle-steps = replicas x runs x steps.

    python3 -m benchmarks.deep_relaxation [--out results/benchmarks] [--cells 50,100,200] [--runs 10000]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from benchmarks import write_result
from fpjko.samplers.deep_relaxation import elastic_sgd
from fpjko.metrics.study import fitted_slope
from fpjko.solvers.hamilton_jacobi.cole_hopf import LocalEntropy
from fpjko.solvers.hamilton_jacobi.viscous import ViscousHJ


def loss(x):
    return 0.5 * np.cos(3 * x[0]) + 0.1 * x[0] ** 2 + 0.5 * x[1] ** 2


def hj_row(comm, n: int) -> dict:
    msh = meshes.rectangle(comm, [-2.5, -2.5], [2.5, 2.5], 5.0 / n)
    out, solved = {"cells": n}, {}
    for name, cls in (("cole_hopf", LocalEntropy), ("direct", ViscousHJ)):
        comm.Barrier()
        t0 = time.perf_counter()
        solved[name] = cls(msh, loss, 4.0)
        solved[name].solve(0.5, 20)
        comm.Barrier()
        out[name + "_s"] = time.perf_counter() - t0
    le, hj = solved["cole_hopf"], solved["direct"]
    X = le.V.tabulate_dof_coordinates()[: le.n, :2]
    m = np.abs(X).max(axis=1) < 1.5
    out["dofs"] = le.V.dofmap.index_map.size_global
    out["max_difference"] = comm.allreduce(float(np.abs(le.u.x.array[: le.n] - hj.u.x.array[: le.n])[m].max()),
                                           op=MPI.MAX)
    out["newton_per_step"] = float(np.mean(hj.history["iterations"][1:]))
    le.destroy()
    hj.destroy()
    return out


def particle_rows(runs: int, steps: int) -> list:
    grad = lambda y: 4 * y * (y ** 2 - 1) + 0.3                               # noqa: E731
    rows = []
    for K in (1, 4):
        eps = 0.05
        T = steps * eps / 400
        t0 = time.perf_counter()
        elastic_sgd(grad, [1.5], 0.5, 4.0, eps, T, replicas=K, runs=runs, seed=0, comm=MPI.COMM_SELF,
                    record_every=10 ** 9)
        sec = time.perf_counter() - t0
        rows.append({"method": "Entropy-SGD" if K == 1 else f"Elastic-SGD K={K}", "runs": runs, "steps": steps,
                     "seconds": sec, "particle_steps_per_s": K * runs * steps / sec})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--cells", default="50,100,200")
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--steps", type=int, default=2000)
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    rows = [hj_row(comm, int(n)) for n in a.cells.split(",")]
    parts = particle_rows(a.runs, a.steps) if comm.rank == 0 else []
    expo = {k: fitted_slope([r["dofs"] for r in rows], [r[k + "_s"] for r in rows]) if len(rows) > 1 else None
            for k in ("cole_hopf", "direct")}
    if comm.rank == 0:
        print(f"local entropy by viscous HJ, 2D P1, beta 4, gamma 0.5, 20 BDF2 steps, {comm.size} rank(s)")
        print(f"{'dofs':>8} {'Cole-Hopf s':>12} {'direct s':>9} {'Newton/step':>12} {'max |diff|':>11}")
        for r in rows:
            print(f"{r['dofs']:>8d} {r['cole_hopf_s']:>12.3f} {r['direct_s']:>9.3f} {r['newton_per_step']:>12.2f} "
                  f"{r['max_difference']:>11.2e}")
        for k, e in expo.items():
            if e is not None:
                print(f"seconds per solve ~ dofs^{e:.2f} ({k})")
        for r in parts:
            print(f"{r['method']:<18} {r['runs']} runs x {r['steps']} steps: {r['particle_steps_per_s']:.3g} "
                  f"particle-steps/s")
        write_result(a.out, "deep_relaxation", comm.size, {"benchmark": "deep_relaxation", "ranks": comm.size,
                                                           "machine": platform.machine(), "hj": rows,
                                                           "exponents": expo, "particles": parts})


if __name__ == "__main__":
    main()
