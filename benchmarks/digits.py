"""SGD on a wide two-layer network (fpjko.samplers.two_layer) on the digits: seconds per step, and the time of the
propagation-of-chaos table.

Per step: N = 16000 neurons, 64 inputs, 10 outputs, relu, cross-entropy, batch 1 (target: at most 2 ms on one core;
a plain numpy loop of per-sample outer products, the reference here, about 14 ms), also batch 100; under mpirun the
neurons are split over the ranks. The table: for beta = 0.5, 0.75, 1 (and 1 on the same data) pairs of runs to the
mean-field time T = 10 at gamma = 0.1 for N = 250 ... 16000 and three seeds, and their fitted slopes (target: within
30 minutes on 2 cores).

    python3 -m benchmarks.digits [--out results/benchmarks] [--quick]
    mpirun -n 2 python3 -m benchmarks.digits
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from mpi4py import MPI

from benchmarks import write_result
from fpjko.model.chaos import chaos_study, train_snapshots
from fpjko.samplers import data as datasets
from fpjko.samplers.two_layer import TwoLayerNetwork


def loop_step(U, A, c, x, y, h):
    """The same SGD step written plainly: forward, softmax, the per-sample outer products."""
    z = U @ x + c
    H = np.maximum(z, 0)
    F = H @ A / len(U)
    P = np.exp(F - F.max())
    P /= P.sum()
    P[y] -= 1.0
    S = (A @ P) * (z > 0)
    A -= h * np.outer(H, P)
    U -= h * np.outer(S, x)
    c -= h * S


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--N", type=int, default=16000)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="N = 2000, 50 steps, a two-width table (CI smoke run)")
    a = p.parse_args(argv)
    if a.quick:
        a.N, a.steps = 2000, 50
    comm = MPI.COMM_WORLD
    d = datasets.digits()
    rows = []
    for batch in (1, 100):
        net = TwoLayerNetwork(a.N, d.p, 10, "relu", "cross_entropy", seed=1, comm=comm)
        net.sgd(d, 0.1, 1.0, 5, batch=batch, record_every=10**9)                    # warm up
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            idx = np.random.default_rng(len(rows)).integers(0, len(d.X_train), batch)
            net._shared_step(d.X_train[idx], d.y_train[idx], 0.1)
        comm.Barrier()
        rows.append({"method": f"TwoLayerNetwork SGD step, batch {batch}", "N": a.N, "batch": batch,
                     "ms_per_step": 1e3 * (time.perf_counter() - t0) / a.steps})
    if comm.rank == 0:
        rng = np.random.default_rng(0)
        U, A, c = rng.standard_normal((a.N, 64)) / 8, rng.standard_normal((a.N, 10)), np.zeros(a.N)
        t0 = time.perf_counter()
        for k in range(min(a.steps, 100)):
            loop_step(U, A, c, d.X_train[k], d.y_train[k], 0.1)
        rows.append({"method": "plain numpy step (outer products), batch 1", "N": a.N, "batch": 1,
                     "ms_per_step": 1e3 * (time.perf_counter() - t0) / min(a.steps, 100)})
    ns, seeds, T = ([250, 500], 2, 2.0) if a.quick else ([250, 1000, 4000, 16000], 3, 10.0)
    table, t0 = [], time.perf_counter()
    for label, b, same in [("b = 0.5", 0.5, False), ("b = 0.75", 0.75, False), ("b = 1", 1.0, False),
                           ("b = 1, same data", 1.0, True)]:
        t1 = time.perf_counter()
        runs = train_snapshots(d, ns, range(seeds), b, 0.1, T=T, same_data=same, comm=comm, progress=False,
                               outputs=10, activation="relu", loss="cross_entropy")
        r = chaos_study(runs["pairs"], names=runs["names"], label=label, echo=False, comm=comm)
        m = r["metrics"]["sliced W2"]
        table.append({"label": label, "ns": ns, "sliced_w2": m["mean"], "slope": m["slope"],
                      "interval": m["interval"], "seconds": time.perf_counter() - t1})
    total = time.perf_counter() - t0
    if comm.rank == 0:
        print(f"{'method':<46} {'N':>6} {'ms/step':>9}")
        for r in rows:
            print(f"{r['method']:<46} {r['N']:>6d} {r['ms_per_step']:>9.3f}")
        print(f"chaos table (T = {T:g}, gamma = 0.1, seeds {seeds}, N = {ns}), {comm.size} rank(s): {total:.1f} s")
        for r in table:
            print(f"  {r['label']:<18} sliced W2 {np.round(r['sliced_w2'], 4).tolist()} slope {r['slope']:.3f} "
                  f"[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}] ({r['seconds']:.1f} s)")
        write_result(a.out, "digits", comm.size, {"benchmark": "digits", "ranks": comm.size,
                                                  "machine": platform.machine(), "numpy": np.__version__,
                                                  "rows": rows, "chaos_table": table, "chaos_seconds": total})


if __name__ == "__main__":
    main()
