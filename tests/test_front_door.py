"""The front door keeps the solvers' guarantees (issue 34): the initial law is exactly the one written, the
particles' forces and checks are right for every input, sizes are refused with their memory estimate before
anything is allocated, the study compares the problem the user wrote, and `fpjko validate` answers any failure
with one `error:` line. The same checks under `mpirun -n 2`: tests/test_front_door_mpi.py."""

import ast
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from mpi4py import MPI

from conftest import ROOT
from fpjko.model import Model, validate
from fpjko.model.study import _aligned_bins
from fpjko.samplers.interacting import interaction_force
from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.streams import Streams

COMM = MPI.COMM_WORLD
OU1 = dict(d=1, V="0.5*x**2", beta=1.0, domain=([-5.0], [5.0]))


# ---------------------------------------------------------------------------------------------- the initial law
@pytest.mark.parametrize("initial,word", [({"mean": [0.0], "covariance": 0.1}, "covariance"),
                                          ({"mu": [0.0], "sigma": 0.3}, "mu"),
                                          ({"mean": [0.0], "cov": 0.1, "density": "1"}, "mean"),
                                          ("gaussian", "must be a table")])
def test_an_initial_law_with_unknown_keys_is_refused(initial, word):
    """{mean, covariance} or {mu, sigma} used to run the standard Gaussian silently."""
    with pytest.raises((ValueError, TypeError)) as e:
        Model(**OU1, initial=initial)
    assert word in str(e.value) and ("'mean' and 'cov'" in str(e.value) or "table" in str(e.value)), str(e.value)


@pytest.mark.parametrize("density,words", [("x", ["negative at x = [-5.0]", "-5"]),
                                           ("0", ["no mass on the domain"]),
                                           ("1/abs(x)", ["not finite at x = [0.0]"]),
                                           ("log(x + 3)", ["not finite at x = [-4.99", "nan"])])
def test_a_density_formula_is_checked_as_the_pde_side_does(density, words):
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as e:
        Model(**OU1, initial={"density": density})
    assert time.perf_counter() - t0 < 5.0                  # a density of 0 used to loop forever
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize("d,width", [(1, 0.01), (2, 0.02)])
def test_a_peak_narrower_than_any_default_grid_is_sampled_exactly(d, width):
    """A Gaussian bump of width 0.01 on [-7, 7] (the old 65-point grid's spacing is 0.22; its envelope 1.2 max over
    the nodes missed the peak and sampled it 13x too wide): the sample's mean and covariance match the density's
    to Monte-Carlo accuracy (4 standard errors)."""
    c = np.array([0.3, -0.2][:d])
    names = ["x", "y"][:d]
    dens = "exp(-(" + " + ".join(f"({v} - {ci})**2" for v, ci in zip(names, c)) + f")/(2*{width}**2))"
    m = Model(d, V="0", initial={"density": dens}, domain=([-7.0] * d, [7.0] * d))
    n = 40000
    x = m.sample_initial(Streams(n, 3, comm=MPI.COMM_SELF))
    se_mean = width / np.sqrt(n)
    assert np.all(np.abs(x.mean(axis=0) - c) < 4 * se_mean), (x.mean(axis=0), c)
    var = x.var(axis=0)
    se_var = width ** 2 * np.sqrt(2.0 / n)
    assert np.all(np.abs(var - width ** 2) < 4 * se_var), (np.sqrt(var), width)
    law = m.initial
    assert abs(law.mass - (np.sqrt(2 * np.pi) * width) ** d) < 1e-8 * law.mass      # the exact normaliser


def test_the_sampler_and_the_pde_start_from_the_same_law():
    """A skewed density: the particles' mean and variance match the PDE's initial density (its FE interpolant,
    normalised) to Monte-Carlo accuracy; a mesh too coarse for a narrow peak is refused instead of starting the
    PDE from another law."""
    m = Model(1, V="0", initial={"density": "x**2*exp(-2*x)"}, domain=([0.0], [12.0]))
    s = m.fokker_planck(m.mesh(MPI.COMM_SELF, 0.02), degree=2)
    from fpjko.solvers.particles import empirical

    pts, w = empirical.density_as_measure(s.rho, quadrature_degree=6)
    mu = float(w @ pts[:, 0])
    var = float(w @ (pts[:, 0] - mu) ** 2)
    s.close()
    assert abs(mu - 1.5) < 1e-4 and abs(var - 0.75) < 1e-3          # Gamma(3, 1/2): mean 3/2, variance 3/4
    x = m.sample_initial(Streams(40000, 5, comm=MPI.COMM_SELF))[:, 0]
    assert abs(x.mean() - mu) < 4 * np.sqrt(var / len(x)) and abs(x.var() - var) < 4 * np.sqrt(2 * 6.0 / len(x))
    narrow = Model(1, V="0", initial={"density": "exp(-(x - 0.31)**2/(2*0.004**2))"}, domain=([-1.0], [1.0]))
    with pytest.raises(ValueError, match="does not resolve the initial law"):
        narrow.fokker_planck(narrow.mesh(MPI.COMM_SELF, 0.1))


def test_a_gaussian_outside_the_domain_is_refused_by_the_study():
    m = Model(1, V="0.5*x**2", initial={"mean": [4.5], "cov": 0.25}, domain=([-5.0], [5.0]))
    assert abs(m.initial.mass - 0.841345) < 1e-5                    # P(X < 5) = Phi(1)
    with pytest.raises(ValueError, match=r"15.9% of its mass outside the domain"):
        validate(m, [10, 20], t=0.01, dt=0.01, echo=False, progress=False)


@pytest.mark.parametrize("V", ["nan", "inf", float("nan"), float("inf"), "1e999", "1/0"])
def test_a_potential_that_is_not_finite_is_refused(V):
    """V = nan or inf used to run the particles as if V = 0."""
    with pytest.raises(ValueError):
        Model(**{**OU1, "V": V})


def test_nans_from_the_model_are_named_not_blamed_on_dt():
    with pytest.raises(ValueError, match=r"V is not finite at x = \[-5.0\] of the domain.*sqrt"):
        Model(**{**OU1, "V": "sqrt(x)"})
    m = Model(1, V="sqrt(x)", initial={"mean": [2.0], "cov": 1.0})
    with pytest.raises(FloatingPointError) as e:
        m.particles(64, 0, dt=0.01, t_end=0.05, comm=MPI.COMM_SELF)
    assert "grad V = [nan] is not finite" in str(e.value) and "not a time-step problem" in str(e.value)
    assert "dt=" not in str(e.value)
    # log|z| at z = 0: the self pair is left out of the direct sum, so the Coulomb-like particles run
    lg = Model(1, V="0.5*x**2", W="log(abs(z))", initial={"mean": [0.0], "cov": 1.0})
    _, x = lg.particles(50, 0, dt=1e-3, t_end=0.01, force="direct", comm=MPI.COMM_SELF)
    assert np.all(np.isfinite(x))


# ---------------------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("D", [2.0, 2, [[2.0, 0.0], [0.0, 2]], [[2, 0], [0, 2]]])
def test_a_constant_isotropic_D_is_c_times_the_identity_whatever_its_number_type(D):
    m = Model(2, V="0.5*(x**2 + y**2)", D=D, initial={"mean": [0, 0], "cov": 0.3}, domain=([-3, -3], [3, 3]))
    assert m.D_scale == 2.0 and m.gradient_flow
    s = m.jko(m.mesh(MPI.COMM_SELF, 0.6), tau=0.05)                 # refused as anisotropic before
    assert abs(s.eps - 2.0) < 1e-15                                # the entropy weight c / beta = 2 / 1
    s.close()
    assert Model(2, V="0", D=[[2.0, 0.1], [0.1, 2.0]]).D_scale is None


@pytest.mark.parametrize("L,h", [(10.5, 1.0), (14.0, 0.3), (8.0, 0.25), (14.0, 0.07), (10.3, 0.2)])
def test_histogram_bins_divide_the_cells_of_both_meshes_of_the_floor(L, h):
    """The finer mesh of the floor has exactly twice the coarser one's cells per side (for L/h with a fractional part
    a mesh of size h/2 would not), and the bins divide the coarser count: every FE cell of both lies in one bin.
    For L = 10.3, h = 0.2 the floor of the histogram L1 was 0.11 (bins across cells), 9e-3 for L = 10."""
    import math

    (bins,) = _aligned_bins(([0.0], [L]), h, 1)
    coarse = math.ceil(L / h - 1e-12)
    assert coarse % bins == 0 and (2 * coarse) % bins == 0
    within = [k for k in range(4, 33) if coarse % k == 0]
    assert bins == (max(within) if within else min(k for k in range(33, coarse + 1) if coarse % k == 0))


def test_the_floor_of_a_domain_not_a_multiple_of_h():
    """Domain [-5, 5.3] with h = 0.2: the histogram floor stays at the FE error (it was 0.11 with bins cutting cells)."""
    m = Model(1, V="0.5*x**2", initial={"mean": [0.3], "cov": 0.25}, domain=([-5.0], [5.3]))
    r = validate(m, [250, 1000], t=0.1, repeats=2, dt=0.01, h=0.2, degree=1, fe_dt=0.01, echo=False,
                 progress=False, comm=MPI.COMM_SELF)
    assert r["metrics"]["histogram L1"]["floor"] < 0.01 and r["fe"]["dofs"] == [53, 105], r["metrics"]["histogram L1"]


# ---------------------------------------------------------------------------------------------- forces
KERNEL2 = dict(d=2, V="(x**2 - 1)**2 + 0.5*y**2", W="-exp(-(z0**2 + z1**2)/2)", beta=2.0,
               initial={"mean": [0.0, 0.0], "cov": 0.2}, domain=([-2.5, -2.5], [2.5, 2.5]))


def test_force_auto_is_the_mesh_for_many_particles_and_the_direct_sum_for_few():
    m = Model(**KERNEL2)
    assert m.choose_force("auto", 511) == "direct" and m.choose_force("auto", 512) == "mesh"
    assert Model(**{**KERNEL2, "domain": None}).choose_force("auto", 10**5) == "direct"
    assert Model(**{**KERNEL2, "W": 1.5}).choose_force("auto", 10) == "moments"
    _, auto = m.particles(600, 4, dt=1e-3, t_end=0.01, comm=MPI.COMM_SELF)
    _, mesh = m.particles(600, 4, dt=1e-3, t_end=0.01, force="mesh", comm=MPI.COMM_SELF)
    _, direct = m.particles(600, 4, dt=1e-3, t_end=0.01, force="direct", comm=MPI.COMM_SELF)
    assert np.array_equal(auto, mesh)
    assert np.abs(mesh - direct).max() < 1e-6                # the mesh force's error (O(h^2)) over 10 steps


def test_particles_outside_the_mesh_get_the_direct_sum():
    """force='mesh' with particles outside the domain (69 of 3000): the particles inside get the mesh force plus
    their exact pairs with those outside, the ones outside the exact direct sum."""
    m = Model(**KERNEL2)
    st = Streams(3000, 1, comm=MPI.COMM_SELF)
    x = np.random.default_rng(0).normal(size=(3000, 2))
    pm = ParticleMesh(m.grad_W, *m.domain)
    with pytest.warns(RuntimeWarning, match="outside the particle mesh's box"):
        F = particle_mesh_force(x, st, pm, outside="direct", grad_W=m.grad_W)
    D = interaction_force(x, st, grad_W=m.grad_W)
    out = ~np.all((x >= -2.5) & (x <= 2.5), axis=1)
    assert out.sum() == 69
    assert np.abs(F - D)[out].max() < 1e-15 * np.abs(D).max() + 1e-300
    assert np.abs(F - D)[~out].max() < 3e-4 * np.abs(D).max()      # measured 1.25e-4: the grid's O(h^2)


def test_a_nan_particle_is_named_not_an_index_error():
    st = Streams(50, 0, comm=MPI.COMM_SELF)
    x = np.zeros((50, 2))
    x[7, 1] = np.nan
    pm = ParticleMesh(lambda z: -z, [-1, -1], [1, 1], 16)
    with pytest.raises(ValueError, match=r"particle 7 is not finite"):
        particle_mesh_force(x, st, pm)


# ---------------------------------------------------------------------------------------------- sizes
def test_sizes_are_refused_with_their_memory_estimate_before_allocating():
    m = Model(**OU1)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(MemoryError, match=r"n = 1e\+10 particles in 1D would need about .* GiB"):
        m.particles(10**10, 0, dt=0.1, t_end=0.1, comm=MPI.COMM_SELF)
    with pytest.raises(MemoryError, match=r"h = 5e-10 .*dofs.*GiB"):
        validate(m, [10, 20], t=0.1, dt=0.1, h=1e-9, echo=False, progress=False, comm=MPI.COMM_SELF)
    with pytest.raises(MemoryError, match="cells"):
        m.mesh(MPI.COMM_SELF, 1e-9)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20 and time.perf_counter() - t0 < 10, (peak, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------- the study
def test_the_study_checks_out_first_and_shows_its_progress(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("")
    m = Model(**OU1, initial={"mean": [0.5], "cov": 0.1})
    t0 = time.perf_counter()
    with pytest.raises(NotADirectoryError, match="is a file"):
        validate(m, [50, 100], t=0.1, dt=0.01, h=0.1, degree=1, echo=False, out=str(target), comm=MPI.COMM_SELF)
    assert time.perf_counter() - t0 < 2.0                      # before the PDE and the particles ran
    capsys.readouterr()
    validate(m, [50, 100], t=0.1, dt=0.01, h=0.1, degree=1, repeats=2, echo=False, comm=MPI.COMM_SELF)
    err = capsys.readouterr().err
    assert "validate: 4 particle runs" in err and "[1/4] n = 50, seed 0" in err and "left)" in err, err
    assert "[4/4] n = 100, seed 1000" in err and "done)" in err and "the PDE on h = 0.05" in err
    validate(m, [50, 100], t=0.1, dt=0.01, h=0.1, degree=1, repeats=2, echo=False, comm=MPI.COMM_SELF, progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- the CLI
TOML = '''name = "m"
d = 1
V = "0.5*x**2"
domain = [[-5.0], [5.0]]
[initial]
mean = [0.5]
cov = 0.1
[study]
ns = [50, 100]
t = 0.02
repeats = 2
'''


@pytest.mark.parametrize("edit,args,words", [
    (None, ["--h", "0"], ["h must be positive"]),
    (None, ["--t", "-1"], ["t must be positive"]),
    (None, ["--ns", "100", "50"], ["increasing", "[100, 50]"]),
    (("mean = [0.5]\ncov = 0.1", 'density = "0"'), [], ["no mass on the domain"]),
    (("[initial]\nmean = [0.5]\ncov = 0.1", 'initial = "gaussian"'), [], ["initial must be a table"]),
    (("cov = 0.1", "covariance = 0.1"), [], ["unknown key ['covariance']"]),
    (None, ["--ns", "10", "10000000000"], ["n = 1e+10 particles", "GiB"]),
    (("ns = [50, 100]", "ns = [50, 1e10]"), [], ["n must be an integer"]),
    (None, ["--h", "1e-9"], ["dofs", "GiB", "take a larger h"]),
    (('domain = [[-5.0], [5.0]]', 'domain = "box"'), [], ["domain must be (lower, upper)", "'box'"]),
    (('V = "0.5*x**2"', 'V = "sqrt(x)"'), [], ["V is not finite at x = [-5.0]"]),
    (('V = "0.5*x**2"', 'V = "9**9**9**9"'), [], ["too large"]),
    (None, ["--dt", "0.003"], ["not a whole number of particle steps"]),
    (None, ["--force", "bogus"], ["invalid choice: 'bogus'"]),
    (None, ["--bogus", "1"], ["unrecognized arguments: --bogus"]),
    (None, ["--out", "FILE"], ["is a file"]),
])
def test_every_failure_of_the_cli_is_one_error_line(tmp_path, edit, args, words):
    text = TOML if edit is None else TOML.replace(*edit)
    assert edit is None or text != TOML
    path = tmp_path / "model.toml"
    path.write_text(text)
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "fpjko.cli", "validate", str(path), "--quiet", *args],
                       capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert all(w in lines[0] for w in words), lines[0]


# ---------------------------------------------------------------------------------------------- found by a probe
@pytest.mark.parametrize("field", ["V", "b", "D", "density", "W"])
def test_erf_works_in_every_field(field):
    """erf is one of the allowed functions: numpy has none (it was lambdified to math.erf and failed on arrays)."""
    kw = dict(d=1, V="0.5*x**2", domain=([-3.0], [3.0]), initial={"mean": [0.0], "cov": 0.2})
    kw.update({"V": {"V": "0.5*x**2 + 0.1*erf(x)"}, "b": {"b": ["0.1*erf(x)"]}, "D": {"D": [["1 + 0.2*erf(x)**2"]]},
               "density": {"initial": {"density": "1 + erf(x)"}}, "W": {"W": "-erf(z**2)"}}[field])
    m = Model(**kw)
    _, x = m.particles(64, 0, dt=0.01, t_end=0.02, comm=MPI.COMM_SELF)
    assert np.all(np.isfinite(x))
    s = m.fokker_planck(m.mesh(MPI.COMM_SELF, 0.2), dt=0.01)
    s.step()
    assert abs(s.history["mass"][-1] - 1) < 1e-10
    s.close()


@pytest.mark.parametrize("kw,words", [
    (dict(W="1.0"), ["W = 1.00000000000000 is a constant", "no force"]),
    (dict(initial={"mean": [8.0], "cov": 0.1}), ["no mass in the domain"]),
    (dict(V="sqrt(-1)*x**2"), ["is complex"]),
    (dict(V="x**100.0"), ["power 100", "at most 64"]),
])
def test_more_declarations_are_refused(kw, words):
    with pytest.raises(ValueError) as e:
        Model(**{**OU1, **kw})
    assert all(w in str(e.value) for w in words), str(e.value)


def test_a_sympy_symbol_is_the_models_by_name():
    import sympy as sp

    m = Model(1, V=sp.Symbol("x") ** 2 / 2)                       # made without real=True
    assert m.V == m.xs[0] ** 2 / 2


def test_a_state_that_is_no_dict_is_refused():
    m = Model(**OU1, initial={"mean": [0.0], "cov": 0.2})
    s = m.fokker_planck(m.mesh(MPI.COMM_SELF, 0.5))
    with pytest.raises(TypeError, match="takes the dict of a state_dict"):
        s.load_state_dict(None)
    s.close()


def test_study_sizes_of_seeds_and_directions_are_refused():
    m = Model(**OU1, initial={"mean": [0.0], "cov": 0.2})
    with pytest.raises(MemoryError, match="repeats = 1000000000000 seeds"):
        validate(m, [10, 20], t=0.1, dt=0.1, repeats=10**12, echo=False, progress=False, comm=MPI.COMM_SELF)
    with pytest.raises(MemoryError, match="n_projections = 1000000000000 directions"):
        validate(Model(2, V="0", domain=([-3, -3], [3, 3]), initial={"mean": [0, 0], "cov": 0.2}), [10, 20], t=0.1,
                 dt=0.1, n_projections=10**12, echo=False, progress=False, comm=MPI.COMM_SELF)
    with pytest.raises(TypeError, match="cells must be an integer, got cells='many'"):
        Model(**KERNEL2).particles(100, 0, dt=0.01, t_end=0.01, force="mesh", cells="many", comm=MPI.COMM_SELF)


def test_the_chaos_study_refuses_what_it_cannot_measure(tmp_path):
    from fpjko.model.chaos import chaos_study, load_snapshots

    def save(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return str(tmp_path / name)
    z = np.zeros((10, 2))
    for path, words in [
        (save("dup.npz", N400_s1_a=z, N0400_s1_a=z), ["name the same run"]),
        (save("cplx.npz", N10_s0_a=z + 1j, N10_s0_b=z, N20_s0_a=np.zeros((20, 2)), N20_s0_b=np.zeros((20, 2))),
         ["real numbers", "complex"]),
        (save("q0.npz", N10_s0_a=np.zeros((10, 0)), N10_s0_b=np.zeros((10, 0)), N20_s0_a=np.zeros((20, 0)),
              N20_s0_b=np.zeros((20, 0))), ["q >= 1"]),
        (save("huge.npz", N10_s0_a=z + 1e308, N10_s0_b=z, N20_s0_a=np.zeros((20, 2)), N20_s0_b=np.zeros((20, 2))),
         ["too large"]),
    ]:
        with pytest.raises(ValueError) as e:
            chaos_study(path, echo=False, comm=MPI.COMM_SELF)
        assert all(w in str(e.value) for w in words), (path, str(e.value))
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="trunc.npz.*not a snapshot file"):
        load_snapshots(str(tmp_path / "trunc.npz"))
    good = save("ok.npz", N10_s0_a=z, N10_s0_b=z + 1, N20_s0_a=np.zeros((20, 2)), N20_s0_b=np.ones((20, 2)))
    with pytest.raises(ValueError, match="theory must be finite"):
        chaos_study(good, theory=float("nan"), echo=False, comm=MPI.COMM_SELF)


def test_a_binary_file_is_no_model(tmp_path):
    from fpjko.model import files

    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match=r"bin.toml: not a TOML file"):
        files.load(str(tmp_path / "bin.toml"))


# ---------------------------------------------------------------------------------------------- found by a re-probe
@pytest.mark.parametrize("d, field, expr, where", [
    (1, "V", "1/(x-0.123456)**2", [0.1235]),
    (1, "V", "log(abs(x-0.3))", [0.3]),
    (1, "b", ["1/(x-0.2)"], [0.2]),
    (1, "D", [["1 + 1/(x-0.7)**2"]], [0.7]),
    (2, "V", "1/((x-0.1234)**2 + (y-0.777)**2)", [0.1234, 0.777]),
    (3, "V", "log((x-0.1234)**2 + (y-0.777)**2 + (z-0.3)**2)", [0.1234, 0.777, 0.3]),
])
def test_a_pole_between_the_checking_grid_points_is_refused(d, field, expr, where):
    """V = 1/(x - 0.123456)^2 was finite at every checking point, and its particles were flung to 1e7 on [-4, 4] while
    validate returned W1 = 85786 without a word. The zero of a denominator (or of a log's argument) is found between
    the grid's points, named, and located (to the grid's spacing)."""
    kw = {"V": "0.5*(x**2)" if field != "V" else expr}
    if field != "V":
        kw[field] = expr
    with pytest.raises(ValueError, match=f"{field} has a pole in the domain near x") as e:
        Model(d, beta=1.0, domain=([-4.0] * d, [4.0] * d), **kw)
    near = np.array(ast.literal_eval(str(e.value).split("near x = ")[1].split(", where")[0]))
    assert np.max(np.abs(near - np.array(where))) < 4e-3, str(e.value)


@pytest.mark.parametrize("V", ["1/(1 + x**2)", "exp(-x**2)/(2 + sin(x))", "log(x**2 + 1)", "(x**2 - 1)**2"])
def test_formulas_without_poles_pass_the_pole_check(V):
    Model(1, V=V, beta=1.0, domain=([-4.0], [4.0]))


def test_validate_refuses_particles_that_leave_the_domain():
    """A drift that pushes the particles out of the box: the PDE with no-flux walls is not their law (the re-probe's
    pole model returned W1 = 85786 silently)."""
    m = Model(1, V="-x", beta=1.0, initial={"mean": [0.0], "cov": 0.04}, domain=([-2.0], [2.0]))
    with pytest.raises(ValueError, match=r"n = 50, seed 0: \d+ of the particles .* are outside the domain"):
        validate(m, ns=[50, 100], t=3.0, repeats=2, dt=0.01, h=0.2, plot=False, echo=False, progress=False)


def test_an_initial_law_with_no_mass_on_the_mesh_is_named():
    """A peak between the nodes of a coarse mesh: its interpolant is 0 everywhere (a ZeroDivisionError before)."""
    m = Model(1, V="0.5*x**2", beta=1.0, initial={"mean": [1.234], "cov": 1e-6}, domain=([-4.0], [4.0]))
    with pytest.raises(ValueError, match="no mass on this mesh"):
        m.fokker_planck(m.mesh(MPI.COMM_SELF, 0.5))


def test_an_empty_initial_table_is_refused():
    with pytest.raises(ValueError, match="initial is an empty table"):
        Model(1, V="0.5*x**2", beta=1.0, initial={}, domain=([-4.0], [4.0]))


def test_a_diffusion_that_is_not_finite_is_named_as_such():
    m = Model(1, V="x", D=[["sqrt(x)"]], beta=1.0, initial={"mean": [0.5], "cov": 0.01}, domain=([0.05], [4.0]))
    with pytest.raises(ValueError, match=r"diffusion D is not finite \(the model's value"):
        with np.errstate(invalid="ignore"):
            m.particles(2000, dt=0.01, t_end=1.0)


def test_a_callback_that_spoils_a_particle_is_named():
    """It was blamed on dt ('particles blew up ... dt is too large')."""
    m = Model(1, V="0.5*x**2", beta=1.0, initial={"mean": [0.5], "cov": 0.09}, domain=([-4.0], [4.0]))

    def cb(streams, k, t, x):
        if k == 2:
            x[-1, 0] = np.nan
    with pytest.raises(ValueError, match=r"the callback left particle 599 not finite after step 2"):
        m.particles(600, dt=0.01, t_end=0.1, callback=cb)


def test_the_log_kernel_on_the_particle_mesh_in_1d_names_its_force():
    m = Model(1, V="0.5*x**2", W="log(abs(z))", beta=1.0, initial={"mean": [0.5], "cov": 0.09},
              domain=([-4.0], [4.0]))
    with pytest.raises(ValueError, match=r"the particle mesh convolves the force kernel grad W.*force='direct'"):
        m.particles(600, dt=0.01, t_end=0.02, force="mesh")


def test_a_chaos_file_that_is_not_an_npz_is_named(tmp_path):
    from fpjko.model.chaos import load_snapshots

    (tmp_path / "x.toml").write_text("V = 'x'\n")
    with pytest.raises(ValueError, match=r"is not a snapshot file: an .npz"):
        load_snapshots(str(tmp_path / "x.toml"))
