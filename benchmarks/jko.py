"""Seconds per JKO step (ALG2) versus space-time dofs; run serial and under mpirun -n 2.

1D OU (f = x^2/2, beta = 1), tau = 0.1, a fixed 200 ALG2 iterations per step (so the cost per
iteration is compared, not the convergence), mesh sizes h = 0.2, 0.1, 0.05. Also the entropic JKO.

    python3 -m benchmarks.jko [--out results/benchmarks]
    mpirun -n 2 python3 -m benchmarks.jko
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from benchmarks import write_result
from fpjko.solvers.jko.alg2 import JKOSolver
from fpjko.solvers.jko.entropic import EntropicJKO


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--hs", type=float, nargs="*", default=[0.2, 0.1, 0.05])
    p.add_argument("--iters", type=int, default=200)
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    rows = []
    rho0 = lambda x: np.exp(-(x[0] - 1) ** 2 / 0.18) / np.sqrt(0.18 * np.pi)        # noqa: E731
    for h in a.hs:
        s = JKOSolver(meshes.space_time(comm, [-5], [5], h, 8), 0.1, potential=lambda x: 0.5 * x[0] ** 2, beta=1.0,
                      tol=0.0, max_iter=a.iters)
        s.set_initial(rho0)
        comm.Barrier()
        t0 = time.perf_counter()
        with warnings.catch_warnings():                  # tol=0: a fixed iteration count, by design
            warnings.simplefilter("ignore", RuntimeWarning)
            s.step()
        comm.Barrier()
        sec = time.perf_counter() - t0
        rows.append({"method": "ALG2", "h": h, "dofs": s.P.dofmap.index_map.size_global, "iterations": a.iters,
                     "seconds_per_step": sec, "ms_per_iteration": 1e3 * sec / a.iters})
        e = EntropicJKO(meshes.interval(comm, -5, 5, h / 5), 0.1, 0.02, potential=lambda x: 0.5 * x[0] ** 2,
                        substeps=64)
        e.set_initial(rho0, normalize=True)
        comm.Barrier()
        t0 = time.perf_counter()
        rec = e.step()
        comm.Barrier()
        sec = time.perf_counter() - t0
        rows.append({"method": "entropic (gamma=0.02, 64 substeps)", "h": h / 5, "dofs": e.V.dofmap.index_map.size_global,
                     "iterations": int(rec["iterations"]), "seconds_per_step": sec,
                     "ms_per_iteration": 1e3 * sec / max(rec["iterations"], 1)})
    if comm.rank == 0:
        print(f"{'method':<36} {'h':>6} {'dofs':>7} {'its':>5} {'s/step':>8} {'ms/it':>7}   ({comm.size} rank(s))")
        for r in rows:
            print(f"{r['method']:<36} {r['h']:>6.3f} {r['dofs']:>7d} {r['iterations']:>5d} "
                  f"{r['seconds_per_step']:>8.3f} {r['ms_per_iteration']:>7.2f}")
        write_result(a.out, "jko", comm.size,
                     {"benchmark": "jko", "ranks": comm.size, "machine": platform.machine(), "rows": rows})


if __name__ == "__main__":
    main()
