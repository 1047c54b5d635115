"""Graphon flow and graphon McKean-Vlasov under `mpirun -n N` (test_graphon.py): prints 'RESULT {json}'."""

import json
import sys

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.samplers.graphon import GraphonObjective
from fpjko.solvers.graphon.flow import GraphonFlow
from fpjko.solvers.graphon.mckean_vlasov import GraphonMcKeanVlasov


def main():
    comm = MPI.COMM_WORLD
    R = GraphonObjective(edges=-1.0, triangles=1.0)
    F = GraphonFlow(meshes.unit_square(comm, 24), R, tau=0.2, degree=1)
    F.set_initial(lambda u, v: 0.5 - 0.2 * np.cos(np.pi * u) * np.cos(np.pi * v))
    F.run(2.0)
    M = GraphonMcKeanVlasov(meshes.unit_square(comm, 6), GraphonObjective(edges=-1.0, triangles=3.0, least_squares=0.5,
                                                                          target=lambda u, v: u * v),
                            dt=0.01, nx=41, sigma=0.5)
    M.set_initial(lambda u, v: 0.3 + 0.4 * u * v)
    M.run(0.5)
    flow, gamma, law = F.matrix(), M.gamma_matrix(), M.cell_law(2, 3)[1]          # collective
    # a law that is negative only on the cells near u = 1 (on one rank of two): every rank must raise
    try:
        M.set_initial(lambda u, v, x: np.where(u > 0.9, -1.0, 1.0) + 0 * x)
        fault = "no error"
    except ValueError as e:
        fault = str(e)
    faults = comm.allgather(fault)
    # one (u, v) cell: on two ranks one of them holds no cell and no law
    T = GraphonMcKeanVlasov(meshes.unit_square(comm, 1), GraphonObjective(edges=-1.0, triangles=1.0), dt=0.01, nx=41,
                            sigma=0.5)
    T.set_initial(lambda u, v: 0.4 + 0 * u)
    T.run(0.2)
    tiny = {"gamma": T.gamma_matrix().tolist(), "cells": comm.allgather(int(T.nc)),
            "mass_error": max(T.history["mass_error"])}
    if comm.rank == 0:
        print("RESULT " + json.dumps({"size": comm.size, "flow": flow.tolist(), "flow_hist": F.history,
                                      "gamma": gamma.tolist(), "law": law.tolist(),
                                      "mass_error": max(M.history["mass_error"]), "faults": faults,
                                      "tiny": tiny}), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
