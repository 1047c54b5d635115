"""The solvers of the protocol, each built on a small problem (shared by test_protocol.py and mpi_protocol.py).

CASES[name] = (build(comm) -> solver, initial arguments for set_initial, step size, tolerance of a resumed run
against the uninterrupted one: 0 for bitwise, else relative to the field's maximum)."""

import numpy as np

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density


def _gauss1(x):
    return gaussian_density(x[:1], [0.5], np.eye(1) * 0.3)


def _gauss2(x):
    return gaussian_density(x[:2], [0.5, -0.3], np.eye(2) * 0.4)


def fokker_planck(comm):
    from fpjko.solvers import FokkerPlanckSolver

    msh = meshes.rectangle(comm, [-3, -3], [3, 3], 0.4)
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * x[0] ** 2 + x[1] ** 2, beta=1.5, dt=0.05, scheme="bdf2")
    return s, (_gauss2,), {"normalize": True}


def entropic_jko(comm):
    from fpjko.solvers import EntropicJKO

    s = EntropicJKO(meshes.interval(comm, -3, 3, 0.05), tau=0.1, gamma=0.05, potential=lambda x: 0.5 * x[0] ** 2)
    return s, (_gauss1,), {"normalize": True}


CASES = {"FokkerPlanckSolver": (fokker_planck, 1e-12), "EntropicJKO": (entropic_jko, 1e-10)}


def field(solver):
    """(keys, values) of the solver's first function's owned dofs, gathered and sorted by their keys (coordinates,
    and the cell's centroid for a discontinuous space: fpjko.solvers.io.checkpoint.dof_keys)."""
    from fpjko.solvers.io.checkpoint import dof_keys

    fn = next(iter(solver._functions().values()))
    V = fn.function_space
    n = V.dofmap.index_map.size_local
    bs = V.dofmap.index_map_bs
    X = dof_keys(V)
    vals = fn.x.array[: n * bs].reshape(n, bs)
    comm = solver.comm
    X = np.concatenate(comm.allgather(X))
    vals = np.concatenate(comm.allgather(vals))
    order = np.lexsort(np.round(X, 9).T[::-1])
    return X[order], vals[order]


def continuity(comm):
    from fpjko.solvers import ContinuityEquation

    s = ContinuityEquation(meshes.rectangle(comm, [-3, -3], [3, 3], 0.4), lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2),
                           interaction=1.0, degree=1, dt=0.02)
    return s, (_gauss2,), {"normalize": True}


CASES["ContinuityEquation"] = (continuity, 1e-12)


def _narrow2(x):
    return gaussian_density(x[:2], [0.5, -0.3], np.eye(2) * 0.05)


def newton_jko(comm):
    """(A narrow bump: its K-step's cut, NewtonJKO._cut, holds about half the nodes and is part of the state.)"""
    from fpjko.solvers import NewtonJKO

    s = NewtonJKO(meshes.rectangle(comm, [-3, -3], [3, 3], 0.2), 0.1, potential=lambda x: 2.0 * (x[0] ** 2 + x[1] ** 2),
                  beta=1.0, interaction=0.5)
    return s, (_narrow2,), {"normalize": True}


CASES["NewtonJKO"] = (newton_jko, 1e-8)


def alg2_jko(comm):
    from fpjko.solvers import JKOSolver

    s = JKOSolver(meshes.space_time_of(meshes.interval(comm, -3, 3, 0.2), 4), 0.1, potential=lambda x: 0.5 * x[0] ** 2,
                  beta=1.0, max_iter=400)
    return s, (_gauss1,), {"normalize": True}


CASES["JKOSolver"] = (alg2_jko, 1e-8)


def _gentle(x):
    return 0.5 * (x[0] - 0.3) ** 2 + 0.1 * np.cos(3 * x[0])


def local_entropy(comm):
    from fpjko.solvers import LocalEntropy

    return LocalEntropy(meshes.interval(comm, -3, 3, 0.05), _gentle, 2.0, dt=0.02), (), {}


def viscous_hj(comm):
    from fpjko.solvers import ViscousHJ

    return ViscousHJ(meshes.interval(comm, -3, 3, 0.05), _gentle, 2.0, dt=0.02), (), {}


CASES["LocalEntropy"] = (local_entropy, 1e-12)
CASES["ViscousHJ"] = (viscous_hj, 1e-9)


def graphon_flow(comm):
    from fpjko.samplers.graphon import GraphonObjective
    from fpjko.solvers import GraphonFlow

    s = GraphonFlow(meshes.unit_square(comm, 12), GraphonObjective(edges=-1.0, triangles=1.0), tau=0.2, degree=1)
    return s, (lambda u, v: 0.5 - 0.2 * np.cos(np.pi * u) * np.cos(np.pi * v),), {}


def graphon_mckean_vlasov(comm):
    from fpjko.samplers.graphon import GraphonObjective
    from fpjko.solvers import GraphonMcKeanVlasov

    s = GraphonMcKeanVlasov(meshes.unit_square(comm, 4), GraphonObjective(edges=-1.0, triangles=3.0), dt=0.02, nx=41,
                            sigma=0.5)
    return s, (lambda u, v: 0.3 + 0.4 * u * v,), {}


CASES["GraphonFlow"] = (graphon_flow, 1e-13)
CASES["GraphonMcKeanVlasov"] = (graphon_mckean_vlasov, 1e-13)
