"""The front door's costs: the particles' force per step against n (direct sum against the particle mesh: where
force='auto' switches), and a newcomer's first study from a TOML file end to end (`fpjko validate`), with its time.

The newcomer's study: V a 2D double well, W = -exp(-|z|^2/2), beta = 2, ns = [200, 800, 3200], 3 seeds, t = 0.5
(500 particle steps per run; the FE PDE on h = 0.125 and h/2, P2). Target: under 2 minutes on one core, progress
shown (it printed the model and then nothing for 15 minutes with the direct force before force='auto').

    python3 -m benchmarks.front_door [--out results/benchmarks] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from mpi4py import MPI

from benchmarks import write_result
from fpjko.model import Model
from fpjko.model.solvers import AUTO_MESH_N

NEWCOMER = '''name = "newcomer"
d = 2
beta = 2.0
V = "(x**2 - 1)**2 + 0.5*y**2"
W = "-exp(-(z0**2 + z1**2)/2)"
domain = [[-2.5, -2.5], [2.5, 2.5]]
[initial]
mean = [0.0, 0.0]
cov = 0.2
[study]
ns = [200, 800, 3200]
repeats = 3
t = 0.5
'''
MODELS = {1: dict(d=1, V="0.5*x**2", W="-exp(-z**2/2)", domain=([-4.0], [4.0])),
          2: dict(d=2, V="(x**2 - 1)**2 + 0.5*y**2", W="-exp(-(z0**2 + z1**2)/2)", domain=([-2.5, -2.5], [2.5, 2.5])),
          3: dict(d=3, V="0.5*(x**2 + y**2 + z**2)", W="-exp(-(z0**2 + z1**2 + z2**2)/2)",
                  domain=([-4.0] * 3, [4.0] * 3))}


def step_seconds(m, n: int, force: str, steps: int) -> float:
    m.particles(n, 0, dt=1e-3, t_end=1e-3, force=force, comm=MPI.COMM_SELF)      # warm up (grid, numba)
    t0 = time.perf_counter()
    m.particles(n, 0, dt=1e-3, t_end=steps * 1e-3, force=force, comm=MPI.COMM_SELF)
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--quick", action="store_true", help="fewer sizes and steps, no newcomer study (CI smoke run)")
    a = p.parse_args(argv)
    steps = 3 if a.quick else 10
    rows = []
    for d, kw in MODELS.items():
        m = Model(**kw, beta=2.0, initial={"mean": [0.0] * d, "cov": 0.2}, comm=MPI.COMM_SELF)
        sizes = [AUTO_MESH_N[d] // 4, AUTO_MESH_N[d], 4 * AUTO_MESH_N[d]] if not a.quick else [AUTO_MESH_N[d] // 4]
        for n in sizes:
            row = {"d": d, "n": n, "auto": m.choose_force("auto", n)}
            for force in ("direct", "mesh"):
                row[force] = step_seconds(m, n, force, steps)
            rows.append(row)
    study = None
    if not a.quick:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "newcomer.toml")
            with open(path, "w") as fh:
                fh.write(NEWCOMER)
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "fpjko.cli", "validate", path, "--no-plot", "--out",
                                os.path.join(tmp, "out")], capture_output=True, text=True)
            sec = time.perf_counter() - t0
            progress = [ln for ln in r.stderr.splitlines() if ln.startswith("validate: [")]
            slope = next((ln for ln in r.stdout.splitlines() if ln.startswith("sliced W2: slope")), "")
            study = {"seconds": sec, "returncode": r.returncode, "progress_lines": len(progress),
                     "sliced_w2": slope, "target_seconds": 120.0}
    if MPI.COMM_WORLD.rank == 0:
        print(f"{'d':>2} {'n':>7} {'direct s/step':>14} {'mesh s/step':>12} {'auto':>7}")
        for r in rows:
            print(f"{r['d']:>2} {r['n']:>7d} {r['direct']:>14.4g} {r['mesh']:>12.4g} {r['auto']:>7}")
        if study:
            print(f"newcomer's study (fpjko validate, 9 runs + 2 PDE solves): {study['seconds']:.1f} s "
                  f"(target 120 s), {study['progress_lines']} progress lines, exit {study['returncode']}; "
                  f"{study['sliced_w2']}")
        write_result(a.out, "front_door", 1, {"benchmark": "front_door", "machine": platform.machine(),
                                              "numpy": np.__version__, "auto_mesh_n": AUTO_MESH_N, "rows": rows,
                                              "newcomer": study})


if __name__ == "__main__":
    main()
