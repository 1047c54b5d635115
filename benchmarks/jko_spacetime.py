"""The JKO step at large tau: NewtonJKO's default 'auto' (K pseudo-time steps, extrapolated in K) against its
one-pseudo-time-step scheme, on a problem whose JKO iterates are exact Gaussians.

[0, 1]^2, V = 125 |x - (0.6, 0.6)|^2, beta = 1, tau = 0.001, rho_0 = N((0.4, 0.4), 0.04^2 I): each step moves the bump
about 1.4 widths. Meshes: the N x N squares cut by their 'right' diagonals (meshes.rectangle, Delaunay: a 5-point
edge graph), and for comparison the N x N quadrilaterals of meshes.unit_square (Q1: a 9-point graph) and the N x N
squares cut by both diagonals ('crossed': N^2 more nodes at the centres; the graph is the 5-point one at spacing
h / sqrt(2), with the circumcentric control volumes h^2 / 2). Per grid and
mode: L1 to the exact iterate after step 1 and after the last step, the K that 'auto' chose, Newton iterations and
CPU seconds per step (one core; the first step's apart). A fixed K = 16 row at 128^2 gives the mesh's floor for
step 1 (the step's error with the pseudo-time error removed): what no K can go below at that h.

    python3 -m benchmarks.jko_spacetime [--out results/benchmarks] [--quick]
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
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


def run(N: int, mode, steps: int, mesh: str = "triangles") -> dict:
    comm = MPI.COMM_WORLD
    msh = (meshes.unit_square(comm, N) if mesh == "quadrilaterals" else
           meshes.rectangle(comm, [0, 0], [1, 1], 1 / N, diagonal="crossed" if mesh == "crossed" else "right"))
    J = NewtonJKO(msh, TAU, potential=lambda x: 0.5 * A * ((x[0] - C[0]) ** 2 + (x[1] - C[1]) ** 2), beta=1.0,
                  pseudo_steps=mode, max_pseudo_steps=16)
    J.set_initial(lambda x: gauss(x, M0, S0), normalize=True)
    m, s, errs, secs, Ks, its, conv = list(M0), S0, [], [], [], [], []
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for _ in range(steps):
        t0 = time.process_time()
        rec = J.step()
        secs.append(time.process_time() - t0)
        m, s = exact_step(m, s)
        errs.append(J.comm.allreduce(float(J.ml[: J.n] @ np.abs(J.rho.x.array[: J.n] - gauss(J.X.T, m, s)[: J.n]))))
        Ks.append(rec["pseudo_steps"])
        its.append(rec["iterations"])
        conv.append(bool(rec["converged"]))
    label = {1: "one step", "auto": f"auto (tol {J.pseudo_tol:g})"}.get(mode, f"K = {mode}")
    # the share of the nodes the first step's K-step was solved on (NewtonJKO._cut; None for one step)
    cut = None if mode == 1 else J.history["cut_nodes"][1] / J.V.dofmap.index_map.size_global
    row = {"grid": f"{N}^2", "mesh": mesh, "mode": label, "steps": steps, "l1_step1": errs[0], "l1_last": errs[-1],
           "K": Ks, "newton_iterations": its, "cut_fraction_step1": cut, "converged": all(conv),
           "cpu_s_step1": secs[0], "cpu_s_per_step": float(np.mean(secs)),
           # the CPU time's system share (process_time counts it): first touches of the factors' new memory, about
           # 3-5 s per GB on the machine these rows were measured on
           "sys_s_per_step": (resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0) / steps}
    J.close()
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--quick", action="store_true", help="24^2, 2 steps (CI smoke run)")
    a = p.parse_args(argv)
    plan = ([(24, 1, 2, "triangles"), (24, "auto", 2, "triangles")] if a.quick else
            [(N, mode, 10, "triangles") for N in (64, 128, 256) for mode in (1, "auto")]
            + [(128, "auto", 10, "quadrilaterals"), (128, "auto", 10, "crossed"), (128, 16, 1, "triangles")])
    rows = [run(N, mode, steps, mesh) for N, mode, steps, mesh in plan]
    if MPI.COMM_WORLD.rank == 0:
        print(f"{'grid':>6} {'mesh':<14} {'mode':<16} {'steps':>5} {'L1 step 1':>10} {'L1 last':>10} {'K':>12} "
              f"{'cut':>5} {'CPU s step 1':>12} {'CPU s/step':>11} {'of it sys':>9}")
        for r in rows:
            cut = "" if r["cut_fraction_step1"] is None else f"{r['cut_fraction_step1']:.2f}"
            print(f"{r['grid']:>6} {r['mesh']:<14} {r['mode']:<16} {r['steps']:>5d} {r['l1_step1']:>10.3e} "
                  f"{r['l1_last']:>10.3e} {str(sorted(set(r['K']))):>12} {cut:>5} {r['cpu_s_step1']:>12.2f} "
                  f"{r['cpu_s_per_step']:>11.3f} {r['sys_s_per_step']:>9.3f}")
        write_result(a.out, "jko_spacetime", 1, {"benchmark": "jko_spacetime", "machine": platform.machine(),
                                                 "numpy": np.__version__, "rows": rows})


if __name__ == "__main__":
    main()
