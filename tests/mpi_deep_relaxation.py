"""Elastic-SGD with its replicas split across `mpirun -n N` ranks (test_deep_relaxation.py): prints 'RESULT {json}'."""

import json
import sys

import numpy as np
from mpi4py import MPI

from fpjko.samplers.deep_relaxation import elastic_sgd


def grad_f(y):
    return 4 * y * (y ** 2 - 1) + 0.3


def main():
    comm = MPI.COMM_WORLD
    out = {"size": comm.size}
    for K in (1, 3):               # K = 1 on two ranks: one rank holds no replica
        r = elastic_sgd(grad_f, [1.5], 0.5, 4.0, 0.05, 0.2, replicas=K, runs=4, seed=7, comm=comm, record_every=50)
        out[f"x{K}"] = r["x"].tolist()
        out[f"local{K}"] = comm.allgather(len(r["y"]))
    try:                           # a blow-up is found on every rank
        np.seterr(over="ignore", invalid="ignore")
        elastic_sgd(lambda y: 1e200 * y ** 3, [1.5], 0.5, 4.0, 0.05, 0.05, replicas=3, comm=comm)
        out["fault"] = "no error"
    except FloatingPointError as e:
        out["fault"] = str(e)
    out["faults"] = comm.allgather(out["fault"])
    if comm.rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
