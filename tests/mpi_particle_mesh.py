"""Particle-mesh forces under `mpirun -n N` (test_particle_mesh.py): prints 'RESULT {json}' with every force."""

import json
import sys

import numpy as np
from mpi4py import MPI

from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.streams import Streams

comm = MPI.COMM_WORLD
n = int(sys.argv[1])
st = Streams(n, 5, comm=comm, block=1000)
x = np.clip(st.sample(lambda g, m: 0.7 * g.standard_normal((m, 2))), -3.9, 3.9)
pm = ParticleMesh(lambda z: z * np.exp(-0.5 * np.sum(z * z, axis=-1))[..., None], [-4, -4], [4, 4], 64)
F = st.allgather(particle_mesh_force(x, st, pm))
if comm.rank == 0:
    print("RESULT " + json.dumps({"F": F.ravel().tolist()}), flush=True)
