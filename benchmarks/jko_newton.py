"""Seconds per JKO step of NewtonJKO's one-pseudo-time-step scheme (pseudo_steps=1) versus spatial dofs, with its
accuracy; run serial and under mpirun -n 2 (the default K-step mode: benchmarks/jko_spacetime.py).

2D Ornstein-Uhlenbeck (f = |x|^2 / 2, beta = 1) on [-5, 5]^2, right-triangle meshes of (n + 1)^2 nodes, tau = 0.1,
from N((1, 0.5), 0.49 I): three steps. Per size: Newton iterations and Krylov iterations of the first step,
seconds per step (the median of the three, each converged by its own test), the L1 distance of the first step
to the exact discrete JKO Gaussian, and the fitted exponent of seconds per step against dofs. One more row on a
Delaunay disk of radius 5 with about as many nodes as the largest rectangle. Targets (issue 11): about 65k
dofs in at most 1 s per step on one core, L1 <= 1e-3, two ranks faster than one at the largest size
(printed when the serial JSON of the same --out exists).

    python3 -m benchmarks.jko_newton [--out results/benchmarks] [--sizes 64 128 256]
    mpirun -n 2 python3 -m benchmarks.jko_newton
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from benchmarks import serial_rows, write_result
from fpjko.metrics.study import fitted_slope
from fpjko.solvers.jko.newton import NewtonJKO

TAU, M0, S0 = 0.1, (1.0, 0.5), 0.7


def gauss2(x, m, s):
    return np.exp(-((x[0] - m[0]) ** 2 + (x[1] - m[1]) ** 2) / (2 * s * s)) / (2 * math.pi * s * s)


def exact_step():
    c = 1 + TAU
    return [m / c for m in M0], (S0 + math.sqrt(S0 * S0 + 4 * c * TAU)) / (2 * c)


def measure(msh, label, steps=3) -> dict:
    comm = msh.comm
    J = NewtonJKO(msh, TAU, potential=lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=1.0, pseudo_steps=1)
    J.set_initial(lambda x: gauss2(x, M0, S0), normalize=True)
    secs, recs = [], []
    for k in range(steps):
        comm.Barrier()
        t0 = time.perf_counter()
        recs.append(J.step())
        comm.Barrier()
        secs.append(time.perf_counter() - t0)
        if k == 0:
            m1, s1 = exact_step()
            err = comm.allreduce(float(J.ml[: J.n] @ np.abs(J.rho.x.array[: J.n] - gauss2(J.X.T, m1, s1)[: J.n])))
    return {"mesh": label, "dofs": J.V.dofmap.index_map.size_global, "newton_iterations": [r["iterations"] for r in recs],
            "krylov_iterations": recs[0]["linear_iterations"], "converged": all(r["converged"] for r in recs),
            "seconds_per_step": statistics.median(secs), "l1_first_step": err}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256])
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    rows = [measure(meshes.rectangle(comm, [-5, -5], [5, 5], 10 / n), f"rectangle {n}x{n}") for n in a.sizes]
    n = a.sizes[-1]
    rows.append(measure(meshes.disk(comm, 5.0, 5.0 * math.sqrt(math.pi) / n), "disk r=5"))
    rect = [r for r in rows if r["mesh"].startswith("rectangle")]
    expo = fitted_slope([r["dofs"] for r in rect], [r["seconds_per_step"] for r in rect]) if len(rect) > 1 else math.nan
    if comm.rank == 0:
        print(f"NewtonJKO, 2D OU, tau={TAU}, {comm.size} rank(s)")
        print(f"{'mesh':<20} {'dofs':>8} {'newton':>10} {'krylov':>7} {'s/step':>8} {'L1 step 1':>10}")
        for r in rows:
            print(f"{r['mesh']:<20} {r['dofs']:>8d} {','.join(map(str, r['newton_iterations'])):>10} "
                  f"{r['krylov_iterations']:>7d} {r['seconds_per_step']:>8.3f} {r['l1_first_step']:>10.2e}")
        print(f"seconds per step ~ dofs^{expo:.2f} (rectangles)")
        result = {"benchmark": "jko_newton", "ranks": comm.size, "machine": platform.machine(), "tau": TAU,
                  "rows": rows, "exponent": expo}
        serial = serial_rows(a.out, "jko_newton") if comm.size > 1 else None
        if serial is not None:
            one = {r["mesh"]: r for r in serial}
            big = rect[-1]
            if big["mesh"] in one:
                result["speedup_largest"] = one[big["mesh"]]["seconds_per_step"] / big["seconds_per_step"]
                print(f"{comm.size} ranks vs 1 at {big['dofs']} dofs: {result['speedup_largest']:.2f}x")
        write_result(a.out, "jko_newton", comm.size, result)


if __name__ == "__main__":
    main()
