"""Time to reach a given L2 error at t = 1 on 2D Ornstein-Uhlenbeck: FE (this package) vs plain FD.

f = x^T A x / 2 with A = [[1, .6], [.6, 2]], beta = 2, rho_0 = N((1, -.5), .2 I), domain [-5, 5]^2.
For each method a sequence of refinements (dt tied to h so time and space errors shrink together)
is timed end to end (assembly, factorisation, all steps; JIT caches warmed first). The table
lists dofs, steps, total KSP iterations, seconds and the relative L2 error against the exact
Gaussian; the summary gives, per method, the fastest run reaching each target error.

    python3 -m benchmarks.ou_vs_fd [--out results/benchmarks] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from benchmarks.fd_reference import FiniteDifferenceFP
from fpjko.references.gaussian import gaussian_density, ou_law
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.core.exact import ou_solution_ufl, quadratic_potential

A = np.array([[1.0, 0.6], [0.6, 2.0]])
BETA, M0, S0, T, L = 2.0, [1.0, -0.5], 0.2 * np.eye(2), 1.0, 5.0
TARGETS = (5e-3, 1e-3, 2e-4)


def fe_run(h, degree, dt, scheme, method="galerkin", petsc_options=None):
    t0 = time.perf_counter()
    msh = meshes.rectangle(MPI.COMM_WORLD, [-L, -L], [L, L], h)
    s = FokkerPlanckSolver(msh, quadratic_potential(A), beta=BETA, degree=degree, dt=dt, scheme=scheme,
                           method=method, petsc_options=petsc_options, prefix="bench_")
    s.set_initial(lambda x: gaussian_density(x, M0, S0))
    s.run(T)
    sec = time.perf_counter() - t0
    ex = ou_solution_ufl(A, BETA, M0, S0, s.t)
    err = s.l2_error(ex) / s.l2_norm(ex)
    return {"dofs": s.num_dofs, "steps": s.steps, "ksp_its": int(sum(s.history["iterations"])),
            "seconds": sec, "error": err, "h": h, "dt": dt}


def fd_run(n, dt):
    t0 = time.perf_counter()
    fd = FiniteDifferenceFP(lambda x, y: 0.5 * (A[0, 0] * x * x + 2 * A[0, 1] * x * y + A[1, 1] * y * y),
                            BETA, [-L, -L], [L, L], n)
    pts = np.vstack([g.ravel() for g in fd.grid])
    p0 = gaussian_density(pts, M0, S0).reshape(fd.shape)
    p, info = fd.solve(p0, T, dt)
    sec = time.perf_counter() - t0
    ex = gaussian_density(pts, *ou_law(A, BETA, M0, S0, T)).reshape(fd.shape)
    err = float(np.sqrt(np.sum((p - ex) ** 2) / np.sum(ex**2)))
    return {"dofs": n * n, "steps": info["steps"], "ksp_its": info["steps"], "seconds": sec,
            "error": err, "h": 2 * L / n, "dt": dt}


def studies(quick: bool):
    lv = 3 if quick else 4
    amg = {"ksp_type": "gmres", "pc_type": "hypre", "ksp_rtol": 1e-10, "ksp_atol": 0.0}
    return {
        "FE P1 BDF2 (LU)": [lambda h=0.4 / 2**k: fe_run(h, 1, h / 4, "bdf2") for k in range(lv)],
        "FE P2 BDF2 (LU)": [lambda h=0.8 / 2**k: fe_run(h, 2, h / 8, "bdf2") for k in range(lv)],
        "FE P2 BDF2 (GMRES+AMG)": [lambda h=0.8 / 2**k: fe_run(h, 2, h / 8, "bdf2", petsc_options=amg)
                                   for k in range(lv)],
        "FE P1 SG (LU)": [lambda h=0.4 / 2**k: fe_run(h, 1, h * h / 2, "backward_euler", "sg")
                          for k in range(lv - 1)],
        "FD SQRA CN (splu)": [lambda n=25 * 2**k: fd_run(n, 10.0 / n / 4) for k in range(lv)],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--quick", action="store_true", help="fewer refinements (for smoke tests)")
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    fe_run(1.0, 2, 0.5, "bdf2"), fe_run(1.0, 1, 0.5, "backward_euler", "sg")   # warm the JIT caches
    rows = []
    for name, runs in studies(a.quick).items():
        for run in runs:
            r = run()
            r["method"] = name
            rows.append(r)
            if comm.rank == 0:
                print(f"{name:24s} dofs={r['dofs']:7d} steps={r['steps']:5d} its={r['ksp_its']:6d} "
                      f"s={r['seconds']:8.3f} err={r['error']:.3e}", flush=True)
    summary = []
    for name in studies(True):
        for target in TARGETS:
            ok = [r for r in rows if r["method"] == name and r["error"] <= target]
            best = min(ok, key=lambda r: r["seconds"]) if ok else None
            summary.append({"method": name, "target": target,
                            "seconds": best["seconds"] if best else None, "dofs": best["dofs"] if best else None})
    if comm.rank == 0:
        print(f"\n{'method':24s} " + " ".join(f"{'err<=' + format(t, '.0e'):>16s}" for t in TARGETS))
        for name in studies(True):
            cells = []
            for s in (x for x in summary if x["method"] == name):
                cells.append(f"{s['seconds']:7.2f}s/{s['dofs']:<7d}" if s["seconds"] is not None else f"{'not reached':>16s}")
            print(f"{name:24s} " + " ".join(f"{c:>16s}" for c in cells))
        os.makedirs(a.out, exist_ok=True)
        path = os.path.join(a.out, "ou_vs_fd.json")
        with open(path, "w") as fh:
            json.dump({"benchmark": "ou_vs_fd", "ranks": comm.size, "machine": platform.machine(),
                       "cpus": os.cpu_count(), "rows": rows, "time_to_error": summary}, fh, indent=1)
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
