"""The two-layer network under `mpirun -n N` (test_digits.py): prints 'RESULT {json}' with digests of the gathered
neurons after SGD (shared and independent samples), of a chaos pair and of the recorded accuracies."""

import hashlib
import json

import numpy as np
from mpi4py import MPI

from fpjko.model.chaos import train_snapshots
from fpjko.samplers import data as datasets
from fpjko.samplers.two_layer import TwoLayerNetwork

comm = MPI.COMM_WORLD
d = datasets.digits()


def digest(x):
    return hashlib.sha1(np.ascontiguousarray(x, float).tobytes()).hexdigest()


out = {}
for N, mode, batch in [(3000, "shared", 1), (3000, "shared", 7), (700, "shared", 1), (1500, "independent", 2)]:
    net = TwoLayerNetwork(N, 64, 10, "relu", "cross_entropy", seed=5, comm=comm)
    hist = net.sgd(d, 0.1, 0.75, 30, batch=batch, data_seed=2, mode=mode, record_every=10)
    out[f"{N}/{mode}/{batch}"] = [digest(net.streams.allgather(net.neurons())), hist["test_accuracy"]]
t = train_snapshots(d, [300, 1200], [0], 1.0, 0.1, steps=5, comm=comm, progress=False, outputs=10,
                    activation="relu", loss="cross_entropy")
out["pair"] = [digest(np.concatenate(t["pairs"][N, 0])) for N in (300, 1200)]
if comm.rank == 0:
    print("RESULT " + json.dumps(out), flush=True)
