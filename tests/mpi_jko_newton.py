"""NewtonJKO steps under `mpirun -n N` (test_jko_newton.py): prints 'RESULT {json}'.

Cases (NewtonJKO's default pseudo_steps='auto'): ou2d (rectangle, 3 steps), porous (1D, m = 2, interior-point
path), kernel (1D, a general W by the gathered double sum: W * rho a fixed point over the K-step), empty_rank (2D,
every cell on rank 0), spacetime (2D, a bump moved 1.4 widths per step), disk (2D, the Delaunay disk: its
circumcentric control volumes, graph.control_volumes, from each rank's rows)."""

import json
import math
import sys

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.solvers.jko.newton import NewtonJKO


def gauss2(x, m, s):
    return np.exp(-((x[0] - m[0]) ** 2 + (x[1] - m[1]) ** 2) / (2 * s * s)) / (2 * math.pi * s * s)


def main(case):
    comm = MPI.COMM_WORLD
    if case in ("ou2d", "empty_rank"):
        if case == "empty_rank":
            import dolfinx.mesh

            from mpi_cases import all_cells_on_rank_0
            msh = dolfinx.mesh.create_rectangle(comm, [[-4, -4], [4, 4]], [40, 40],
                                                partitioner=lambda c, n, t, cells: all_cells_on_rank_0(c, t, cells))
        else:
            msh = meshes.rectangle(comm, [-4, -4], [4, 4], 0.2)
        s = NewtonJKO(msh, 0.1, potential=lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=1.0)
        s.set_initial(lambda x: gauss2(x, (1.0, 0.5), 0.6), normalize=True)
        steps = 3
    elif case == "disk":
        s = NewtonJKO(meshes.disk(comm, 4.0, 0.2), 0.1, potential=lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=1.0)
        s.set_initial(lambda x: gauss2(x, (1.0, 0.5), 0.6), normalize=True)
        steps = 3
    elif case == "porous":
        s = NewtonJKO(meshes.interval(comm, -3, 3, 0.05), 0.05, m=2.0)
        s.set_initial(lambda x: np.maximum(0.3 - x[0] ** 2 / 12, 0), normalize=True)
        steps = 3
    elif case == "kernel":
        s = NewtonJKO(meshes.interval(comm, -3, 3, 0.05), 0.1, potential=lambda x: 0.25 * x[0] ** 4, beta=2.0,
                      interaction=lambda z: 1.0 - np.exp(-z[..., 0] ** 2))
        s.set_initial(lambda x: np.exp(-(x[0] - 1) ** 2 / 0.5), normalize=True)
        steps = 3
    elif case == "spacetime":
        msh = meshes.rectangle(comm, [0, 0], [1, 1], 1 / 24)
        s = NewtonJKO(msh, 0.002, potential=lambda x: 125 * ((x[0] - 0.6) ** 2 + (x[1] - 0.6) ** 2), beta=1.0,
                      pseudo_steps="auto", pseudo_tol=3e-3)
        s.set_initial(lambda x: gauss2(x, (0.4, 0.4), 0.06), normalize=True)
        steps = 2
    else:
        raise SystemExit(f"unknown case {case}")
    for _ in range(steps):
        s.step()
    x, rho = s.density()
    if comm.rank == 0:
        print("RESULT " + json.dumps({"x": x.tolist(), "rho": rho.tolist(), "size": comm.size,
                                      "K": s.history["pseudo_steps"],
                                      **{k: s.history[k] for k in ("iterations", "mass", "energy",
                                                                   "converged", "residual")}}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
    sys.exit(0)
