"""LocalEntropy and ViscousHJ under `mpirun -n N` (test_local_entropy.py): prints 'RESULT {json}'.

argv[1]: 'split' (the usual partition) or 'empty' (every cell on rank 0, the other ranks hold none)."""

import json
import sys

import dolfinx.mesh
import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.solvers.hamilton_jacobi.cole_hopf import LocalEntropy
from fpjko.solvers.hamilton_jacobi.viscous import ViscousHJ


def f(x):
    return 0.5 * np.cos(3 * x[0]) + 0.1 * x[0] ** 2 + 0.5 * x[1] ** 2


def main(kind):
    comm = MPI.COMM_WORLD
    if kind == "empty":
        msh = dolfinx.mesh.create_rectangle(
            comm, [[-2.5, -2.5], [2.5, 2.5]], [40, 40],
            partitioner=lambda c, n, t, cells: __import__("dolfinx.graph").graph.adjacencylist(
                np.zeros(sum(len(x) for x in cells) // 3, dtype=np.int32)))
    else:
        msh = meshes.rectangle(comm, [-2.5, -2.5], [2.5, 2.5], 0.125)
    pts = np.array([[x + 0.0123, y + 0.0071, 0.0] for x in np.linspace(-1.5, 1.5, 7) for y in (-0.7, 0.0, 0.4)])   # off the edges: the gradient jumps there
    le = LocalEntropy(msh, f, 4.0)
    le.solve(0.3, 10)
    hj = ViscousHJ(msh, f, 4.0)
    hj.solve(0.3, 10)
    out = {"size": comm.size, "cole_hopf": le.values(pts).tolist(), "gradient": le.gradient(pts).tolist(),
           "direct": np.asarray(__import__("solvers").evaluate_on_points(hj.u, pts)).tolist(),
           "newton": hj.history["iterations"], "local_dofs": comm.allgather(int(le.n))}
    try:                            # NaN in f on the part of the domain x > 2 (one rank's cells, or rank 0's)
        LocalEntropy(msh, lambda x: np.where(x[0] > 2.0, np.nan, f(x)), 4.0)
        out["fault"] = "no error"
    except ValueError as e:
        out["fault"] = str(e)
    out["faults"] = comm.allgather(out["fault"])
    if comm.rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
    sys.exit(0)
