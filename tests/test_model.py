"""fpjko.model: a mean-field model declared once (formulas parsed without evaluating Python), its derived numpy and
UFL forms, its structure, both sides, and the validated comparison with rates."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from mpi4py import MPI

from conftest import ROOT, run_mpi
from fpjko.model import ExpressionError, Model, parse, validate

COMM = MPI.COMM_WORLD
X = {"x": sp.Symbol("x"), "y": sp.Symbol("y")}


# ---------------------------------------------------------------------------------------------- formulas
@pytest.mark.parametrize("text,token", [
    ("__import__('os').system('true')", "__import__('os').system"),
    ("x.real", "x.real"),
    ("(lambda q: q)(x)", "lambda q: q"),
    ("x + q", "q"),
    ("exp(x, base=2)", "exp(x, base=2)"),
    ("'x' * 2", "'x'"),
    ("x[0]", "x[0]"),
    ("x if y else 1", "x if y else 1"),
    ("x @ y", "x @ y"),
    ("True + x", "True"),
    ("getattr(x, 'real')", "getattr"),
    ("().__class__.__base__.__subclasses__()", "().__class__.__base__.__subclasses__"),
    ("(q := x)", "q := x"),
    ("[q for q in (x,)]", "[q for q in (x,)]"),
    ("f'{x}'", "f'{x}'"),
    ("exp(*[x])", "exp(*[x])"),
])
def test_a_formula_that_is_not_plain_arithmetic_is_refused_naming_the_token(text, token):
    """Nothing is evaluated: the tree is walked and anything but numbers, the symbols, + - * / ** and the listed
    functions is refused, naming the token (an import, an attribute, a lambda, an unknown name, a keyword, a
    string, a subscript, a conditional, a matrix product, a bool)."""
    with pytest.raises(ExpressionError) as e:
        parse(text, X, "V")
    named = str(e.value).split(" is not allowed in ")[0]
    assert named.endswith(repr(token)) and "is not allowed" in str(e.value), str(e.value)


def test_plain_formulas_parse_to_sympy():
    e = parse("(x**2 - 1)**2 + 0.5*y**2 - 2*exp(-x) + sqrt(abs(y)) + pi", X)
    x, y = X["x"], X["y"]
    assert sp.simplify(e - ((x ** 2 - 1) ** 2 + sp.Rational(1, 2) * y ** 2 - 2 * sp.exp(-x) + sp.sqrt(sp.Abs(y))
                            + sp.pi)) == 0
    with pytest.raises(ExpressionError, match="not a formula"):
        parse("x +", X)


# ---------------------------------------------------------------------------------------------- derived forms
MODEL_2D = dict(d=2, V="(x**2 - 1)**2 + 0.5*y**2 + 0.3*sin(x*y)", W="-exp(-(z0**2 + z1**2)/2) + 0.1*z0**2*z1**2",
                D=[["1 + 0.5*exp(-x**2)", "0.2*tanh(y)"], ["0.2*tanh(y)", "1.5"]], b=["-0.5*y", "0.5*x"], beta=2.0,
                domain=([-2, -2], [2, 2]))


def test_derived_gradients_equal_finite_differences():
    """grad V and grad W (sympy's derivatives, vectorised) against central differences of V and W to 1e-7."""
    m = Model(**MODEL_2D)
    rng = np.random.default_rng(1)
    p, e = rng.uniform(-1.5, 1.5, (50, 2)), 1e-5
    for f, g in ((m.V_np, m.grad_V), (m.W_np, m.grad_W)):
        fd = np.stack([(f(p + e * np.eye(2)[i]) - f(p - e * np.eye(2)[i])) / (2 * e) for i in range(2)], axis=1)
        assert np.abs(g(p) - fd).max() < 1e-7 * max(1.0, np.abs(fd).max()), np.abs(g(p) - fd).max()
    D = m.D_np(p)
    assert D.shape == (50, 2, 2) and np.allclose(D[:, 0, 0], 1 + 0.5 * np.exp(-p[:, 0] ** 2), rtol=1e-15)
    assert np.allclose(m.b_np(p), np.stack([-0.5 * p[:, 1], 0.5 * p[:, 0]], axis=1), rtol=1e-15)


def test_ufl_and_numpy_agree_at_the_nodes():
    """V, D and b interpolated from their UFL forms equal the numpy forms at the dofs to round-off."""
    import dolfinx.fem
    from fpjko.solvers.core.compat import interpolate

    m = Model(**MODEL_2D)
    msh = m.mesh(COMM, 0.2)
    x = __import__("ufl").SpatialCoordinate(msh)
    V = dolfinx.fem.functionspace(msh, ("Lagrange", 2))
    pts = V.tabulate_dof_coordinates()[:, :2]
    u = interpolate(dolfinx.fem.Function(V), m.V_ufl(x))
    assert np.abs(u.x.array - m.V_np(pts)).max() < 1e-13
    kw = m.fe_coefficients()
    for i in range(2):
        for j in range(2):                             # a constant entry keeps the mesh too (x[0] - x[0])
            dij = interpolate(dolfinx.fem.Function(V), kw["diffusion"](x)[i][j])
            assert np.abs(dij.x.array - m.D_np(pts)[:, i, j]).max() < 1e-13
        bi = interpolate(dolfinx.fem.Function(V), kw["drift"](x)[i])
        assert np.abs(bi.x.array - m.b_np(pts)[:, i]).max() < 1e-13


def test_the_model_knows_its_structure():
    assert Model(1, V="x**2/2", W=1.0).interaction_kind == "quadratic"
    q = Model(2, V="x**2/2", W="0.75*(z0**2 + z1**2)")
    assert q.interaction_kind == "quadratic" and q.k == pytest.approx(1.5)
    assert Model(1, V="x**2/2", W="z**4 - z**2").interaction_kind == "polynomial"
    assert Model(1, V="x**2/2", W="-exp(-z**2)").interaction_kind == "kernel"
    box = ([-2.0, -2.0], [2.0, 2.0])
    g = Model(2, V="x**2/2 + y**2/2", D=[[1, 0.5], [0.5, 2]], domain=box)   # anisotropic: no W2 gradient flow
    assert not g.gradient_flow and not g.gibbs and g.D_constant
    with pytest.raises(ValueError, match="an anisotropic D .*NewtonJKO\\(D=...\\) takes D directly"):
        g.jko(g.mesh(COMM, 0.5), 0.1)
    c = Model(2, V="x**2/2 + y**2/2", D=[[2, 0], [0, 2]], beta=3.0, domain=box)   # D = 2 I: temperature 2/beta
    assert c.gradient_flow and c.D_scale == 2.0
    assert c.jko(c.mesh(COMM, 0.5), 0.1).eps == pytest.approx(2.0 / 3.0)      # the entropy's weight c / beta
    assert Model(1, V="x**2/2").gibbs
    nb = Model(**MODEL_2D)
    assert not nb.gradient_flow and not nb.gibbs


def test_bad_models_are_refused_naming_the_value():
    with pytest.raises(ValueError, match=r"W must be even, W\(z\) = W\(-z\): W\(\[.*\]\) = .* but W\(-z\) = "):
        Model(1, V="x**2", W="z**3 + z**2")
    with pytest.raises(ValueError, match=r"D must be positive definite on the domain: at x = \[-2.0, .*\] D = "):
        Model(2, V="x**2", D=[["x", "0"], ["0", "1"]], domain=([-2, -2], [2, 2]))
    with pytest.raises(ValueError, match="D must be symmetric"):
        Model(2, V="x**2", D=[["1", "x"], ["0", "1"]])
    with pytest.raises(ValueError, match="eigenvalue -1 of D"):
        Model(2, V="x**2", D=[[1, 0], [0, -1]])
    with pytest.raises(ExpressionError, match="the undefined name 'w'"):
        Model(1, V="w**2")
    with pytest.raises(ExpressionError, match=r"the undefined name 'x'.*symbols \['z'"):
        Model(1, V="x**2", W="x**2")                       # W is a function of z, not of x
    with pytest.raises(ExpressionError, match="b must be a vector of 2 formulas"):
        Model(2, V="x**2", b=["x"])
    m = Model(**MODEL_2D)
    with pytest.raises(ValueError, match="is not a Wasserstein gradient flow .* a drift b, an x-dependent D"):
        m.jko(m.mesh(COMM, 0.5), 0.1)
    with pytest.raises(ValueError, match="n must be >= 1, got n=0"):
        m.particles(0)
    with pytest.raises(ValueError, match="is 2D, the mesh is 1D: mismatched meshes"):
        m.fokker_planck(__import__("fpjko").meshes.interval(COMM, -1, 1, 0.5))
    with pytest.raises(ValueError, match="not a whole number of particle steps"):
        m.particles(10, dt=0.03, t_end=0.1)


def test_particles_split_over_ranks_are_the_serial_ones():
    """The model's particles are its samplers' (independent noise per particle, one stream per block): 2 ranks
    give the serial particles bitwise, also with a rank that has none (n = 3 < one block)."""
    for n in (3000, 3):
        r1, r2 = run_mpi(1, "mpi_model.py", "particles", n), run_mpi(2, "mpi_model.py", "particles", n)
        assert r1["x"] == r2["x"] and len(r1["x"]) == n


# ---------------------------------------------------------------------------------------------- the comparison
OU = dict(d=1, V="0.5*x**2", beta=1.0, initial={"mean": [1.5], "cov": 0.09}, domain=([-7.0], [7.0]), name="ou_1d")


def test_validate_ou_1d_has_the_monte_carlo_rate(tmp_path):
    """The 1D OU model: W1 between the particles and the FE density at t = 0.5 decays with slope in [-0.6, -0.4]
    (measured -0.495) down to the FE floor (the h vs h/2 distance, 2e-5: not reached here), the table, JSON and
    plot written; the errors of the mean and of the potential energy decay too."""
    r = validate(Model(**OU), [100, 400, 1600, 6400], t=0.5, repeats=4, dt=1e-3, h=0.07, degree=2, fe_dt=0.005,
                 out=str(tmp_path))
    w1 = r["metrics"]["W1"]
    assert w1["floor"] < 1e-4 and not w1["stopped_at_floor"] and w1["fit_ns"] == [100, 400, 1600, 6400]
    # the theory's -1/2 in the intervals of the seeds' slopes (measured W1 -0.495 [-0.606, -0.383], histogram L1 on
    # bins aligned with the FE cells -0.496 [-0.566, -0.426], the potential energy int V d(mu_n - rho) -0.517
    # [-0.605, -0.428]), each interval narrow enough to bind
    for k in ("W1", "histogram L1", "energy error"):
        lo, hi = r["metrics"][k]["interval"]
        assert lo <= -0.5 <= hi and hi - lo < 0.5, (k, r["metrics"][k])
    assert set(r["metrics"]) == {"W1", "histogram L1", "histogram KL", "mean error", "covariance error",
                                 "energy error"} and r["metrics"]["histogram L1"]["floor"] < 1e-5
    # KL of the histogram falls like (bins - 1) / (2n) asymptotically (slope -1); at these n measured -0.856
    # [-0.98, -0.73]: a band; the mean's interval is wide with 4 seeds (half-width 0.3): a band
    assert -1.2 < r["metrics"]["histogram KL"]["slope"] < -0.6
    assert -0.8 < r["metrics"]["mean error"]["slope"] < -0.2
    assert r["fe"]["mass_drift"] < 1e-12
    saved = json.loads((tmp_path / "validate.json").read_text())
    assert saved["metrics"]["W1"]["mean"] == pytest.approx(w1["mean"]) and (tmp_path / "validate.png").stat().st_size


def test_validate_reports_where_the_floor_stops_the_fit():
    """On a coarse mesh (P1, h = 0.35) the FE floor is reached: the fit stops at the first n whose distance is within
    3x the floor, says so, and fits the n before it."""
    ns = [100, 400, 1600, 25600]
    r = validate(Model(**OU), ns, t=0.5, repeats=2, dt=1e-3, h=0.35, degree=1, fe_dt=0.05, echo=False)
    w1 = r["metrics"]["W1"]
    first = next(n for n, m in zip(ns, w1["mean"]) if m <= 3 * w1["floor"])
    assert w1["stopped_at_floor"] and w1["stopped_at_n"] == first and first > 400, w1
    assert w1["fit_ns"] == [n for n in ns if n < first] and -1.0 < w1["slope"] < 0.0


def test_validate_kernel_interaction_and_state_dependent_diffusion_2d():
    """A 2D model with a non-polynomial W (Gaussian kernel) and an x-dependent D through the same study, n up to 1e4
    (force='auto': the particle mesh from 512 particles): the theory's -1/2 lies in the interval of the histogram
    L1's slope over every n, sliced W2 falls too until its FE floor stops the fit, KL at about -1."""
    m = Model(2, V="0.5*(x**2 + y**2)", W="-exp(-(z0**2 + z1**2)/2)", D=[["1 + 0.5*exp(-x**2)", "0"], ["0", "1"]],
              beta=1.0, initial={"mean": [0.5, 0.0], "cov": 0.25}, domain=([-4, -4], [4, 4]), name="kernel_2d")
    r = validate(m, [625, 2500, 10000], t=0.2, repeats=4, dt=0.02, h=0.25, degree=1, fe_dt=0.02, echo=False)
    sw, l1, kl = r["metrics"]["sliced W2"], r["metrics"]["histogram L1"], r["metrics"]["histogram KL"]
    lo, hi = l1["interval"]
    assert lo <= -0.5 <= hi and hi - lo < 0.5 and l1["fit_ns"] == [625, 2500, 10000], l1
    assert -0.75 < sw["slope"] < -0.3, sw
    assert -1.2 < kl["slope"] < -0.6, kl


def test_cli_validate_reads_a_model_file_and_refuses_code(tmp_path):
    """`fpjko validate MODEL.toml` runs the study from a file; a formula that is code is refused naming it."""
    good = tmp_path / "ou.toml"
    good.write_text('name = "ou"\nd = 1\nbeta = 1.0\nV = "0.5*x**2"\ndomain = [[-7.0], [7.0]]\n'
                    '[initial]\nmean = [1.5]\ncov = 0.09\n[study]\nns = [100, 400]\nt = 0.2\nrepeats = 2\n'
                    'dt = 0.001\nh = 0.1\n')
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "fpjko.cli", "validate", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    p = run(good, "--out", tmp_path / "out", "--ns", 100, 400, 1600)
    assert p.returncode == 0, p.stderr[-2000:]
    serial = json.loads((tmp_path / "out" / "validate.json").read_text())
    assert "W1: slope" in p.stdout and serial["ns"] == [100, 400, 1600] and serial["ranks"] == 1
    p = run(good, "--out", tmp_path / "out2", "--ns", 100, 400, 1600, "-n", 2)          # under mpirun -n 2
    assert p.returncode == 0, p.stderr[-2000:]
    two = json.loads((tmp_path / "out2" / "validate.json").read_text())
    assert two["ranks"] == 2 and np.allclose(two["metrics"]["W1"]["mean"], serial["metrics"]["W1"]["mean"],
                                             rtol=1e-8)
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace('"0.5*x**2"', '"__import__(\'os\').system(\'touch ' + str(tmp_path / "pwned") + '\')"'))
    p = run(bad)
    assert p.returncode != 0 and f"error: {bad}: V: the function" in p.stderr and "__import__('os').system" in p.stderr
    assert "is not allowed" in p.stderr and "Traceback" not in p.stderr and not (tmp_path / "pwned").exists()
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr            # one error line
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(good.read_text().replace("beta = 1.0", "beta = 1.0\ntemperature = 2"))
    p = run(wrong)
    assert p.returncode != 0 and "unknown keys ['temperature']" in p.stderr


@pytest.mark.mpi
def test_validate_on_two_ranks_equals_serial():
    """The study under mpirun -n 2 (particles split, PDE distributed) gives the serial distances to the PDE
    solver's tolerance (the particles are bitwise the same)."""
    r1, r2 = run_mpi(1, "mpi_model.py", "validate"), run_mpi(2, "mpi_model.py", "validate")
    for k in r1["metrics"]:
        np.testing.assert_allclose(r2["metrics"][k]["mean"], r1["metrics"][k]["mean"], rtol=1e-8, atol=1e-12)


def test_the_network_runs_through_the_same_study():
    """The two-layer network is a model of its own kind (NetworkModel: the continuous-time model with independent
    noise per neuron, gamma = 1, against the diffusive limit PDE): the same validate() measures sliced W2 falling at
    about the Monte-Carlo rate (measured -0.44 over N = 100, 800; the FE floor, 7e-3, stops the fit at 3200)."""
    from fpjko.model import NetworkModel
    from fpjko.samplers.mean_field_nn import TeacherData

    data = TeacherData.teacher(64, [[2.0, 1.0], [-1.0, 1.5]], seed=1)
    net = NetworkModel(data, gamma=1.0, initial={"mean": [0.0, 0.0], "cov": 0.25}, domain=([-3.5, -3.5], [3.5, 3.5]))
    r = validate(net, [100, 800, 3200], t=0.5, repeats=2, dt=5e-3, h=0.2, degree=1, fe_dt=0.01, echo=False)
    sw = r["metrics"]["sliced W2"]
    assert -0.75 < sw["slope"] < -0.3, sw
    assert r["fe"]["mass_drift"] < 1e-10


def test_sgd_on_least_squares_is_a_model_with_exact_noise():
    """Minibatch SGD's f and D(x) = B Cov[g_B(x)] written as formulas from the data (LeastSquares.formulas) give a
    model whose numpy D and f equal the samplers' to round-off (measured 2e-14)."""
    from fpjko.samplers import LeastSquares, sgd_diffusion

    rng = np.random.default_rng(7)
    a = rng.multivariate_normal([0, 0], [[1.0, 0.5], [0.5, 0.6]], size=200)
    prob = LeastSquares(a, a @ np.array([1.0, -0.5]) + (0.2 + 1.5 * (a[:, 0] > 0)) * rng.normal(size=200))
    for replacement in (True, False):
        V, D = prob.formulas(5, replacement=replacement)
        m = Model(2, V=V, D=D, beta=1.0, domain=([-2, -2], [2, 2]))
        X = rng.uniform(-2, 2, (30, 2))
        exact = np.moveaxis(sgd_diffusion(prob.per_sample_grads(X.T), 5, replacement), -1, 0)
        assert np.abs(m.D_np(X) - exact).max() < 1e-12 * np.abs(exact).max()
        assert np.abs(m.V_np(X) - prob.loss(X.T)).max() < 1e-12 * np.abs(prob.loss(X.T)).max()
        assert not m.gradient_flow and not m.D_constant


def test_a_graphon_study_runs_through_the_same_interface():
    """Noisy SGD on n x n symmetric matrices (R = 1/2 ||W - W*||^2, W* a 4 x 4 step graphon, sigma = 1) against the
    graphon McKean-Vlasov laws at t = 0.3 (GraphonModel): the entries' block W1 and the blocks' mean error fall like
    1/n, the rate of (n/4)^2 entries per block (measured -0.90 and -0.95), far above the law grid's floor (1e-6)."""
    from fpjko.model import GraphonModel
    from fpjko.samplers.graphon import GraphonObjective

    g = GraphonModel(GraphonObjective(least_squares=1.0, target=lambda u, v: 0.2 + 0.6 * np.floor(4 * u)
                                      * np.floor(4 * v) / 9), blocks=4, sigma=1.0)
    r = validate(g, [32, 64, 128], t=0.3, repeats=3, dt=2.5e-4, h=1 / 200, fe_dt=0.002, echo=False)
    w1, me = r["metrics"]["block W1"], r["metrics"]["mean error"]
    assert -1.15 < w1["slope"] < -0.7 and -1.2 < me["slope"] < -0.7, (w1, me)
    assert w1["floor"] < 1e-4 and not w1["stopped_at_floor"]
    with pytest.raises(ValueError, match="n = 30 is not a multiple of the 4 blocks"):
        g.particles(30)


def test_the_particle_mesh_gives_the_direct_particles_to_its_accuracy():
    """Model.particles(force='mesh') for a kernel W: the same particles as the exact O(n^2) force (same streams)
    up to the mesh's force error (below 1e-4 RMS after 10 steps), and through validate the same distances to 1e-3."""
    m = Model(2, V="0.5*(x**2 + y**2)", W="-exp(-(z0**2 + z1**2)/2)", beta=1.0,
              initial={"mean": [0.5, 0.0], "cov": 0.25}, domain=([-5, -5], [5, 5]), name="kernel_pm")
    _, a = m.particles(2000, 4, dt=0.02, t_end=0.2)
    _, b = m.particles(2000, 4, dt=0.02, t_end=0.2, force="mesh")
    assert np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1))) < 1e-4
    with pytest.raises(ValueError, match="force='fast' is not one of"):
        m.particles(10, force="fast")
    kw = dict(t=0.2, repeats=2, dt=0.02, h=0.25, degree=1, fe_dt=0.02, echo=False)
    mesh = validate(m, [250, 1000], particle_options={"force": "mesh"}, **kw)
    direct = validate(m, [250, 1000], **kw)
    np.testing.assert_allclose(mesh["metrics"]["sliced W2"]["mean"], direct["metrics"]["sliced W2"]["mean"],
                               rtol=1e-3)
