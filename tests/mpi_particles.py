"""Particle paths run under `mpirun -n N` by test_particles_fe.py. Usage: mpi_particles.py OUTDIR.

Writes OUTDIR/particles-n<N>.npz (gathered particles of three samplers, FE histogram/projection at
probe points) and prints 'RESULT {json}' on rank 0."""

import json
import os
import sys

import dolfinx.fem
import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.samplers.interacting import mckean_vlasov
from fpjko.samplers.mean_field_nn import TeacherData, TwoLayerMeanField, continuous_time
from fpjko.samplers.sde import langevin
from fpjko.samplers.streams import Streams
from fpjko.solvers.particles import empirical
from fpjko.solvers.particles.evaluate import evaluate_on_points


def main(out):
    comm = MPI.COMM_WORLD
    s = Streams(5000, 17, block=512)
    x0 = s.sample(lambda g, m: g.standard_normal((m, 2)))
    D = lambda x: np.einsum("n,ij->nij", 1.0 + 0.5 * np.tanh(x[:, 0]), np.array([[1.0, 0.3], [0.3, 0.6]]))  # noqa: E731
    x_lv = langevin(x0, lambda x: x ** 3 - x, 4.0, 0.01, 50, s, diffusion=D)

    si = Streams(600, 3, block=64)
    y0 = si.sample(lambda g, m: g.standard_normal((m, 2)))
    gW = lambda z: z * np.exp(-np.sum(z * z, axis=-1, keepdims=True))                           # noqa: E731
    x_mv = mckean_vlasov(y0, si, beta=2.0, dt=0.01, steps=20, grad_V=lambda x: x, grad_W=gW)

    sn = Streams(500, 5, block=64)
    th0 = sn.sample(lambda g, m: 0.3 * g.standard_normal((m, 3)))
    net = TwoLayerMeanField(sn, lambda x: np.tanh(x @ np.array([1.0, -0.5, 0.3])))
    th = net.train(th0, 0.5, 1.0, 0.5, batch=4, data_seed=2)

    # the network on a finite data set: N = 100 neurons in one block, so rank 0 holds none under -n 2
    data = TeacherData.teacher(16, [[2.0, 1.0], [-1.0, 1.5]], seed=1)
    se = Streams(100, 8)
    e0 = se.sample(lambda g, m: 0.5 * g.standard_normal((m, 2)))
    th_ct = continuous_time(e0, se, data, 1.0, 0.2, 0.01, temperature=0.01)
    th_sgd = TwoLayerMeanField(se, data=data).train(e0, 0.5, 0.5, 0.5, data_seed=3)

    msh = meshes.rectangle(comm, [-4, -4], [4, 4], 0.25)
    h = empirical.histogram(msh, x_lv)
    V = dolfinx.fem.functionspace(msh, ("Lagrange", 1))
    u = empirical.project(V, x_lv)
    ul = empirical.project(V, x_lv, lumped=True)
    probes = np.zeros((50, 3))
    probes[:, :2] = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    res = {"hist_mass": empirical.integral(h), "proj_mass": empirical.integral(u),
           "lumped_mass": empirical.integral(ul), "size": comm.size, "local_neurons": comm.allgather(se.n_local)}
    arrays = dict(x_lv=s.allgather(x_lv), x_mv=si.allgather(x_mv), theta=sn.allgather(th),
                  theta_ct=se.allgather(th_ct), theta_sgd=se.allgather(th_sgd),
                  h=evaluate_on_points(h, probes), u=evaluate_on_points(u, probes))
    if comm.rank == 0:
        path = os.path.join(out, f"particles-n{comm.size}.npz")
        np.savez(path, **arrays)
        res["path"] = path
        print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
