"""Bad input, serial: each case raises (or warns) with a message that names the offending value;
none returns a silently wrong result. The MPI side (every rank ends together) is test_mpi_faults.py."""

import json
import math
import os
import warnings

import numpy as np
import pytest
import ufl
from mpi4py import MPI

from fpjko import meshes
from fpjko import cli
from fpjko.demos import double_well
from fpjko.metrics.distances import sliced_wasserstein, wasserstein_1d
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.sde import euler_maruyama
from fpjko.samplers.streams import Streams
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.io.output import SeriesWriter, read_index
from fpjko.solvers.io.rundir import OutputDir
from fpjko.solvers.particles import empirical

COMM = MPI.COMM_WORLD


@pytest.fixture(scope="module")
def square():
    return meshes.rectangle(COMM, [-2, -2], [2, 2], 0.25)


def fp(msh, **kw):
    kw.setdefault("potential", lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2))
    return FokkerPlanckSolver(msh, **kw)


# ------------------------------------------------------------------ Fokker-Planck solver
@pytest.mark.parametrize("potential", [lambda x: 0.0, None])
def test_constant_potential_is_accepted(square, potential, tmp_path):
    """f = 0 (a number or None): pure diffusion; mass conserved, F decreasing, checkpoint round trip."""
    from fpjko.solvers.io.checkpoint import Checkpointer, resume

    s = FokkerPlanckSolver(square, potential, dt=0.1)
    s.set_initial(lambda x: gaussian_density(x, [0, 0], 0.3 * np.eye(2)), normalize=True)
    s.run(0.2, checkpoint=Checkpointer(tmp_path / "ck.npz"))
    assert abs(s.history["mass"][-1] - 1) < 5e-15 and np.all(np.diff(s.history["energy"]) < 0)   # measured 7.8e-16
    r = FokkerPlanckSolver(square, potential, dt=0.1)
    resume(r, tmp_path / "ck.npz")
    assert np.array_equal(r.rho.x.array, s.rho.x.array)


def test_numpy_potential_named(square):
    with pytest.raises(TypeError, match=r"potential\(x\) must build a UFL expression.*not numpy"):
        fp(square, potential=lambda x: np.exp(x[0]))


def test_nan_drift_named(square):
    with pytest.raises(ValueError, match=r"drift\(x\) contains the non-finite number nan"):
        fp(square, drift=lambda x: ufl.as_vector([x[0] * math.nan, 0.0]))
    with pytest.raises(ValueError, match=r"drift b is not finite at x=\(-.*nan"):      # ln of negative x
        fp(square, drift=lambda x: ufl.as_vector([ufl.ln(x[0]), 0.0]))


def test_huge_beta_named(square):
    with pytest.raises(ValueError, match=r"beta=1e\+09.*underflows"):
        fp(square, potential=lambda x: 0.5 * (x[0] ** 2 + x[1] ** 2) + 0.01, beta=1e9)


def test_bad_petsc_type_named(square):
    s = fp(square, petsc_options={"ksp_type": "nonsense"}, prefix="bad_")
    s.set_initial(lambda x: gaussian_density(x, [0, 0], 0.3 * np.eye(2)), normalize=True)
    with pytest.raises(ValueError, match=r"PETSc rejected the solver options under prefix 'bad_'.*nonsense"):
        s.step()


@pytest.mark.parametrize("t_end, match", [(math.nan, "t_end must be finite"), (-1.0, "before the current time"),
                                          ("x", "must be a number")])
def test_run_bad_t_end(square, t_end, match):
    s = fp(square, dt=0.1)
    s.set_initial(lambda x: gaussian_density(x, [0, 0], 0.3 * np.eye(2)), normalize=True)
    with pytest.raises((ValueError, TypeError), match=match):
        s.run(t_end)


def test_numpy_integer_degree_accepted_float_rejected(square):
    assert fp(square, degree=np.int64(2)).degree == 2
    with pytest.raises(TypeError, match=r"degree=2.0"):
        fp(square, degree=2.0)
    with pytest.raises(ValueError, match=r"quadrature_degree must be >= 0, got quadrature_degree=-1"):
        fp(square, quadrature_degree=-1)


def test_nan_mass_tol_named(square):
    s = fp(square)
    with pytest.raises(ValueError, match="mass_tol=nan"):
        s.set_initial(lambda x: gaussian_density(x, [0, 0], 0.3 * np.eye(2)), mass_tol=math.nan)


def test_galerkin_undershoot_warns():
    """f = exp(|x|^2) on [-3, 3]^2, h = 0.3: P1 Galerkin goes far below zero; it must say so."""
    msh = meshes.rectangle(COMM, [-3, -3], [3, 3], 0.3)
    s = FokkerPlanckSolver(msh, lambda x: ufl.exp(x[0] ** 2 + x[1] ** 2), beta=1.0, dt=0.05, scheme="backward_euler",
                           mass_check_tol=1.0)
    s.set_initial(lambda x: 0 * x[0] + 1 / 36.0, normalize=True)
    with pytest.warns(RuntimeWarning, match=r"undershoots: min rho = .*method='sg'"):
        s.run(0.2)
    assert min(s.history["min_rho"]) < -0.01 * 1 / 36


def test_mesh_too_large_refused():
    """Refused with its memory estimate against the machine's, before anything is allocated (FPJKO_MEMORY_LIMIT
    sets the limit: a mesh that fits the default is refused under a small one)."""
    with pytest.raises(MemoryError, match=r"2e\+10 cells would need about 1.12e\+04 GiB, over the .* GiB this run"):
        meshes.rectangle(COMM, [0, 0], [1, 1], 1e-5)
    os.environ["FPJKO_MEMORY_LIMIT"] = "1M"
    try:
        with pytest.raises(MemoryError, match=r"rectangle 100 x 100 with h=0.01: 2e\+04 cells would need about 11.4 MiB"):
            meshes.rectangle(COMM, [0, 0], [1, 1], 0.01)
    finally:
        del os.environ["FPJKO_MEMORY_LIMIT"]
    assert meshes.rectangle(COMM, [0, 0], [1, 1], 0.01).topology.index_map(2).size_global == 20000


# ------------------------------------------------------------------ particles and distances
def test_wasserstein_1d_rejects_clouds_and_bad_p():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, 1\), got \(10, 2\)"):
        wasserstein_1d(x, x)
    for p in (0, -1, 0.5, math.nan):
        with pytest.raises(ValueError, match="p"):
            wasserstein_1d(np.arange(3.0), np.arange(3.0), p=p)
    with pytest.raises(ValueError, match="p >= 1"):
        sliced_wasserstein(x, x, p=0)
    assert wasserstein_1d(np.zeros((4, 1)), np.ones(4)) == pytest.approx(1.0)


def test_histogram_empty_and_outside(square):
    with pytest.raises(ValueError, match=r"no particles on any rank \(n = 0\)"):
        empirical.histogram(square, np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"outside='drop' is not one of"):
        empirical.histogram(square, np.zeros((3, 2)), outside="drop")


def test_euler_maruyama_arguments():
    x = np.zeros((5, 2))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"drift\(x, t\) returned shape \(5, 1\)"):
        euler_maruyama(x, lambda x, t: -x[:, :1], 1.0, 0.1, 3, rng)
    with pytest.raises(ValueError, match="steps must be >= 0, got steps=-1"):
        euler_maruyama(x, lambda x, t: -x, 1.0, 0.1, -1, rng)
    with pytest.raises((TypeError, ValueError), match="steps must be an integer, got steps=2.5"):
        euler_maruyama(x, lambda x, t: -x, 1.0, 0.1, 2.5, rng)
    with pytest.raises(TypeError, match="seed=1.7"):
        Streams(10, seed=1.7)


def test_noiseless_euler_is_plain_euler():
    x0 = np.array([[1.0, 2.0]])
    x = euler_maruyama(x0, lambda x, t: -x, 1.0, 0.1, 10, None, noise=False)
    assert np.allclose(x, x0 * 0.9 ** 10, rtol=1e-14, atol=0)


# ------------------------------------------------------------------ command line, outputs, resume
def test_cli_petsc_options_keep_values():
    rest, opts = cli.split_petsc(["--dt", "0.1", "-dw_ksp_type", "gmres", "-dw_ksp_rtol=1e-9",
                                  "-dw_ksp_atol", "-1e-30", "-log_view", "--no-png"])
    assert rest == ["--dt", "0.1", "--no-png"]
    assert opts == {"dw_ksp_type": "gmres", "dw_ksp_rtol": "1e-9", "dw_ksp_atol": "-1e-30", "log_view": ""}


def test_demo_rejects_misspelled_flag_and_foreign_petsc_option(capsys):
    with pytest.raises(SystemExit):
        double_well.parse(["--t_end", "0.2"])
    assert "unrecognized arguments: --t_end" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        double_well.parse(["-fp_ksp_type", "gmres"])
    assert "-fp_ksp_type match no solver" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        double_well.parse(["--dt", "nan"])
    assert "--dt must be positive and finite, got nan" in capsys.readouterr().err


def test_demo_petsc_option_reaches_the_solver(tmp_path):
    from petsc4py import PETSc

    double_well.parse(["-dw_ksp_type", "gmres", "-dw_pc_type=jacobi"])
    db = PETSc.Options()
    try:
        assert db.getString("dw_ksp_type") == "gmres" and db.getString("dw_pc_type") == "jacobi"
    finally:
        db.delValue("dw_ksp_type"), db.delValue("dw_pc_type")


def test_output_dir_lock_and_file(tmp_path):
    with OutputDir(COMM, tmp_path / "a"):
        with pytest.raises(RuntimeError, match=r"another run \(pid \d+\) is writing to --out"):
            OutputDir(COMM, tmp_path / "a")
    OutputDir(COMM, tmp_path / "a").close()               # released with its holder
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        OutputDir(COMM, tmp_path / "f")


DEMO = ["--h", "0.3", "--degree", "1", "--dt", "0.02", "--no-png", "--snapshots", "0", "--checkpoint-every", "5"]


def test_resume_appends_to_the_series(tmp_path):
    """A run to T = 0.4, resumed to 0.8: the series holds every frame once, in order, over two segments;
    resuming a finished run adds nothing and loses nothing."""
    out = str(tmp_path / "dw")
    double_well.main(["--out", out, *DEMO, "--t-end", "0.4"])
    first = read_index(os.path.join(out, "rho"))
    double_well.main(["--out", out, *DEMO, "--t-end", "0.8", "--resume"])
    idx = read_index(os.path.join(out, "rho"))
    times = [t for seg in idx["segments"] for t in seg["times"]]
    # dolfinx has ADIOS2 in this environment (docker/packages.txt): the series is VTX, one .bp per segment
    assert idx["format"] == "vtx" and [s["file"] for s in idx["segments"]] == ["rho.bp", "rho.1.bp"], idx
    assert np.allclose(times, np.arange(0, 0.8 + 1e-9, 0.1)) and np.all(np.diff(times) > 0)
    assert idx["segments"][0] == first["segments"][0]
    double_well.main(["--out", out, *DEMO, "--t-end", "0.8", "--resume"])
    assert read_index(os.path.join(out, "rho")) == idx
    with open(os.path.join(out, "history.json")) as fh:
        h = json.load(fh)
    assert h["status"] == "done" and np.isclose(h["history"]["t"][-1], 0.8) and len(h["history"]["t"]) == 41


def test_resume_after_a_kill_drops_stale_frames(tmp_path, square):
    """Frames written after the last checkpoint (a killed run) leave the index on resume."""
    s = fp(square)
    s.set_initial(lambda x: gaussian_density(x, [0, 0], 0.3 * np.eye(2)), normalize=True)
    with SeriesWriter(tmp_path / "rho", [s.rho]) as w:
        for t in (0.0, 0.1, 0.2, 0.3):
            w.write(t)
    with SeriesWriter(tmp_path / "rho", [s.rho], resume_at=0.1) as w:
        for t in (0.1, 0.2):
            w.write(t)
    idx = read_index(tmp_path / "rho")
    assert [seg["times"] for seg in idx["segments"]] == [[0.0, 0.1], [0.2]]


def test_jko_unconverged_step_warns():
    from fpjko.solvers.jko.entropic import EntropicJKO

    msh = meshes.interval(COMM, -3, 3, 0.1)
    j = EntropicJKO(msh, tau=0.1, gamma=0.05, potential=lambda x: 0.5 * x[0] ** 2, max_iter=2)
    j.set_initial(lambda x: gaussian_density(x[:1], [1.0], np.eye(1) * 0.2), normalize=True)
    with pytest.warns(RuntimeWarning, match=r"did not converge: relative change .* after max_iter=2"):
        j.step()
    assert j.history["converged"][-1] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        j2 = EntropicJKO(msh, tau=0.1, gamma=0.05, potential=lambda x: 0.5 * x[0] ** 2)
        j2.set_initial(lambda x: gaussian_density(x[:1], [1.0], np.eye(1) * 0.2), normalize=True)
        j2.step()
    assert j2.history["converged"][-1] is True
    with pytest.raises(ValueError, match="max_iter must be >= 1, got max_iter=0"):
        EntropicJKO(msh, tau=0.1, gamma=0.05, max_iter=0)
    with pytest.raises(ValueError, match="substeps must be >= 1, got substeps=-1"):
        EntropicJKO(msh, tau=0.1, gamma=0.05, substeps=-1)


def test_jko_bad_exponents_named():
    from fpjko.solvers.jko.alg2 import JKOSolver

    with pytest.raises(ValueError, match="cm must be finite, got cm=nan"):
        JKOSolver(meshes.space_time(COMM, [-1], [1], 0.2, 10), 0.1, m=2, cm=math.nan)
    with pytest.raises(ValueError, match="m must be finite, got m=inf"):
        JKOSolver(meshes.space_time(COMM, [-1], [1], 0.2, 10), 0.1, m=math.inf)
    with pytest.raises(ValueError, match="max_iter must be >= 1, got max_iter=0"):
        JKOSolver(meshes.space_time(COMM, [-1], [1], 0.2, 10), 0.1, beta=1.0, max_iter=0)


def test_network_pde_rejects_nan_noise(square):
    from fpjko.samplers.mean_field_nn import TeacherData
    from fpjko.solvers.mean_field.network import network_pde

    data = TeacherData.teacher(8, np.array([[1.0, 0.5]]), seed=0)
    with pytest.raises(ValueError, match="gamma must be finite, got gamma=nan"):
        network_pde(square, data, gamma=math.nan)
    with pytest.raises(ValueError, match="temperature must be >= 0, got temperature=-1"):
        network_pde(square, data, temperature=-1)
