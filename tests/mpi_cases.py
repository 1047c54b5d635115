"""Cases run under `mpirun -n N` by test_mpi.py. Usage: mpi_cases.py CASE OUTDIR.

Each case writes OUTDIR/<case>-n<N>.npz with the solution gathered in dof-coordinate order plus the
history, and prints 'RESULT {json}' on rank 0.
"""

import json
import os
import sys

import numpy as np
from mpi4py import MPI

import meshes
from samplers.gaussian import gaussian_density
from solvers import FokkerPlanckSolver
from solvers.io.checkpoint import Checkpointer, resume
from solvers.core.exact import ou_solution_ufl, quadratic_potential

A = np.array([[1.0, 0.6], [0.6, 2.0]])


def ou(method="galerkin", degree=2, scheme="bdf2", petsc_options=None):
    msh = meshes.rectangle(MPI.COMM_WORLD, [-5, -5], [5, 5], 0.25)
    s = FokkerPlanckSolver(msh, quadratic_potential(A), beta=2.0, degree=degree, dt=0.02, scheme=scheme,
                           method=method, petsc_options=petsc_options)
    s.set_initial(lambda x: gaussian_density(x, [1.0, -0.5], 0.2 * np.eye(2)))
    return s


def double_well_disk():
    msh = meshes.disk(MPI.COMM_WORLD, 2.0, 0.1)
    s = FokkerPlanckSolver(msh, lambda x: (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2, beta=20.0, dt=0.05,
                           scheme="backward_euler", method="sg")
    s.set_initial(lambda x: gaussian_density(x, [0.3, 0.5], 0.02 * np.eye(2)), normalize=True)
    return s


def gathered(s):
    comm, n = s.comm, s.n_owned
    X = comm.gather(s.V.tabulate_dof_coordinates()[:n], root=0)
    r = comm.gather(s.rho.x.array[:n].copy(), root=0)
    if comm.rank:
        return None, None
    X, r = np.vstack(X), np.concatenate(r)
    order = np.lexsort(np.round(X, 10).T[::-1])
    return X[order], r[order]


def main(case, out):
    comm = MPI.COMM_WORLD
    if case == "ou_p2_bdf2":
        s = ou()
        s.run(0.4)
    elif case == "ou_p1_cn_iterative":
        s = ou(degree=1, scheme="crank_nicolson",
               petsc_options={"ksp_type": "gmres", "pc_type": "hypre", "ksp_rtol": 1e-12, "ksp_atol": 0.0})
        s.run(0.4)
    elif case == "sg_disk":
        s = double_well_disk()
        s.run(0.5)
    elif case == "checkpoint_save":         # 10 steps, checkpoint, stop
        s = ou()
        s.run(0.2, checkpoint=Checkpointer(os.path.join(out, f"ck-n{comm.size}.npz"), every=5))
    elif case.startswith("checkpoint_resume_from_n"):
        s = ou()
        resume(s, os.path.join(out, f"ck-n{case[-1]}.npz"))
        s.run(0.4)
    else:
        raise SystemExit(f"unknown case {case}")
    X, r = gathered(s)
    ex = ou_solution_ufl(A, 2.0, [1.0, -0.5], 0.2 * np.eye(2), s.t) if case != "sg_disk" else None
    err = s.l2_error(ex) if ex else 0.0
    if comm.rank == 0:
        path = os.path.join(out, f"{case}-n{comm.size}.npz")
        np.savez(path, X=X, rho=r, **{k: np.array(v) for k, v in s.history.items()})
        print("RESULT " + json.dumps({"path": path, "l2_error": err, "dofs": s.num_dofs,
                                      "ksp_its": int(sum(s.history["ksp_its"]))}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
