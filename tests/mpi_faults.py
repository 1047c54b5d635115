"""Fault cases run under `mpirun -n 2` by test_mpi_faults.py: a failure on one rank (or in rank-0-only
I/O) must raise the same error on every rank, never leave a rank waiting in a collective.

Usage: mpi_faults.py WORKDIR RO_DIR FULL_DIR [CASE ...]
RO_DIR: a directory on a read-only file system and FULL_DIR one on a tiny file system ('-' where
the test could not mount them; those cases are then skipped). For each case every rank prints
    FAULT {"case": ..., "rank": r, "type": ..., "message": ...}
(type null when nothing was raised). A watchdog ends the process if a case hangs for 60 s, so the
test sees which case never finished.
"""

import builtins
import errno
import os
import shutil
import sys

import numpy as np
from mpi4py import MPI

from fault_harness import SkipCase, run_cases

from fpjko import meshes
from fpjko.demos import double_well
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.mean_field_nn import TeacherData, continuous_time
from fpjko.samplers.sde import euler_maruyama
from fpjko.samplers.streams import Streams
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.io.checkpoint import Checkpointer, resume
from fpjko.solvers.io.output import SeriesWriter
from fpjko.solvers.io.rundir import OutputDir
from fpjko.solvers.particles import empirical

comm = MPI.COMM_WORLD
WORK, RO, FULL = sys.argv[1:4]
DEMO = ["--h", "0.3", "--degree", "1", "--dt", "0.02", "--t-end", "0.04", "--no-png", "--snapshots"]


def on(rank, value, otherwise):
    return value if comm.rank == rank else otherwise


def solver(h=0.3, degree=1, f=lambda x: (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2):
    msh = meshes.rectangle(comm, [-2.2, -2.0], [2.2, 2.0], h)
    s = FokkerPlanckSolver(msh, f, beta=3.0, degree=degree, dt=0.02, scheme="backward_euler")
    s.set_initial(lambda x: gaussian_density(x, [0.1, 0.2], 0.3 * np.eye(2)), normalize=True)
    return s


def workdir(name):
    path = os.path.join(WORK, name)
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    comm.Barrier()
    return path


def needs(path):
    if path == "-":
        raise SkipCase("no such file system here")
    if comm.rank == 0 and os.path.isdir(path) and os.access(path, os.W_OK):
        for name in os.listdir(path):                  # the tiny file system starts empty for each case
            p = os.path.join(path, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    comm.Barrier()


class fail_io_on_rank0:
    """Rank 0's writes under `path` fail with errno (a disk that fills up or turns read-only while
    the run goes on); the other ranks are untouched."""

    def __init__(self, path, err=errno.ENOSPC):
        self.path, self.err = os.path.abspath(path), err

    def __enter__(self):
        if comm.rank != 0:
            return self
        self.saved = builtins.open, os.replace

        def guarded(fn):
            def wrapper(p, *a, **k):
                if isinstance(p, (str, os.PathLike)) and os.path.abspath(p).startswith(self.path) and (
                        fn is os.replace or any(m in (a[0] if a else k.get("mode", "r")) for m in "wax+")):
                    raise OSError(self.err, os.strerror(self.err), os.fspath(p))
                return fn(p, *a, **k)
            return wrapper
        builtins.open, os.replace = guarded(builtins.open), guarded(os.replace)
        return self

    def __exit__(self, *exc):
        if comm.rank == 0:
            builtins.open, os.replace = self.saved


# ------------------------------------------------------------------ cases
def out_is_file():
    path = os.path.join(workdir("out_is_file"), "a_file")
    if comm.rank == 0:
        open(path, "w").close()
    comm.Barrier()
    double_well.main(["--out", path, *DEMO, "0"])


def out_read_only():
    needs(RO)
    double_well.main(["--out", os.path.join(RO, "run"), *DEMO, "0"])


def out_locked():
    path = workdir("locked")
    with OutputDir(comm, path):
        OutputDir(comm, path)


def resume_missing():
    double_well.main(["--out", workdir("resume_missing"), *DEMO, "0", "--resume"])


def _checkpoint_copy(name, mangle):
    path = workdir(name)
    double_well.main(["--out", path, *DEMO, "0"])
    ck = os.path.join(path, "checkpoint.npz")
    if comm.rank == 0:
        data = open(ck, "rb").read()
        open(ck, "wb").write(mangle(data))
    comm.Barrier()
    double_well.main(["--out", path, *DEMO, "0", "--t-end", "0.08", "--resume"])


def resume_truncated():
    _checkpoint_copy("resume_truncated", lambda b: b[: len(b) // 2])


def resume_garbage():
    _checkpoint_copy("resume_garbage", lambda b: np.random.default_rng(0).bytes(len(b)))


def resume_other_potential():
    path = os.path.join(workdir("resume_other_f"), "ck.npz")
    a = solver()
    a.run(0.04, checkpoint=Checkpointer(path, every=1))
    resume(solver(f=lambda x: (x[0] ** 2 - 1) ** 2 + 0.6 * x[1] ** 2), path)


def checkpoint_read_only():
    needs(RO)
    Checkpointer(os.path.join(RO, "ck.npz")).save(solver())


def checkpoint_full_disk():
    needs(FULL)
    Checkpointer(os.path.join(FULL, "ck.npz")).save(solver(h=0.05, degree=2))


def checkpoint_disk_fails_on_rank0():
    s, path = solver(), workdir("ck_enospc")
    with fail_io_on_rank0(path):
        Checkpointer(os.path.join(path, "ck.npz")).save(s)


def series_read_only():
    needs(RO)
    SeriesWriter(os.path.join(RO, "rho"), [solver().rho])


def series_full_disk():
    needs(FULL)
    s = solver(h=0.05, degree=2)
    w = SeriesWriter(os.path.join(FULL, "rho"), [s.rho])
    for k in range(50):
        w.write(0.1 * k)


def demo_full_disk():
    needs(FULL)
    double_well.main(["--out", os.path.join(FULL, "demo"), "--h", "0.05", "--t-end", "1.0", "--no-png",
                      "--snapshots", "0"])


def demo_disk_fails_on_rank0():
    path = workdir("demo_enospc")
    with fail_io_on_rank0(os.path.join(path, "checkpoint")):
        double_well.main(["--out", path, *DEMO, "0", "--checkpoint-every", "1"])


def _particles(bad, d=2):
    x = np.random.default_rng(comm.rank).uniform(-1, 1, (50, d))
    return bad(x) if comm.rank == 1 else x


def _nan(x):
    x = x.copy()
    x[7, 0] = np.nan
    return x


def histogram_nan_on_rank1():
    empirical.histogram(meshes.rectangle(comm, [-2, -2], [2, 2], 0.3), _particles(_nan))


def histogram_wrong_dim_on_rank1():
    empirical.histogram(meshes.rectangle(comm, [-2, -2], [2, 2], 0.3), _particles(lambda x: np.c_[x, x[:, :1]]))


def project_nan_on_rank0():
    import dolfinx.fem

    msh = meshes.rectangle(comm, [-2, -2], [2, 2], 0.3)
    x = np.random.default_rng(comm.rank).uniform(-1, 1, (50, 2))
    empirical.project(dolfinx.fem.functionspace(msh, ("Lagrange", 1)), _nan(x) if comm.rank == 0 else x)


def project_wrong_dim_on_rank0():
    import dolfinx.fem

    msh = meshes.rectangle(comm, [-2, -2], [2, 2], 0.3)
    x = np.random.default_rng(comm.rank).uniform(-1, 1, (50, 2))
    empirical.project(dolfinx.fem.functionspace(msh, ("Lagrange", 1)), x[:, 0] if comm.rank == 0 else x)


def _langevin(x0=None, dt=0.01, drift=None, steps=20):
    st = Streams(2000, seed=1, block=500)
    x = st.standard_normal((2,)) if x0 is None else x0(st)
    x = euler_maruyama(x, drift or (lambda x, t: -x), 1.0, dt, steps, st)
    return st.moments(x)


def sampler_nan_start_on_rank1():
    _langevin(x0=lambda st: _nan(st.standard_normal((2,))) if comm.rank == 1 else st.standard_normal((2,)))


def sampler_blow_up_on_rank1():
    _langevin(drift=lambda x, t: -x if comm.rank == 0 else 50.0 * x ** 3, dt=0.1)


def sampler_nan_dt_on_rank1():
    _langevin(dt=on(1, float("nan"), 0.01))


def sampler_drift_shape_on_rank0():
    _langevin(drift=lambda x, t: -x[:, :1] if comm.rank == 0 else -x)


def network_nan_neuron_on_rank1():
    data = TeacherData.teacher(64, np.array([[1.0, 0.5], [-0.5, 1.0]]), seed=0)
    st = Streams(400, seed=3, block=100)
    th = st.standard_normal((2,))
    if comm.rank == 1:
        th[0, 1] = np.inf
    x = continuous_time(th, st, data, gamma=0.1, t_end=0.1, dt=0.01)
    st.moments(x)


def moments_wrong_rows_on_rank0():
    st = Streams(1000, seed=1, block=250)
    x = st.standard_normal((2,))
    st.moments(x[:-1] if comm.rank == 0 else x)


def random_batch_wrong_rows_on_rank1():
    from fpjko.samplers.random_batch import RandomBatch

    st = Streams(1000, seed=1, block=250)
    x = st.standard_normal((2,))
    rb = RandomBatch(st, lambda z: z, 2)
    rb.force(x[:-1] if comm.rank == 1 else x)
    st.moments(x)                               # the next collective: the other rank must not wait here


def random_batch_nan_on_rank1():
    from fpjko.samplers.random_batch import RandomBatch

    st = Streams(1000, seed=1, block=250)
    x = st.standard_normal((2,))
    if comm.rank == 1:
        x[7, 1] = np.nan                        # global particle 507: its batch partner may live on rank 0
    rb = RandomBatch(st, lambda z: z, 2)
    rb.force(x)
    st.moments(x)                               # the next collective: the other rank must not wait here


def streams_empty_rank_sample():
    """Not a fault: with one block, rank 1 owns no particles and gets (0, d) (no error expected)."""
    st = Streams(100, seed=1, block=16384)
    x = st.sample(lambda g, m: g.standard_normal((m, 2)))
    assert x.shape == (st.n_local, 2), x.shape
    m, c = st.moments(x)
    assert np.all(np.isfinite(m)) and c.shape == (2, 2)


def _empty_rank_solver():
    """A drift-driven FP solver on a mesh whose cells all live on rank 0 (rank 1 owns nothing)."""
    import dolfinx.mesh
    import ufl

    from tests.mpi_cases import all_cells_on_rank_0

    msh = dolfinx.mesh.create_rectangle(comm, [[-2, -2], [2, 2]], [12, 12],
                                        partitioner=lambda c, n, t, cells: all_cells_on_rank_0(c, t, cells))
    s = FokkerPlanckSolver(msh, lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2), beta=2.0, dt=0.05,
                           scheme="backward_euler", drift=lambda x: ufl.as_vector([-x[1], x[0]]))
    s.set_initial(lambda x: gaussian_density(x, [0.3, 0.2], 0.3 * np.eye(2)), normalize=True)
    return s


def empty_rank_checkpoint_and_series():
    """Not a fault: drift check, checkpoint, series and resume with a rank that owns no cells."""
    path = workdir("empty_rank")
    s = _empty_rank_solver()
    assert comm.allreduce(s.n_owned) > 0 and (comm.rank == 0 or s.n_owned == 0)
    with SeriesWriter(os.path.join(path, "rho"), [s.rho]) as w:
        s.run(0.2, callback=lambda q: w.write(q.t), checkpoint=Checkpointer(os.path.join(path, "ck.npz"), every=2))
    r = _empty_rank_solver()
    resume(r, os.path.join(path, "ck.npz"))
    assert np.array_equal(r.rho.x.array, s.rho.x.array) and r.t == s.t
    with SeriesWriter(os.path.join(path, "rho"), [r.rho], resume_at=r.t) as w:
        r.run(0.3, callback=lambda q: w.write(q.t))
    from fpjko.solvers.io.output import read_index
    times = [t for seg in read_index(os.path.join(path, "rho"))["segments"] for t in seg["times"]]
    assert np.allclose(times, np.arange(1, 7) * 0.05), times


def empty_rank_checkpoint_fails_on_rank0():
    s, path = _empty_rank_solver(), workdir("empty_rank_enospc")
    with fail_io_on_rank0(path):
        Checkpointer(os.path.join(path, "ck.npz")).save(s)


# ---------------------------------------------------------------- an argument bad or different on one rank only
# (issue 29: each of these hung, rc 124, or was accepted silently; now every rank raises the same error)
NAN = float("nan")
LINE = lambda: meshes.interval(comm, -3, 3, 0.2)                                    # noqa: E731


def _gauss1(x):
    return np.exp(-x[0] ** 2)


def _quad1(x):
    return 0.5 * x[0] ** 2


def newton_p1_normalised_on_disk():
    """A density whose P1 integral is 1, given without normalize=True: on the Delaunay disk its mass in NewtonJKO's
    control volumes is not 1 (decided on allreduced masses: every rank raises)."""
    from fpjko.solvers import NewtonJKO
    J = NewtonJKO(meshes.disk(comm, 0.5, 1 / 32, center=(0.5, 0.5)), 0.01, beta=1.0)
    rho = np.exp(-((J.X[:, 0] - 0.5) ** 2 + (J.X[:, 1] - 0.5) ** 2) / 0.02)
    rho /= comm.allreduce(float(J.graph.lumped[: J.n] @ rho[: J.n]))
    J.set_initial(rho[: J.n])


def config_newton_tau_nan_on_rank1():
    from fpjko.solvers import NewtonJKO
    NewtonJKO(LINE(), on(1, NAN, 0.1), potential=_quad1, beta=1.0)


def config_newton_beta_differs():
    from fpjko.solvers import NewtonJKO
    NewtonJKO(LINE(), 0.1, potential=_quad1, beta=on(1, 2.0, 1.0))


def config_newton_run_nan_on_rank0():
    from fpjko.solvers import NewtonJKO
    s = NewtonJKO(LINE(), 0.1, potential=_quad1, beta=1.0)
    s.set_initial(_gauss1, normalize=True)
    s.run(on(0, NAN, 0.2))


def config_entropic_gamma_nan_on_rank1():
    from fpjko.solvers import EntropicJKO
    EntropicJKO(LINE(), 0.1, on(1, NAN, 0.05), potential=_quad1)


def config_entropic_substeps_differ():
    from fpjko.solvers import EntropicJKO
    EntropicJKO(LINE(), 0.1, 0.05, potential=_quad1, substeps=on(1, 3, 4))


def config_local_entropy_beta_nan_on_rank1():
    from fpjko.solvers import LocalEntropy
    LocalEntropy(LINE(), _quad1, on(1, NAN, 2.0))


def config_local_entropy_gamma_nan_on_rank0():
    from fpjko.solvers import LocalEntropy
    LocalEntropy(LINE(), _quad1, 2.0).solve(on(0, NAN, 0.1), 4)


def config_local_entropy_steps_differ():
    from fpjko.solvers import LocalEntropy
    LocalEntropy(LINE(), _quad1, 2.0).solve(0.1, on(1, 3, 4))


def config_viscous_dt_nan_on_rank1():
    from fpjko.solvers import ViscousHJ
    ViscousHJ(LINE(), _quad1, 2.0).step(on(1, NAN, 0.01))


def config_viscous_beta_nan_on_rank0():
    from fpjko.solvers import ViscousHJ
    ViscousHJ(LINE(), _quad1, on(0, NAN, 2.0))


def config_graphon_flow_tau_nan_on_rank1():
    from fpjko.samplers.graphon import GraphonObjective
    from fpjko.solvers import GraphonFlow
    GraphonFlow(meshes.unit_square(comm, 4), GraphonObjective(edges=-1.0, triangles=1.0), tau=on(1, NAN, 0.1))


def config_graphon_flow_initial_nan_on_rank1():
    from fpjko.samplers.graphon import GraphonObjective
    from fpjko.solvers import GraphonFlow
    F = GraphonFlow(meshes.unit_square(comm, 4), GraphonObjective(edges=-1.0, triangles=1.0), tau=0.1)
    F.set_initial(lambda u, v: on(1, NAN, 0.5) + 0 * u * v)


def config_graphon_mv_sigma_nan_on_rank0():
    from fpjko.samplers.graphon import GraphonObjective
    from fpjko.solvers import GraphonMcKeanVlasov
    GraphonMcKeanVlasov(meshes.unit_square(comm, 4), GraphonObjective(edges=-1.0), dt=0.01, sigma=on(0, NAN, 1.0))


def config_fp_interaction_nan_on_rank1():
    FokkerPlanckSolver(LINE(), _quad1, interaction=on(1, NAN, 1.0))


def config_fp_interaction_differs():
    FokkerPlanckSolver(LINE(), _quad1, interaction=on(1, 5.0, 1.0))


def config_fp_scheme_differs():
    FokkerPlanckSolver(LINE(), _quad1, scheme=on(1, "backward_euler", "bdf2"))


def config_fp_beta_nan_on_rank0():
    FokkerPlanckSolver(LINE(), _quad1, beta=on(0, NAN, 1.0))


def config_fp_dt_nan_on_rank1():
    FokkerPlanckSolver(LINE(), _quad1, dt=on(1, NAN, 0.01))


def config_fp_run_nan_on_rank1():
    s = FokkerPlanckSolver(LINE(), _quad1, dt=0.05)
    s.set_initial(_gauss1, normalize=True)
    s.run(on(1, NAN, 0.1))


def _teacher(shift=0.0):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 1))
    return TeacherData(X, np.tanh(X[:, 0]) + shift)


def config_network_gamma_nan_on_rank1():
    from fpjko.solvers import network_pde
    network_pde(LINE(), _teacher(), gamma=on(1, NAN, 0.1))


def config_network_temperature_differs():
    from fpjko.solvers import network_pde
    network_pde(LINE(), _teacher(), temperature=on(1, 0.2, 0.1))


def config_network_teacher_differs():
    from fpjko.solvers import network_pde
    network_pde(LINE(), _teacher(on(1, 1e-3, 0.0)), temperature=0.1)


CONFIG_CASES = [
    config_newton_tau_nan_on_rank1, config_newton_beta_differs, config_newton_run_nan_on_rank0,
    config_entropic_gamma_nan_on_rank1, config_entropic_substeps_differ, config_local_entropy_beta_nan_on_rank1,
    config_local_entropy_gamma_nan_on_rank0, config_local_entropy_steps_differ, config_viscous_dt_nan_on_rank1,
    config_viscous_beta_nan_on_rank0, config_graphon_flow_tau_nan_on_rank1, config_graphon_flow_initial_nan_on_rank1,
    config_graphon_mv_sigma_nan_on_rank0, config_fp_interaction_nan_on_rank1, config_fp_interaction_differs,
    config_fp_scheme_differs, config_fp_beta_nan_on_rank0, config_fp_dt_nan_on_rank1, config_fp_run_nan_on_rank1,
    config_network_gamma_nan_on_rank1, config_network_temperature_differs, config_network_teacher_differs]


CASES = {f.__name__: f for f in [
    out_is_file, out_read_only, out_locked, resume_missing, resume_truncated, resume_garbage,
    resume_other_potential, checkpoint_read_only, checkpoint_full_disk, checkpoint_disk_fails_on_rank0,
    series_read_only, series_full_disk, demo_full_disk, demo_disk_fails_on_rank0,
    histogram_nan_on_rank1, histogram_wrong_dim_on_rank1, project_nan_on_rank0, project_wrong_dim_on_rank0,
    sampler_nan_start_on_rank1, sampler_blow_up_on_rank1, sampler_nan_dt_on_rank1, sampler_drift_shape_on_rank0,
    network_nan_neuron_on_rank1, moments_wrong_rows_on_rank0, random_batch_wrong_rows_on_rank1,
    random_batch_nan_on_rank1, streams_empty_rank_sample, newton_p1_normalised_on_disk,
    empty_rank_checkpoint_and_series, empty_rank_checkpoint_fails_on_rank0, *CONFIG_CASES]}


def main():
    run_cases(comm, CASES, sys.argv[4:])


if __name__ == "__main__":
    main()
