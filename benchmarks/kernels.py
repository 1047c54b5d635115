"""Kernels at scale (fpjko.kernels) on both sides: the FE field W * rho by FFT, a FokkerPlanckSolver step with a
general kernel, particle-mesh steps for a million particles, and the Random Batch Method's cost and bias.

1. FE pass: 2D P1 on the unit square, 1e4 ... 1e6 dofs, a Gaussian W(z) = exp(-|z|^2/0.5) and a Morse W(z) =
   -exp(-|z|/0.5) + 0.6 exp(-|z|/0.1) (a cusp at 0): seconds per pass (`state(rho)`, best of 3), the fitted time
   exponent, the relative error against the direct quadrature sum at 50 dofs, the pass's peak memory
   (tracemalloc). Targets: <= 0.5 s at 1e6 dofs, exponent <= 1.15, error <= 1e-6.
2. FokkerPlanckSolver (BDF2, P1, 262k dofs) with the Gaussian kernel, explicit and semi-implicit, against the same
   step without interaction. Target: explicit within 2x.
3. Particles, 2D, a Gaussian W: a whole interacting step (Euler-Maruyama + the particle-mesh force, 256^2 CIC) at
   n = 1e6, the force's relative RMS error against the direct sum (at 3000 particles of the same law); the Random
   Batch force's cost per step for p = 2, 4, 8. Target: >= 1e7 particle-steps/s.
4. The Random Batch Method's bias: the aggregation model of demos/aggregation.py, n = 1e5, p = 2 and 8, sliced W2
   to the PDE at t = 1 against dt (the particle mesh at the same dt beside it).

Under mpirun the same rows are timed on every rank count; the JSON of a serial run beside it gives the speedups.

    python3 -m benchmarks.kernels [--out results/benchmarks] [--quick]
    mpirun -n 2 python3 -m benchmarks.kernels
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc

import dolfinx
import numpy as np
from mpi4py import MPI

from benchmarks import write_result
from fpjko.kernels import have_numba
from fpjko.metrics.study import fitted_slope
from fpjko.samplers.interacting import interaction_force
from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.random_batch import RandomBatch
from fpjko.samplers.sde import euler_maruyama
from fpjko.samplers.streams import Streams
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.fokker_planck.interaction import KernelInteraction, kernel_sum


def gauss(z):
    return np.exp(-np.sum(z * z, axis=-1) / 0.5)


def morse(z):
    r = np.sqrt(np.sum(z * z, axis=-1))
    return -np.exp(-r / 0.5) + 0.6 * np.exp(-r / 0.1)


def gauss_grad(z):
    return z * np.exp(-0.5 * np.sum(z * z, axis=-1))[..., None]


def best(comm, fn, repeat=3):
    t = np.inf
    for _ in range(repeat):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        comm.Barrier()
        t = min(t, time.perf_counter() - t0)
    return t


def fe_pass(comm, sizes):
    rows = []
    for n in sizes:
        mesh = dolfinx.mesh.create_unit_square(comm, n, n)
        V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1))
        rho = dolfinx.fem.Function(V)
        rho.interpolate(lambda x: 1 + 0.5 * np.sin(3 * x[0]) * np.cos(2 * x[1]))
        for name, W in (("gaussian", gauss), ("morse", morse)):
            t0 = time.perf_counter()
            ki = KernelInteraction(W).bind(V)
            bind = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            psi = ki.state(rho)
            sec = best(comm, lambda: ki.state(rho))
            tracemalloc.start()
            ki.state(rho)
            peak = comm.allreduce(tracemalloc.get_traced_memory()[1], op=MPI.MAX)
            tracemalloc.stop()
            # the direct quadrature sum at 50 of the owned dofs of each rank (all sources, gathered)
            sub = np.linspace(0, len(psi) - 1, 50).astype(int) if len(psi) else np.zeros(0, int)
            src = np.concatenate(comm.allgather(ki._src.points))
            m = np.concatenate(comm.allgather(ki._src.density(rho)))
            ref = kernel_sum(ki._targets[sub], src, m, W)
            err = comm.allreduce(float(np.max(np.abs(psi[sub] - ref))) if len(sub) else 0.0, op=MPI.MAX)
            scale = comm.allreduce(float(np.max(np.abs(ref))) if len(sub) else 0.0, op=MPI.MAX)
            rows.append({"kernel": name, "dofs": V.dofmap.index_map.size_global, "grid": list(ki.grid.shape),
                         "fft": list(ki.grid.padded), "bind_s": bind, "pass_s": sec, "rel_error": err / scale,
                         "peak_MB_per_rank": peak / 2**20})
    return rows


def fp_step(comm, n, steps):
    mesh = dolfinx.mesh.create_rectangle(comm, [[-3, -3], [3, 3]], [n, n])
    out = {}
    for label, kw in (("none", {}),
                      ("explicit", {"interaction": KernelInteraction(lambda z: -np.exp(-0.5 * np.sum(z * z, -1))),
                                    "interaction_scheme": "explicit"}),
                      ("semi-implicit", {"interaction": KernelInteraction(lambda z: -np.exp(-0.5 * np.sum(z * z, -1))),
                                         "interaction_scheme": "semi-implicit"})):
        s = FokkerPlanckSolver(mesh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=2.0, dt=0.01, **kw)
        s.set_initial(lambda x: np.exp(-((x[0] - 0.5) ** 2 + x[1] ** 2) / 0.6), normalize=True)
        s.step()
        s.step()
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            s.step()
        comm.Barrier()
        out[label] = (time.perf_counter() - t0) / steps
        dofs = s.num_dofs
        s.close()
    return {"dofs": dofs, "step_s": out, "explicit_over_none": out["explicit"] / out["none"],
            "semi_implicit_over_none": out["semi-implicit"] / out["none"]}


def particles(comm, n, steps):
    st = Streams(n, 2, comm=comm)
    x = np.clip(st.sample(lambda g, m: g.standard_normal((m, 2))), -5.9, 5.9)
    pm = ParticleMesh(gauss_grad, [-6, -6], [6, 6], 256)
    drift = lambda y, t: -y + particle_mesh_force(np.clip(y, -5.9, 5.9), st, pm)       # noqa: E731
    euler_maruyama(x, drift, 1.0, 0.01, 1, st)                                            # warm up (numba)
    sec = best(comm, lambda: euler_maruyama(x, drift, 1.0, 0.01, steps, st), repeat=2) / steps
    force = best(comm, lambda: particle_mesh_force(x, st, pm))
    # the force's error against the direct sum, on 3000 particles of the same law
    sm = Streams(3000, 3, comm=comm)
    y = np.clip(sm.sample(lambda g, m: g.standard_normal((m, 2))), -5.9, 5.9)
    F, G = particle_mesh_force(y, sm, pm), interaction_force(y, sm, grad_W=gauss_grad)
    num = comm.allreduce(float(np.sum((F - G) ** 2)), op=MPI.SUM)
    den = comm.allreduce(float(np.sum(G ** 2)), op=MPI.SUM)
    rows = {"n": n, "step_s": sec, "particle_steps_per_s": n / sec, "force_s": force,
            "force_rel_rms_error": float(np.sqrt(num / den)), "rbm": []}
    for p in (2, 4, 8):
        rb = RandomBatch(st, gauss_grad, p)
        rows["rbm"].append({"p": p, "force_s": best(comm, lambda: rb.force(x))})
    return rows


def rbm_bias(comm, n, dts, quick):
    from fpjko.demos.aggregation import model
    from fpjko.model.study import DensityReference

    m = model()
    fe = m.fokker_planck(m.mesh(comm, 0.05), dt=0.02, degree=2)
    fe.run(1.0)
    ref = DensityReference(fe, 2, 64, 1, domain=m.domain)
    rows = []
    for dt in dts:
        row = {"dt": dt}
        for label, kw in (("rbm_p2", {"force": "rbm", "batch": 2}), ("rbm_p8", {"force": "rbm", "batch": 8}),
                          ("mesh", {"force": "mesh"})):
            t0 = time.perf_counter()
            st, x = m.particles(n, 5, comm=comm, dt=dt, t_end=1.0, **kw)
            row[label + "_s"] = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            row[label] = ref.distances(st.allgather(x))["sliced W2"]
        rows.append(row)
    fe.close()
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/benchmarks")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    a = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    sizes = [100, 316] if a.quick else [100, 316, 1000]
    fe = fe_pass(comm, sizes)
    fp = fp_step(comm, 128 if a.quick else 511, 3 if a.quick else 5)
    pa = particles(comm, 100_000 if a.quick else 1_000_000, 3 if a.quick else 5)
    rb = rbm_bias(comm, 20_000 if a.quick else 100_000, [0.1, 0.05] if a.quick else [0.1, 0.05, 0.025, 0.0125], a.quick)
    expo = {k: fitted_slope([r["dofs"] for r in fe if r["kernel"] == k], [r["pass_s"] for r in fe if r["kernel"] == k])
            for k in ("gaussian", "morse")}
    if comm.rank:
        return
    print(f"FE pass W * rho by FFT (P1, unit square, {comm.size} rank(s), numba {have_numba()})")
    print(f"{'kernel':<9} {'dofs':>9} {'grid':>11} {'FFT':>11} {'bind s':>8} {'pass s':>8} {'rel err':>9} {'peak MB':>8}")
    for r in fe:
        print(f"{r['kernel']:<9} {r['dofs']:>9d} {'x'.join(map(str, r['grid'])):>11} {'x'.join(map(str, r['fft'])):>11} "
              f"{r['bind_s']:>8.3f} {r['pass_s']:>8.4f} {r['rel_error']:>9.2e} {r['peak_MB_per_rank']:>8.1f}")
    print("time exponent (1e4 -> 1e6 dofs): " + ", ".join(f"{k} {v:.2f}" for k, v in expo.items()))
    print(f"FokkerPlanckSolver step at {fp['dofs']} dofs: " + ", ".join(f"{k} {v:.3f} s" for k, v in fp["step_s"].items())
          + f"; explicit / none {fp['explicit_over_none']:.2f}, semi-implicit / none {fp['semi_implicit_over_none']:.2f}")
    print(f"particles n = {pa['n']}: EM + particle-mesh step {pa['step_s']:.3f} s = {pa['particle_steps_per_s']:.3g} "
          f"particle-steps/s (force {pa['force_s']:.3f} s, rel RMS error {pa['force_rel_rms_error']:.2e}); "
          + ", ".join(f"RBM p={r['p']} force {r['force_s']:.3f} s" for r in pa["rbm"]))
    print(f"{'dt':>8} {'RBM p=2':>9} {'s':>6} {'RBM p=8':>9} {'s':>6} {'mesh':>9} {'s':>6}   (sliced W2 to the PDE, t = 1)")
    for r in rb:
        print(f"{r['dt']:>8g} {r['rbm_p2']:>9.4f} {r['rbm_p2_s']:>6.1f} {r['rbm_p8']:>9.4f} {r['rbm_p8_s']:>6.1f} "
              f"{r['mesh']:>9.4f} {r['mesh_s']:>6.1f}")
    result = {"benchmark": "kernels", "ranks": comm.size, "machine": platform.machine(), "numba": have_numba(),
              "fe_pass": fe, "time_exponent": expo, "fp_step": fp, "particles": pa, "rbm_bias": rb}
    path = os.path.join(a.out, "kernels-n1.json")
    serial = json.load(open(path)) if comm.size > 1 and os.path.exists(path) else None
    if serial:
        pairs = zip(serial["fe_pass"], fe)
        result["speedup_vs_serial"] = [{"kernel": r["kernel"], "dofs": r["dofs"], "speedup": s["pass_s"] / r["pass_s"]}
                                       for s, r in pairs]
        for r in result["speedup_vs_serial"]:
            print(f"speedup of the pass on {comm.size} ranks: {r['kernel']} {r['dofs']} dofs {r['speedup']:.2f}x")
    write_result(a.out, "kernels", comm.size, result)


if __name__ == "__main__":
    main()
