"""Random Batch forces under `mpirun -n N` (test_random_batch.py): prints 'RESULT {json}' with three draws of every
particle's force for each case n/block/p."""

import json

import numpy as np
from mpi4py import MPI

from fpjko.samplers.random_batch import RandomBatch
from fpjko.samplers.streams import Streams

comm = MPI.COMM_WORLD
out = {}
for n, block, p in ((5000, 1000, 3), (37, 12, 2), (700, 1000, 3)):
    st = Streams(n, 5, comm=comm, block=block)
    x = st.sample(lambda g, m: 0.7 * g.standard_normal((m, 2)))
    rb = RandomBatch(st, lambda z: z * np.exp(-0.5 * np.sum(z * z, axis=-1))[..., None], p)
    R = np.concatenate([st.allgather(rb.force(x)) for _ in range(3)])       # three draws: the stream advances
    out[f"{n}/{block}/{p}"] = R.ravel().tolist()
if comm.rank == 0:
    print("RESULT " + json.dumps(out), flush=True)
