"""Fokker-Planck at scale: seconds per BDF2 step versus dofs, LU against Krylov + AMG, 2D and 3D, 1 and 2 ranks.

2D OU (f = |x|^2/2, beta = 1) on [-5, 5]^2, P1, BDF2, dt = 0.01, n x n squares (--cells: 10k to 2.0M dofs, and
1.44M), and the 3D OU on the box [-4, 4]^3. Per size and solver: seconds per step (the median of 6 steps after
the two start-up steps, with the history functionals recorded every 5th step as in the solver's
record_every=5), the cost of one history record (mass, F, KL, min rho) as a fraction of a step and amortised
over 5 steps, Krylov iterations of the last step, the memory of the solver (resident memory gained from
before the solver was built to after its steps, free heap pages handed back to the system at both ends, so
it is what stays live: matrices, AMG hierarchy, Krylov and history vectors, all ranks) and the process's peak
(which also holds the set-up's transient memory), and the error to the exact Gaussian at the end. Fitted exponents of seconds
per step against dofs per solver, over all sizes and over those from 3e5 dofs (whose vectors and matrices no
longer fit the caches: the smaller ones run up to 2x faster per dof). At --gamg-cells also a row with PETSc's
GAMG instead of BoomerAMG. Under mpirun -n 2 with the serial JSON in --out: strong scaling (speedup at each size
and solver) and weak scaling (1 rank at n dofs against 2 ranks at 2n).

    python3 -m benchmarks.fp_scaling [--out results/benchmarks] [--cells 100,141,...] [--lu-max-dofs 300000] [--gamg-cells 1000,1414]
        [--box-h 0.16]
    mpirun -n 2 python3 -m benchmarks.fp_scaling
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import platform
import resource
import statistics
import time

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from benchmarks import serial_rows, write_result
from fpjko.references.gaussian import gaussian_density
from fpjko.metrics.study import fitted_slope
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.core.exact import ou_solution_ufl


def resident_mb() -> float:
    """This process's resident memory now, MB (Linux /proc; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# PETSc's GAMG with a 0.05 drop threshold (the best of a sweep of thresholds and smoothers at 1M dofs): slower than
# the default BoomerAMG on one rank and on two, but it keeps its iteration count across ranks, so it is the row that
# shows what two ranks give for the same preconditioner
GAMG = {"pc_type": "gamg", "pc_gamg_threshold": 0.05}


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), so that the resident memory gained
    while a solver lives is its own: after a large solver is freed, glibc keeps its pages for the next one,
    and that one would look free."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(msh, solver: str, label: str, petsc_options: dict | None = None, kind: str | None = None) -> dict:
    comm = msh.comm
    d = msh.geometry.dim
    gc.collect()
    release_free_memory()
    rss0 = resident_mb()
    A = np.eye(d)
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * sum(x[i] ** 2 for i in range(d)), beta=1.0, degree=1, dt=0.01,
                           scheme="bdf2", solver=solver, record_every=5, petsc_options=petsc_options)
    m0, S0 = [0.5] * d, 0.5 * np.eye(d)
    s.set_initial(lambda x: gaussian_density(x[:d], m0, S0), normalize=True)
    comm.Barrier()
    t0 = time.perf_counter()
    s.step()                                                    # backward Euler start + the solver set-up
    s.step()                                                    # the BDF2 system's set-up
    comm.Barrier()
    first = time.perf_counter() - t0
    secs = []
    for _ in range(6):
        comm.Barrier()
        t0 = time.perf_counter()
        s.step()
        comm.Barrier()
        secs.append(time.perf_counter() - t0)
    its = s.history["iterations"][-1]
    comm.Barrier()
    t0 = time.perf_counter()
    s.record()
    comm.Barrier()
    rec = time.perf_counter() - t0
    exact = ou_solution_ufl(A, 1.0, m0, S0, s.t)
    err = s.l2_error(exact) / s.l2_norm(exact)
    gc.collect()
    release_free_memory()                                                                # what is still live
    solver_mb = comm.allreduce(resident_mb() - rss0, op=MPI.SUM)                          # MB, all ranks
    mem = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, op=MPI.SUM)
    secs = [x for k, x in enumerate(secs) if (s.steps - 6 + k + 1) % 5]          # steps without a record
    step = statistics.median(secs)
    s.destroy()
    return {"mesh": label, "dim": d, "solver": s.linear_solver, "kind": kind or solver,
            "dofs": s.V.dofmap.index_map.size_global, "first_step_s": first, "seconds_per_step": step,
            "record_fraction": rec / step, "record_fraction_every_5": rec / 5 / step, "ksp_its": int(its),
            "solver_mb": solver_mb, "peak_rss_mb": mem, "rel_l2_error": err}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--cells", default="100,141,200,283,400,566,800,1000,1200,1414",
                   help="2D sizes: squares per side of [-5, 5]^2 ((n+1)^2 dofs: 10k to 2.0M)")
    p.add_argument("--lu-max-dofs", type=float, default=3e5)
    p.add_argument("--gamg-cells", default="1000,1414", help="2D sizes that also get a GAMG row ('' for none)")
    p.add_argument("--box-h", type=float, default=0.16, help="3D box mesh size (0: no 3D row)")
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    rows = []
    for n in (int(c) for c in a.cells.split(",")):
        msh = meshes.rectangle(comm, [-5, -5], [5, 5], 10.0 / n)
        label = f"2D {n}x{n}"
        ndofs = msh.topology.index_map(0).size_global
        rows.append(measure(msh, "iterative", label))
        if ndofs <= a.lu_max_dofs:
            rows.append(measure(msh, "direct", label))
        if str(n) in a.gamg_cells.split(","):
            rows.append(measure(msh, "iterative", label, GAMG, kind="gamg"))
    if a.box_h > 0:
        msh = meshes.box(comm, [-4, -4, -4], [4, 4, 4], a.box_h)
        rows.append(measure(msh, "iterative", f"3D h={a.box_h:g}"))
    expo = {}
    for kind in ("direct", "iterative"):    # (the GAMG rows are two sizes: no fit)
        r = [x for x in rows if x["kind"] == kind and x["dim"] == 2]
        if len(r) > 1:
            expo[kind] = fitted_slope([x["dofs"] for x in r], [x["seconds_per_step"] for x in r])
        big = [x for x in r if x["dofs"] >= 3e5]
        if len(big) > 1:
            expo[kind + " from 3e5"] = fitted_slope([x["dofs"] for x in big], [x["seconds_per_step"] for x in big])
    if comm.rank == 0:
        print(f"Fokker-Planck BDF2 steps, 2D/3D OU, P1, {comm.size} rank(s)")
        print(f"{'mesh':<14} {'solver':<10} {'dofs':>9} {'s/step':>8} {'set-up s':>9} {'record/step':>11} "
              f"{'  /5 steps':>10} {'its':>4} {'solver MB':>9} {'peak MB':>8} {'L2 err':>9}")
        for r in rows:
            print(f"{r['mesh']:<14} {r['kind']:<10} {r['dofs']:>9d} {r['seconds_per_step']:>8.3f} "
                  f"{r['first_step_s']:>9.2f} {r['record_fraction']:>11.2f} {r['record_fraction_every_5']:>10.2f} "
                  f"{r['ksp_its']:>4d} {r['solver_mb']:>9.0f} {r['peak_rss_mb']:>8.0f} {r['rel_l2_error']:>9.2e}")
        for kind, e in expo.items():
            print(f"seconds per step ~ dofs^{e:.2f} ({kind}, 2D)")
        result = {"benchmark": "fp_scaling", "ranks": comm.size, "machine": platform.machine(), "rows": rows,
                  "exponents": expo}
        one = serial_rows(a.out, "fp_scaling") if comm.size > 1 else None
        if one is not None:
            key = lambda r: (r["mesh"], r["kind"])                                    # noqa: E731
            base = {key(r): r for r in one}
            strong = [{"mesh": r["mesh"], "kind": r["kind"], "dofs": r["dofs"],
                       "speedup": base[key(r)]["seconds_per_step"] / r["seconds_per_step"]}
                      for r in rows if key(r) in base]
            it1 = [r for r in one if r["kind"] == "iterative" and r["dim"] == 2]
            it2 = [r for r in rows if r["kind"] == "iterative" and r["dim"] == 2]
            # weak: 1 rank at n dofs against 2 ranks at the size closest to 2n (within 5%)
            pairs = [(a1, min(it2, key=lambda r: abs(r["dofs"] / a1["dofs"] - 2.0))) for a1 in it1]
            weak = [{"dofs_per_rank": a1["dofs"], "dofs_2_ranks": a2["dofs"],
                     "efficiency": a1["seconds_per_step"] / a2["seconds_per_step"]}
                    for a1, a2 in pairs if abs(a2["dofs"] / a1["dofs"] - 2.0) < 0.1]
            result.update(strong=strong, weak=weak)
            for s_ in strong:
                print(f"strong: {s_['mesh']:<14} {s_['kind']:<10} {s_['dofs']:>9d} dofs: {s_['speedup']:.2f}x")
            for w in weak:
                print(f"weak:   {w['dofs_per_rank']:>9d} dofs on 1 rank, {w['dofs_2_ranks']:>9d} on 2: "
                      f"efficiency {w['efficiency']:.2f}")
        write_result(a.out, "fp_scaling", comm.size, result)


if __name__ == "__main__":
    main()
