"""Cases run under `mpirun -n N` by test_mpi.py. Usage: mpi_cases.py CASE OUTDIR.

Each case writes OUTDIR/<case>-n<N>.npz with the solution gathered in dof-coordinate order plus the
history, and prints 'RESULT {json}' on rank 0.
"""

import json
import os
import sys

import numpy as np
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver
from fpjko.samplers.mean_field_nn import TeacherData
from fpjko.solvers.core.exact import ou_solution_ufl, quadratic_potential
from fpjko.solvers.fokker_planck.interaction import KernelInteraction
from fpjko.solvers.io.checkpoint import Checkpointer, resume
from fpjko.solvers.mean_field.network import network_pde, risk
from fpjko.solvers.transport.continuity import ContinuityEquation

A = np.array([[1.0, 0.6], [0.6, 2.0]])


def ou(method="galerkin", degree=2, scheme="bdf2", petsc_options=None, solver="auto"):
    msh = meshes.rectangle(MPI.COMM_WORLD, [-5, -5], [5, 5], 0.25)
    s = FokkerPlanckSolver(msh, quadratic_potential(A), beta=2.0, degree=degree, dt=0.02, scheme=scheme,
                           method=method, petsc_options=petsc_options, solver=solver)
    s.set_initial(lambda x: gaussian_density(x, [1.0, -0.5], 0.2 * np.eye(2)))
    return s


def double_well_disk():
    msh = meshes.disk(MPI.COMM_WORLD, 2.0, 0.1)
    s = FokkerPlanckSolver(msh, lambda x: (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2, beta=20.0, dt=0.05,
                           scheme="backward_euler", method="sg")
    s.set_initial(lambda x: gaussian_density(x, [0.3, 0.5], 0.02 * np.eye(2)), normalize=True)
    return s


K = np.array([[1.0, -0.4], [-0.4, 0.5]])


def all_cells_on_rank_0(comm, cell_types, cells):
    """A partitioner that leaves every other rank without cells (an empty local partition)."""
    import dolfinx.graph

    n = sum(len(c) for c in cells) // 3
    return dolfinx.graph.adjacencylist(np.zeros(n, dtype=np.int32))


def mean_field(kind, empty_rank=False):
    """McKean-Vlasov cases: the polynomial, kernel (ring-passed) and SG paths, DG transport, the network;
    empty_rank: the mesh lives on rank 0 only."""
    comm = MPI.COMM_WORLD
    start = lambda x: gaussian_density(x, [0.5, -0.3], 0.3 * np.eye(2))                     # noqa: E731
    if kind == "network":
        data = TeacherData.teacher(16, [[2.0, 1.0], [-1.0, 1.5]], seed=1)
        s = network_pde(meshes.rectangle(comm, [-3, -3], [3, 3], 0.3), data, gamma=1.0, dt=0.02)
        s.set_initial(lambda x: gaussian_density(x, [0.0, 0.0], 0.25 * np.eye(2)), normalize=True)
        s.run(0.2)
        s.history["risk"] = [risk(s, data)]
        return s
    if empty_rank:
        import dolfinx.mesh

        msh = dolfinx.mesh.create_rectangle(comm, [[-3, -3], [3, 3]], [24, 24],
                                            partitioner=lambda c, n, t, cells: all_cells_on_rank_0(c, t, cells))
    else:
        msh = meshes.rectangle(comm, [-3, -3], [3, 3], 0.25)
    f = quadratic_potential(A)
    if kind == "transport":
        s = ContinuityEquation(msh, f, interaction=K, degree=1, cfl=0.2)
    elif kind == "kernel":
        s = FokkerPlanckSolver(msh, f, beta=2.0, degree=1, dt=0.02,
                               interaction=KernelInteraction(lambda z: -np.exp(-0.5 * np.sum(z * z, axis=-1))))
    elif kind == "kernel_direct":             # the O(N^2) reference: sources passed around the ranks in a ring
        s = FokkerPlanckSolver(msh, f, beta=2.0, degree=1, dt=0.02,
                               interaction=KernelInteraction(lambda z: -np.exp(-0.5 * np.sum(z * z, axis=-1)),
                                                             method="direct"))
    elif kind == "badkernel":                 # W returns (..., d): every rank must fail, also one without cells
        s = FokkerPlanckSolver(msh, f, beta=2.0, degree=1, dt=0.02, interaction=KernelInteraction(lambda z: z))
    elif kind == "sg":
        s = FokkerPlanckSolver(msh, f, beta=2.0, dt=0.02, scheme="backward_euler", method="sg", interaction=K)
    else:
        s = FokkerPlanckSolver(msh, f, beta=2.0, degree=2, dt=0.02, interaction=K)
    s.set_initial(start, normalize=True)
    s.run(0.2)
    return s


def fields(comm):
    """A FokkerPlanckSolver with D(x), a drift b(x), a source g(x, t) and a boundary flux: every field in its
    fingerprint is a moment (test_fingerprint.py)."""
    import ufl

    msh = meshes.rectangle(comm, [-1, -1], [1, 1], 0.25)
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=1.0, degree=1, dt=0.05,
                           diffusion=lambda x: ufl.as_matrix([[1 + 0.3 * x[0], 0.1], [0.1, 1 + 0.2 * x[1] ** 2]]),
                           drift=lambda x: ufl.as_vector([x[1], -x[0]]),
                           source=lambda x, t: t * ufl.exp(-(x[0] ** 2 + x[1] ** 2)),
                           boundary_flux=lambda x, t: 0.1 * t * x[0])
    s.set_initial(lambda x: gaussian_density(x, [0.2, -0.1], 0.3 * np.eye(2)), normalize=True)
    return s


def fields_case(case, out):
    """fields_save (any rank count): run to 0.1 with a checkpoint; fields_resume_from_nN (serial): resume it, run
    to 0.2, and compare with the uninterrupted serial run and the saved fingerprint's moments with this one's."""
    comm = MPI.COMM_WORLD
    if case == "fields_save":
        fields(comm).run(0.1, checkpoint=Checkpointer(os.path.join(out, f"fields-ck-n{comm.size}.npz"), every=1))
        result = {}
    else:
        path = os.path.join(out, f"fields-ck-n{case[-1]}.npz")
        s, ref = fields(comm), fields(comm)
        resume(s, path)
        s.run(0.2)
        ref.run(0.2)
        diff = comm.allreduce(float(np.abs(s.rho.x.array - ref.rho.x.array).max()), op=MPI.MAX)
        with np.load(path) as z:
            saved = json.loads(str(z["meta"]))["fingerprint"]
        mine = s.fingerprint()
        rel = max(float(np.max(np.abs(np.subtract(saved[k], mine[k])))) / max(np.abs(mine[k]).max(), 1e-300)
                  for k in ("potential_moments", "diffusion", "drift", "source", "boundary_flux"))
        result = {"resumed_vs_uninterrupted": diff, "moments_rel_diff": rel}
    if comm.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def gathered(s):
    """Owned dofs keyed by coordinates (and, for DG, by their cell's centroid: DG dofs share points)."""
    comm, n = s.comm, s.n_owned
    coords = s.V.tabulate_dof_coordinates()
    if s.V.element.basix_element.discontinuous:
        cells = s.V.dofmap.list
        centroid = np.zeros_like(coords)
        centroid[cells.ravel()] = np.repeat(coords[cells].mean(axis=1), cells.shape[1], axis=0)
        coords = np.hstack([coords, centroid])
    X = comm.gather(coords[:n], root=0)
    r = comm.gather(s.rho.x.array[:n].copy(), root=0)
    if comm.rank:
        return None, None
    X, r = np.vstack(X), np.concatenate(r)
    order = np.lexsort(np.round(X, 10).T[::-1])
    return X[order], r[order]


def main(case, out):
    comm = MPI.COMM_WORLD
    if case.startswith("fields_"):
        return fields_case(case, out)
    if case == "ou_p2_bdf2":
        s = ou()
        s.run(0.4)
    elif case == "ou_p1_cn_iterative":
        s = ou(degree=1, scheme="crank_nicolson",
               petsc_options={"ksp_type": "gmres", "pc_type": "hypre", "ksp_rtol": 1e-12, "ksp_atol": 0.0})
        s.run(0.4)
    elif case == "ou_p1_bdf2_amg":           # the large-problem default: 1e-3 of the predictor's residual, mass restored
        s = ou(degree=1, solver="iterative")
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
    elif case.startswith("mv_empty_"):
        s = mean_field(case[9:], empty_rank=True)
        cells = s.mesh.topology.index_map(s.mesh.topology.dim).size_local
        assert comm.size == 1 or comm.allgather(cells)[1:] == [0] * (comm.size - 1)
    elif case.startswith("mv_"):
        s = mean_field(case[3:])
    else:
        raise SystemExit(f"unknown case {case}")
    X, r = gathered(s)
    ex = ou_solution_ufl(A, 2.0, [1.0, -0.5], 0.2 * np.eye(2), s.t) if case.startswith(("ou", "checkpoint")) else None
    err = s.l2_error(ex) if ex else 0.0
    if comm.rank == 0:
        path = os.path.join(out, f"{case}-n{comm.size}.npz")
        np.savez(path, X=X, rho=r, **{k: np.array(v) for k, v in s.history.items()})
        print("RESULT " + json.dumps({"path": path, "l2_error": err, "dofs": s.num_dofs,
                                      "iterations": int(sum(s.history.get("iterations", [0])))}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
