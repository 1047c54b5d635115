"""Cost of the interaction field psi = W * rho versus dofs: the three paths, and a full step.

2D P1 on [-3, 3]^2 (h = 0.2 ... 0.025), density a Gaussian. For each path it times one pass
(`state(rho)`: the moments, the M feature integrals, or the kernel sums) and the peak memory that pass
allocates (tracemalloc, numpy arrays included), and one time step of FokkerPlanckSolver (BDF2, LU)
with that interaction: semi-implicit (operator re-assembled and re-factorised) or explicit
(factorisation reused), against the same step without interaction. Fitted exponents of time and memory
against dofs are printed: about 1 for the polynomial and separable paths, 2 for the kernel's time and
about 1 for its memory (blocks of 2^22 pairs, sources passed around the ranks).

    python3 -m benchmarks.interaction [--out results/benchmarks] [--quick]
    mpirun -n 2 python3 -m benchmarks.interaction
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from benchmarks import write_result
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.mean_field_nn import TeacherData
from fpjko.metrics.study import fitted_slope
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, quadratic
from fpjko.solvers.mean_field.network import network_interaction


def paths(data):
    return {
        "polynomial (W = z^T K z / 2)": lambda: quadratic(np.array([[1.0, -0.4], [-0.4, 0.5]])),
        f"separable (rank M = {data.M}, network)": lambda: network_interaction(data),
        "kernel (W = -exp(-|z|^2/2))": lambda: KernelInteraction(lambda z: -np.exp(-0.5 * np.sum(z * z, axis=-1)),
                                                                  method="direct"),   # the grid: benchmarks.kernels
    }


def timed(comm, fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        comm.Barrier()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--hs", type=float, nargs="*", default=[0.2, 0.1, 0.05, 0.025])
    p.add_argument("--kernel-max-dofs", type=int, default=20000, help="skip the O(dofs^2) kernel path above this")
    p.add_argument("--quick", action="store_true", help="two coarse meshes (for the tests)")
    a = p.parse_args(argv)
    if a.quick:
        a.hs = [0.4, 0.2]
    comm = MPI.COMM_WORLD
    data = TeacherData.teacher(64, [[2.0, 1.0], [-1.0, 1.5]], seed=1)
    start = lambda x: gaussian_density(x, [0.3, -0.2], 0.4 * np.eye(2))                # noqa: E731
    f = lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2)                                          # noqa: E731
    rows = []
    for h in a.hs:
        msh = meshes.rectangle(comm, [-3, -3], [3, 3], h)
        base = FokkerPlanckSolver(msh, f, beta=2.0, dt=0.01)
        base.set_initial(start, normalize=True)
        base.step()
        dofs = base.num_dofs
        t_plain = timed(comm, base.step)
        rows.append({"path": "none", "dofs": dofs, "seconds_pass": 0.0, "peak_bytes_pass": 0,
                     "seconds_step_semi_implicit": t_plain, "seconds_step_explicit": t_plain})
        for name, make in paths(data).items():
            if name.startswith("kernel") and dofs > a.kernel_max_dofs:
                continue
            row = {"path": name, "dofs": dofs}
            for scheme in ("semi-implicit", "explicit"):
                s = FokkerPlanckSolver(msh, f, beta=2.0, dt=0.01, interaction=make(), interaction_scheme=scheme)
                s.set_initial(start, normalize=True)
                s.step()                                    # JIT and first factorisation out of the timing
                row["seconds_step_" + scheme.replace("-", "_")] = timed(comm, s.step, repeat=2)
            inter = s.interaction
            row["seconds_pass"] = timed(comm, lambda: inter.state(s.rho))
            tracemalloc.start()
            inter.state(s.rho)
            row["peak_bytes_pass"] = comm.allreduce(tracemalloc.get_traced_memory()[1], op=MPI.MAX)
            tracemalloc.stop()
            rows.append(row)
    fits = {}
    for name in ["none", *paths(data)]:
        rs = [r for r in rows if r["path"] == name]
        if len(rs) > 1:
            d = [r["dofs"] for r in rs]
            fits[name] = {"step_semi_implicit": fitted_slope(d, [r["seconds_step_semi_implicit"] for r in rs])}
            if name != "none":
                fits[name]["pass_time"] = fitted_slope(d, [r["seconds_pass"] for r in rs])
                fits[name]["pass_memory"] = fitted_slope(d, [r["peak_bytes_pass"] for r in rs])
    if comm.rank == 0:
        print(f"{'path':<40} {'dofs':>7} {'pass s':>9} {'pass MB':>8} {'step s (semi-impl.)':>20} {'step s (expl.)':>15}"
              f"   ({comm.size} rank(s))")
        for r in rows:
            print(f"{r['path']:<40} {r['dofs']:>7d} {r['seconds_pass']:>9.4f} {r['peak_bytes_pass'] / 1e6:>8.2f} "
                  f"{r['seconds_step_semi_implicit']:>20.4f} {r['seconds_step_explicit']:>15.4f}")
        print("fitted exponents against dofs:")
        for name, v in fits.items():
            print(f"  {name:<40} " + ", ".join(f"{k} {x:.2f}" for k, x in v.items()))
        write_result(a.out, "interaction", comm.size, {"benchmark": "interaction", "ranks": comm.size,
                                                       "machine": platform.machine(), "rows": rows, "exponents": fits})
    return {"rows": rows, "exponents": fits}


if __name__ == "__main__":
    main()
