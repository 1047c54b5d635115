"""ALG2 JKO steps under `mpirun -n N` (test_jko.py): prints 'RESULT {json}' with the density."""

import json
import sys

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.solvers.jko.alg2 import JKOSolver


def main(interaction=None):
    s = JKOSolver(meshes.space_time(MPI.COMM_WORLD, [-5], [5], 0.1, 8), 0.1, potential=lambda x: 0.5 * x[0] ** 2, beta=1.0,
                  max_iter=1000, interaction=interaction)
    s.set_initial(lambda x: np.exp(-(x[0] - 1) ** 2 / 0.18) / np.sqrt(0.18 * np.pi))
    s.run(0.2)
    x, rho = s.density()
    if MPI.COMM_WORLD.rank == 0:
        print("RESULT " + json.dumps({"x": x[:, 0].tolist(), "rho": rho.tolist(), "its": s.history["iterations"],
                                      "mass": s.history["mass"], "F": s.history["energy"]}), flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else None)
    sys.exit(0)
