"""Particle-steps per second: vectorised Euler-Maruyama vs a plain per-particle numpy loop.

2D double-well drift with a state-dependent diffusion matrix D(x) (a per-particle Cholesky factor
every step), 1e6 particles by default. The loop version does the same arithmetic particle by particle
with np.linalg.cholesky and is timed on a subset (its rate does not depend on n). Also times the
interacting-particle force: O(n) for quadratic W, chunked O(n^2) for a Gaussian W.

    python3 -m benchmarks.particles [--out results/benchmarks] [--n 1000000] [--quick]
    mpirun -n 2 python3 -m benchmarks.particles      (particles split across ranks)
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from mpi4py import MPI

from benchmarks import write_result
from fpjko.samplers.interacting import interaction_force
from fpjko.samplers.sde import euler_maruyama
from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.streams import Streams

BETA, DT = 3.0, 1e-3
C = np.array([[1.0, 0.3], [0.3, 0.6]])


def drift(x, t=0.0):
    return np.stack([-4 * x[:, 0] * (x[:, 0] ** 2 - 1), -x[:, 1]], axis=1)


def diffusion(x):
    return np.einsum("n,ij->nij", 1.0 + 0.5 * np.tanh(x[:, 0]), C)


def loop_steps(x, rng, steps):
    """The same scheme, one particle at a time."""
    scale = np.sqrt(2 * DT / BETA)
    for _ in range(steps):
        for i in range(len(x)):
            xi = x[i]
            b = np.array([-4 * xi[0] * (xi[0] ** 2 - 1), -xi[1]])
            L = np.linalg.cholesky((1.0 + 0.5 * np.tanh(xi[0])) * C)
            x[i] = xi + DT * b + scale * L @ rng.standard_normal(2)
    return x


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--loop-n", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="1e5 particles, 3 steps (CI smoke run)")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.steps, a.loop_n = 100_000, 3, 300
    comm = MPI.COMM_WORLD
    rows = []

    st = Streams(a.n, 1, comm=comm)
    x = st.sample(lambda g, m: g.standard_normal((m, 2)))
    euler_maruyama(x, drift, BETA, DT, 1, st, diffusion=diffusion)             # warm up
    comm.Barrier()
    t0 = time.perf_counter()
    euler_maruyama(x, drift, BETA, DT, a.steps, st, diffusion=diffusion)
    comm.Barrier()
    sec = time.perf_counter() - t0
    rows.append({"method": "vectorised EM, D(x) (fpjko.samplers.sde)", "particles": a.n, "steps": a.steps,
                 "seconds": sec, "particle_steps_per_s": a.n * a.steps / sec})
    t0 = time.perf_counter()
    euler_maruyama(x, drift, BETA, DT, a.steps, st)
    comm.Barrier()
    sec_const = time.perf_counter() - t0
    rows.append({"method": "vectorised EM, D = I", "particles": a.n, "steps": a.steps, "seconds": sec_const,
                 "particle_steps_per_s": a.n * a.steps / sec_const})

    if comm.rank == 0:
        xl = np.random.default_rng(0).standard_normal((a.loop_n, 2))
        t0 = time.perf_counter()
        loop_steps(xl, np.random.default_rng(1), 1)
        sec = time.perf_counter() - t0
        rows.append({"method": "plain numpy loop over particles, D(x)", "particles": a.loop_n, "steps": 1,
                     "seconds": sec, "particle_steps_per_s": a.loop_n / sec})

    for n_int, kind in ((a.n, "quadratic W, O(n)"), (min(a.n, 5000) // (5 if a.quick else 1), "Gaussian W, chunked O(n^2)")):
        si = Streams(n_int, 2, comm=comm)
        y = si.sample(lambda g, m: g.standard_normal((m, 2)))
        t0 = time.perf_counter()
        if kind.startswith("quadratic"):
            interaction_force(y, si, quadratic=1.0)
        else:
            interaction_force(y, si, grad_W=lambda z: z * np.exp(-np.sum(z * z, axis=-1, keepdims=True)))
        comm.Barrier()
        sec = time.perf_counter() - t0
        rows.append({"method": f"interaction force, {kind}", "particles": n_int, "steps": 1, "seconds": sec,
                     "particle_steps_per_s": n_int / sec})

    # the same Gaussian W by the particle mesh (256^2 grid, CIC): O(n + G log G), bitwise on any rank count
    sp = Streams(a.n, 2, comm=comm)
    y = np.clip(sp.sample(lambda g, m: g.standard_normal((m, 2))), -5.9, 5.9)
    pm = ParticleMesh(lambda z: z * np.exp(-np.sum(z * z, axis=-1, keepdims=True)), [-6, -6], [6, 6], 256)
    particle_mesh_force(y, sp, pm)                                                   # warm up
    comm.Barrier()
    t0 = time.perf_counter()
    particle_mesh_force(y, sp, pm)
    comm.Barrier()
    sec = time.perf_counter() - t0
    rows.append({"method": "interaction force, Gaussian W, particle mesh 256^2", "particles": a.n, "steps": 1,
                 "seconds": sec, "particle_steps_per_s": a.n / sec})

    if comm.rank == 0:
        vec = rows[0]["particle_steps_per_s"]
        loop = next(r for r in rows if r["method"].startswith("plain"))["particle_steps_per_s"]
        print(f"{'method':<44} {'particles':>10} {'steps':>6} {'seconds':>9} {'particle-steps/s':>17}")
        for r in rows:
            print(f"{r['method']:<44} {r['particles']:>10d} {r['steps']:>6d} {r['seconds']:>9.3f} "
                  f"{r['particle_steps_per_s']:>17.3e}")
        print(f"speed-up of the vectorised D(x) step over the loop: {vec / loop:.0f}x  ({comm.size} rank(s))")
        write_result(a.out, "particles", comm.size,
                     {"benchmark": "particles", "ranks": comm.size, "machine": platform.machine(),
                      "numpy": np.__version__, "rows": rows, "speedup_vectorised_vs_loop": vec / loop})


if __name__ == "__main__":
    main()
