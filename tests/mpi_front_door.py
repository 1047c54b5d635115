"""The front door under `mpirun -n 2` (test_front_door.py): a value bad or different on one rank only, at Model,
model.particles, validate, a solver's callable and the particle forces, is one error on every rank (the protocol
of tests/fault_harness.py).

Usage: mpi_front_door.py WORKDIR [CASE ...]
"""

import os
import sys

import numpy as np
from mpi4py import MPI

from fault_harness import run_cases
from fpjko import meshes
from fpjko.model import Model, validate
from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.streams import Streams
from fpjko.solvers import FokkerPlanckSolver

comm = MPI.COMM_WORLD
WORK = sys.argv[1]
NAN = float("nan")


def on(rank, value, otherwise):
    return value if comm.rank == rank else otherwise


def ou(**kw):
    args = dict(d=1, V="0.5*x**2", W="-exp(-z**2)", beta=2.0, initial={"mean": [0.5], "cov": 0.1},
                domain=([-4.0], [4.0]))
    args.update(kw)
    return Model(**args)


def study(**kw):
    args = dict(ns=[20, 40], t=0.02, repeats=2, dt=0.01, h=0.2, degree=1, fe_dt=0.01, echo=False, progress=False)
    args.update(kw)
    validate(ou(), **args)


# ---------------------------------------------------------------------------------------------- Model
def model_beta_differs():
    ou(beta=on(1, 3.0, 2.0))


def model_V_differs():
    ou(V=on(0, "0.5*x**2", "x**2/2 + 0.1*x**4"))


def model_initial_differs():
    ou(initial=on(1, {"mean": [0.4], "cov": 0.1}, {"mean": [0.5], "cov": 0.1}))


def model_bad_key_on_rank1():
    ou(initial=on(1, {"mean": [0.5], "covariance": 0.1}, {"mean": [0.5], "cov": 0.1}))


# ---------------------------------------------------------------------------------------------- particles
def particles_dt_differs():
    ou().particles(40, 1, dt=on(1, 0.02, 0.01), t_end=0.04)


def particles_n_differs():
    ou().particles(on(0, 41, 40), 1, dt=0.01, t_end=0.04)


def particles_seed_differs():
    ou().particles(40, on(1, 2, 1), dt=0.01, t_end=0.04)


def particles_force_differs():
    ou().particles(40, 1, dt=0.01, t_end=0.04, force=on(1, "mesh", "direct"))


def particles_too_many_on_both():
    ou().particles(10**11, 1, dt=0.01, t_end=0.04)


def particles_model_nan_on_rank1():
    """V = sqrt(x) without a domain: the drift is NaN for the particles at x < 0, named as the model's."""
    Model(1, V="sqrt(x)", initial={"mean": [2.0], "cov": 1.0}).particles(64, 1, dt=0.01, t_end=0.04)


def particles_empty_rank_auto_mesh():
    """n = 300 (one stream block: rank 0 holds no particle) takes the particle mesh (force='auto' from 256 in 1D),
    a particle sent outside the domain takes the direct sum, and the gathered particles equal a serial run on
    each rank (COMM_SELF) bitwise."""
    m = ou(V="0.5*x**2", initial={"mean": [3.5], "cov": 0.1})       # the cloud straddles the domain's end 4
    st, x = m.particles(300, 1, dt=0.01, t_end=0.04)
    assert st.n_local == (300 if comm.rank == 1 else 0), st.n_local
    assert m.choose_force("auto", 300) == "mesh"
    _, serial = m.particles(300, 1, comm=MPI.COMM_SELF, dt=0.01, t_end=0.04)
    together = st.allgather(x)
    assert (together > 4.0).any() and np.array_equal(together, serial), "2 ranks differ from serial"


# ---------------------------------------------------------------------------------------------- validate
def validate_h_differs():
    study(h=on(1, 0.25, 0.2))


def validate_ns_differs():
    study(ns=on(0, [20, 40], [20, 80]))


def validate_seed_differs():
    study(seed=on(1, 1, 0))


def validate_repeats_differs():
    study(repeats=on(1, 3, 2))


def validate_out_is_file():
    path = os.path.join(WORK, "validate_out_is_file")
    if comm.rank == 0:
        os.makedirs(WORK, exist_ok=True)
        open(path, "w").close()
    comm.Barrier()
    study(out=path)


def validate_too_fine_h():
    study(h=1e-9)


# ---------------------------------------------------------------------------------------------- solvers, forces
def solver_potential_callable_differs():
    msh = meshes.interval(comm, -2.0, 2.0, 0.2)
    c = on(1, 2.0, 1.0)
    FokkerPlanckSolver(msh, lambda x: c * x[0] ** 2, dt=0.01)


def particle_mesh_nan_on_rank1():
    st = Streams(40, 0, comm=comm, block=8)
    x = np.random.default_rng(st.lo).uniform(-1, 1, (st.n_local, 2))
    if comm.rank == 1:
        x[3, 1] = NAN
    pm = ParticleMesh(lambda z: -z * np.exp(-np.sum(z * z, axis=-1, keepdims=True)), [-2, -2], [2, 2], 32)
    particle_mesh_force(x, st, pm)


def particle_mesh_outside_on_rank0():
    st = Streams(40, 0, comm=comm, block=8)
    x = np.random.default_rng(st.lo).uniform(-1, 1, (st.n_local, 2))
    if comm.rank == 0:
        x[2, 0] = 5.0
    pm = ParticleMesh(lambda z: -z * np.exp(-np.sum(z * z, axis=-1, keepdims=True)), [-2, -2], [2, 2], 32)
    particle_mesh_force(x, st, pm)


# ---------------------------------------------------------------------------------------------- the two-layer network
def network_gamma_differs():
    from fpjko.samplers import data as datasets
    from fpjko.samplers.two_layer import TwoLayerNetwork

    net = TwoLayerNetwork(300, 64, 10, "relu", "cross_entropy", seed=1, block=64)
    net.sgd(datasets.digits(), on(1, 0.2, 0.1), 0.5, 3)


def network_width_differs():
    from fpjko.samplers.two_layer import TwoLayerNetwork

    TwoLayerNetwork(on(0, 300, 301), 64, 10, "relu", "cross_entropy", seed=1)


def network_data_differs():
    from fpjko.samplers import data as datasets
    from fpjko.samplers.two_layer import TwoLayerNetwork

    d = datasets.digits(seed=on(1, 1, 0))
    TwoLayerNetwork(300, 64, 10, "relu", "cross_entropy", seed=1, block=64).sgd(d, 0.1, 0.5, 3)


def network_beta_out_of_range_on_both():
    from fpjko.samplers import data as datasets
    from fpjko.samplers.two_layer import TwoLayerNetwork

    TwoLayerNetwork(300, 64, 10, "relu", "cross_entropy", seed=1, block=64).sgd(datasets.digits(), 0.1, 1.5, 3)


def network_empty_rank_matches_serial():
    """N = 100 in one block of 1024: rank 0 holds no neuron; the gathered neurons after SGD equal a serial run."""
    from fpjko.samplers import data as datasets
    from fpjko.samplers.two_layer import TwoLayerNetwork

    d = datasets.digits()
    a = TwoLayerNetwork(100, 64, 10, "relu", "cross_entropy", seed=1)
    a.sgd(d, 0.1, 1.0, 20, mode="independent")
    b = TwoLayerNetwork(100, 64, 10, "relu", "cross_entropy", seed=1, comm=MPI.COMM_SELF)
    b.sgd(d, 0.1, 1.0, 20, mode="independent")
    assert a.streams.n_local == (100 if comm.rank == 1 else 0)
    assert np.array_equal(a.streams.allgather(a.neurons()), b.neurons()), "2 ranks differ from serial"


def chaos_file_bad_on_rank0():
    from fpjko.model.chaos import chaos_study, save_snapshots

    path = os.path.join(WORK, "bad_runs.npz")
    if comm.rank == 0:
        os.makedirs(WORK, exist_ok=True)
        pairs = {(N, 0): (np.zeros((N, 2)), np.zeros((N, 2))) for N in (10, 20)}
        pairs[20, 0] = (np.zeros((20, 2)), np.full((20, 2), np.nan))
        save_snapshots(path, pairs)
    comm.Barrier()
    chaos_study(path, echo=False)


# ---------------------------------------------------------------------------------------------- found by a probe
def stationary_tol_differs():
    m = ou()
    m.stationary(m.mesh(comm, 0.2), tol=on(1, 1e-6, 1e-8))


def callback_stops_on_rank1():
    """A callback that asks to stop on one rank stops every rank (it hung: rank 1 returned, rank 0 waited)."""
    seen = []

    def cb(st, k, t, x):
        seen.append(k)
        return comm.rank == 1 and k == 2
    st, x = ou(W=None).particles(40000, 1, dt=0.01, t_end=0.05, callback=cb)
    assert seen[-1] == 2, seen


def callback_raises_on_rank1():
    def cb(st, k, t, x):
        if comm.rank == 1 and k == 2:
            raise RuntimeError("the user's callback failed")
    ou(W=None).particles(40000, 1, dt=0.01, t_end=0.05, callback=cb)


def density_sampler_fails_on_rank1():
    """A negative value that only one rank's sampler meets (a dip narrower than every evaluation point of the
    declaration) is one error on every rank (it hung)."""
    m = ou(W=None, initial={"density": "exp(-x**2/2)"})
    law = m.initial
    real = law._values

    def values(y):
        if comm.rank == 1:
            raise ValueError("initial density 'exp(-x**2/2)' is negative at x = [0.1] (value -0.5)")
        return real(y)
    law._values = values
    m.particles(40000, 1, dt=0.01, t_end=0.02)


def particle_mesh_cells_differ():
    st = Streams(40, 0, comm=comm, block=8)
    x = np.random.default_rng(st.lo).uniform(-1, 1, (st.n_local, 2))
    pm = ParticleMesh(lambda z: -z * np.exp(-np.sum(z * z, axis=-1, keepdims=True)), [-2, -2], [2, 2], on(1, 64, 32))
    particle_mesh_force(x, st, pm)


def random_batch_p_differs():
    from fpjko.samplers.random_batch import RandomBatch

    st = Streams(40, 0, comm=comm, block=8)
    x = np.random.default_rng(st.lo).uniform(-1, 1, (st.n_local, 2))
    RandomBatch(st, lambda z: -z, on(1, 5, 3)).force(x)


def random_batch_kernel_fails_on_rank1():
    from fpjko.samplers.random_batch import RandomBatch

    st = Streams(40, 0, comm=comm, block=8)
    x = np.random.default_rng(st.lo).uniform(-1, 1, (st.n_local, 2))
    calls = [0]

    def gW(z):
        calls[0] += 1
        if comm.rank == 1 and calls[0] > 1:          # not at the comparison's probe: while summing the batches
            raise FloatingPointError("grad W overflowed")
        return -z
    RandomBatch(st, gW, 2).force(x)


def streams_seed_differs():
    Streams(40, on(1, 1, 0), comm=comm, block=8)


def model_numbers_as_array_or_list():
    """[0.5] on one rank and np.array([0.5]) on the other are the same argument."""
    ou(initial={"mean": on(1, np.array([0.5]), [0.5]), "cov": 0.1})


# ---------------------------------------------------------------------------------------------- found by a re-probe
def checkpoint_every_differs():
    from fpjko.solvers.io.checkpoint import Checkpointer

    m = ou(W=None)
    s = m.fokker_planck(m.mesh(comm, 0.5), dt=0.01)
    s.run(0.04, checkpoint=Checkpointer(os.path.join(WORK, "cpe"), every=on(1, 2, 1)))


def checkpoint_path_differs():
    from fpjko.solvers.io.checkpoint import Checkpointer

    m = ou(W=None)
    s = m.fokker_planck(m.mesh(comm, 0.5), dt=0.01)
    s.run(0.02, checkpoint=Checkpointer(os.path.join(WORK, on(1, "cpB", "cpA")), every=1))


def resume_path_differs():
    from fpjko.solvers.io.checkpoint import Checkpointer, resume

    m = ou(W=None)
    s = m.fokker_planck(m.mesh(comm, 0.5), dt=0.01)
    s.run(0.02, checkpoint=Checkpointer(os.path.join(WORK, "rA"), every=1))
    resume(s, os.path.join(WORK, on(1, "rB", "rA")))


CASES = {f.__name__: f for f in [
    checkpoint_every_differs, checkpoint_path_differs, resume_path_differs,
    stationary_tol_differs, callback_stops_on_rank1, callback_raises_on_rank1, density_sampler_fails_on_rank1,
    particle_mesh_cells_differ, random_batch_p_differs, random_batch_kernel_fails_on_rank1, streams_seed_differs,
    model_numbers_as_array_or_list,
    network_gamma_differs, network_width_differs, network_data_differs, network_beta_out_of_range_on_both,
    network_empty_rank_matches_serial, chaos_file_bad_on_rank0,
    model_beta_differs, model_V_differs, model_initial_differs, model_bad_key_on_rank1,
    particles_dt_differs, particles_n_differs, particles_seed_differs, particles_force_differs,
    particles_too_many_on_both, particles_model_nan_on_rank1, particles_empty_rank_auto_mesh,
    validate_h_differs, validate_ns_differs, validate_seed_differs, validate_repeats_differs, validate_out_is_file,
    validate_too_fine_h, solver_potential_callable_differs, particle_mesh_nan_on_rank1,
    particle_mesh_outside_on_rank0]}

if __name__ == "__main__":
    run_cases(comm, CASES, sys.argv[2:])
