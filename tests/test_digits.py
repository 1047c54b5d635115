"""The seed experiment on real digits (issue 35): the data, the two-layer network's gradients against finite
differences, SGD bitwise on 1 and 2 ranks, the limit PDE against the independent-noise particles (slope -1/2), SGD
with common noise at beta = 1 not converging while the same-data runs do, the chaos study from any trainer's file,
and bad input named."""

import os
import subprocess
import sys

import numpy as np
import pytest
from mpi4py import MPI

from conftest import ROOT, run_mpi
from fpjko.model import NetworkModel, validate
from fpjko.model.chaos import chaos_study, load_snapshots, save_snapshots, train_snapshots
from fpjko.samplers import data as datasets
from fpjko.samplers.mean_field_nn import TeacherData
from fpjko.samplers.two_layer import TwoLayerNetwork, loss_gradient

SELF = MPI.COMM_SELF


# ---------------------------------------------------------------------------------------------- the data
def test_the_digits_are_read_split_and_standardised():
    d = datasets.digits()
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64) and d.classes == tuple(range(10))
    counts = np.bincount(d.y_train, minlength=10) + np.bincount(d.y_test, minlength=10)
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]          # sklearn's digits
    assert np.all(np.abs(np.bincount(d.y_test) / counts - 0.25) < 0.01)                    # stratified
    live = d.X_train.std(axis=0) > 0
    assert np.abs(d.X_train.mean(axis=0)).max() < 1e-12 and np.allclose(d.X_train.std(axis=0)[live], 1.0)
    again = datasets.digits()
    assert np.array_equal(again.X_train, d.X_train) and np.array_equal(again.y_test, d.y_test)   # a fixed split
    two = datasets.digits(classes=(3, 8), pca=1)
    assert two.X_train.shape[1] == 1 and set(two.y_train) == {0, 1} and abs(two.X_train.std() - 1) < 1e-12


@pytest.mark.parametrize("X,y,kw,words", [
    (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0], [2, 2]]), [0, 1, 0, 1], {}, ["X[1, 0] = nan"]),
    (np.ones((4, 2)), [0, 1, 0], {}, ["4 rows but y has shape (3,)"]),
    (np.random.default_rng(0).normal(size=(9, 2)), [0, 0, 0, 0, 1, 1, 1, 1, 2], {}, ["class 2 has 1 points",
                                                                                    "empty in the"]),
    (np.ones((4, 2)), [0, 1, 0, 1], {"classes": (0, 5)}, ["the classes [5] have no point"]),
])
def test_bad_data_is_named(X, y, kw, words):
    with pytest.raises(ValueError) as e:
        datasets.from_arrays(X, y, **kw)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_a_user_npz_runs_the_same_study(tmp_path):
    d = datasets.digits()
    path = tmp_path / "mine.npz"
    np.savez(path, X=np.concatenate([d.X_train, d.X_test]), y=np.concatenate([d.y_train, d.y_test]))
    mine = datasets.from_npz(str(path), standardize=False)
    assert mine.X_train.shape == (1347, 64) and mine.name == "mine.npz"


# ---------------------------------------------------------------------------------------------- the network
@pytest.mark.parametrize("loss,act,batch", [("cross_entropy", "relu", 1), ("cross_entropy", "tanh", 5),
                                            ("square", "sigmoid", 1), ("square", "tanh", 4)])
def test_both_layers_gradients_equal_finite_differences(loss, act, batch):
    """One SGD step of size h moves theta_k by -h N dL/dtheta_k (the mean-field scaling): against central
    differences of the batch loss in a_k, u_k and c_k, for both update paths (the in-place rank-one update at
    batch 1, products at batch > 1)."""
    d = datasets.digits()
    C = 10 if loss == "cross_entropy" else 3
    N = 40
    net = TwoLayerNetwork(N, 64, C, act, loss, seed=3, comm=SELF, init={"a": 1.0, "u": 1.0, "c": 0.5})
    idx = np.random.default_rng(1).integers(0, 1347, batch)
    Xb = d.X_train[idx]
    yb = d.y_train[idx] if loss == "cross_entropy" else np.random.default_rng(2).normal(size=(batch, C))

    def L(theta):
        m = TwoLayerNetwork(N, 64, C, act, loss, seed=3, comm=SELF)
        m.set_neurons(theta)
        return float(np.mean(loss_gradient(loss, m.predict(Xb), m._targets(yb))[0]))
    theta0 = net.neurons()
    h = 1e-7
    net._shared_step(Xb, net._targets(yb), h)
    step = (theta0 - net.neurons()) / (h * N)                         # = dL/dtheta
    rng = np.random.default_rng(4)
    for k in rng.choice(N, 4, replace=False):
        for j in [0, C - 1, C + 3, C + 40, C + 64]:                    # a, u and c coordinates
            e = np.zeros_like(theta0)
            e[k, j] = 1e-6
            fd = (L(theta0 + e) - L(theta0 - e)) / 2e-6
            assert abs(step[k, j] - fd) < 2e-5 * max(1.0, abs(fd)) + 1e-8, (k, j, step[k, j], fd)


def test_sgd_splits_over_two_ranks_bitwise():
    """SGD (shared and independent samples) and the chaos pairs on 1 and 2 ranks: the same bits, also with a rank
    that holds no neuron (N = 700 in blocks of 1024)."""
    r1, r2 = run_mpi(1, "mpi_digits.py"), run_mpi(2, "mpi_digits.py")
    for k in r1:
        assert r1[k] == r2[k], k


# ---------------------------------------------------------------------------------------------- both sides (p = 1)
@pytest.mark.slow
def test_the_continuous_time_model_converges_to_its_diffusive_pde_at_rate_one_half():
    """The continuous-time model of SGD at beta = 1 (independent noise per neuron, d theta = -grad Psi dt +
    (gamma Sigma)^(1/2) dB, Euler-Maruyama) against the McKean-Vlasov PDE with D = (gamma/2) Sigma (network_pde on
    the digits 3/8 projected on one principal component, neurons (a, u) in R^2, a degenerate D): the theory's -1/2
    lies in the sliced W2 slope's interval."""
    d = datasets.digits(classes=(3, 8), pca=1)
    td = TeacherData(d.X_train, d.targets(d.y_train), "tanh", output_weight=True)
    m = NetworkModel(td, gamma=0.2, initial={"mean": [0.0, 0.0], "cov": 0.25}, domain=([-3.5, -3.0], [3.5, 3.0]))
    r = validate(m, [200, 800, 3200], 0.5, repeats=4, dt=0.01, h=0.2, degree=1, fe_dt=0.01, comm=SELF,
                 echo=False, progress=False)
    sw = r["metrics"]["sliced W2"]
    lo, hi = sw["interval"]
    assert lo <= -0.5 <= hi and hi - lo < 0.5, sw


@pytest.mark.slow
def test_common_noise_at_beta_one_does_not_converge_while_the_same_data_runs_do():
    """SGD as run at beta = 1 (every neuron the same sample): two runs on independent data streams stay apart as
    N grows (slope near 0: the theory's 0 in the interval, -1/2 outside), two runs on the same stream approach
    each other (-1/2 in the interval): propagation of chaos given the data."""
    d = datasets.digits(classes=(3, 8), pca=1)
    d = datasets.Dataset(d.X_train, d.targets(d.y_train), d.X_test, d.targets(d.y_test), (), "3/8")
    kw = dict(outputs=1, activation="tanh", loss="square", bias=False, init={"a": 0.5, "u": 0.5})
    out = {}
    for same in (False, True):
        t = train_snapshots(d, [1000, 4000, 16000], range(4), 1.0, 0.3, T=3.0, same_data=same, comm=SELF,
                            progress=False, **kw)
        out[same] = chaos_study(t["pairs"], names=t["names"], echo=False, comm=SELF)["metrics"]["sliced W2"]
    lo, hi = out[False]["interval"]
    assert lo <= 0.0 <= hi and not lo <= -0.5 <= hi, out[False]
    lo, hi = out[True]["interval"]
    assert lo <= -0.5 <= hi, out[True]


# ---------------------------------------------------------------------------------------------- bring your own
def test_the_chaos_study_takes_any_trainers_file(tmp_path):
    """Pairs of iid Gaussian clouds (two 'runs' of an exact limit): the sliced W2 falls like N^-1/2 (the theory in
    the interval), through the Python function and through `fpjko chaos`, file and dict alike."""
    rng = np.random.default_rng(0)
    pairs = {(N, s): (rng.normal(size=(N, 3)), rng.normal(size=(N, 3))) for N in (200, 800, 3200, 12800)
             for s in range(5)}
    path = tmp_path / "runs.npz"
    save_snapshots(str(path), pairs, ["a", "u", "c"])
    loaded, names = load_snapshots(str(path))
    assert names == ["a", "u", "c"] and np.array_equal(loaded[800, 2][1], pairs[800, 2][1])
    r = chaos_study(str(path), marginals=["a", 2], theory=-0.5, echo=False, comm=SELF)
    for k in ("sliced W2", "W1 a", "W1 c"):
        assert r["metrics"][k]["theory_in_interval"], (k, r["metrics"][k])
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "fpjko.cli", "chaos", str(path), "--marginals", "a", "--theory", "-0.5",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and "sliced W2: slope" in p.stdout and (tmp_path / "out" / "chaos.png").exists()
    bad = dict(pairs)
    bad[800, 1] = (pairs[800, 1][0][:, :2], pairs[800, 1][1])
    save_snapshots(str(tmp_path / "bad.npz"), bad)
    p = subprocess.run([sys.executable, "-m", "fpjko.cli", "chaos", str(tmp_path / "bad.npz")], capture_output=True,
                       text=True, timeout=120, env=env)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and "N800_s1_a has 2 columns" in lines[0], p.stderr


@pytest.mark.parametrize("build,words", [
    (lambda: TwoLayerNetwork(0, 64, comm=SELF), ["width N must be >= 1"]),
    (lambda: TwoLayerNetwork(10, 64, 10, loss="cross_entropy", comm=SELF).sgd(datasets.digits(), 0.0, 1.0, 1),
     ["gamma must be positive"]),
    (lambda: TwoLayerNetwork(10, 64, 10, loss="cross_entropy", comm=SELF).sgd(datasets.digits(), 0.1, 1.5, 1),
     ["beta must lie in [0, 1]"]),
    (lambda: TwoLayerNetwork(10, 64, 5, loss="cross_entropy", comm=SELF).sgd(datasets.digits(), 0.1, 1.0, 1),
     ["outside the 5 classes"]),
    (lambda: chaos_study({(10, 0): (np.zeros((10, 2)), np.full((10, 2), np.nan)),
                          (20, 0): (np.zeros((20, 2)), np.zeros((20, 2)))}, comm=SELF, echo=False),
     ["N10_s0_b", "not finite"]),
])
def test_bad_input_is_named(build, words):
    with pytest.raises(ValueError) as e:
        build()
    assert all(w in str(e.value) for w in words), str(e.value)


def test_the_noise_factor_of_a_degenerate_covariance():
    """SGD's gradient covariance vanishes where the feature's gradient does (a at u = 0): the factor is the
    symmetric square root of the PSD matrix (L L^T = D to round-off), an indefinite one is refused naming the
    particle, and a rank without particles passes."""
    from fpjko.samplers.sde import psd_factor_batch

    rng = np.random.default_rng(0)
    B = rng.normal(size=(50, 3, 2))
    D = B @ np.swapaxes(B, 1, 2)                                       # rank 2 in R^3
    L = psd_factor_batch(D)
    assert np.abs(L @ np.swapaxes(L, 1, 2) - D).max() < 1e-12 * np.abs(D).max()
    assert np.all(np.triu(L, 1) == 0)                                  # lower triangular, as apply_factor takes
    D2 = D[:, :2, :2].copy()
    D2[3] = [[0.0, 0.0], [0.0, 2.0]]                                   # degenerate: no noise in the first direction
    from fpjko.samplers.sde import apply_factor
    xi = np.random.default_rng(1).normal(size=(len(D2), 2))
    L2 = psd_factor_batch(D2)
    assert np.allclose(apply_factor(L2, xi), np.einsum("nij,nj->ni", L2, xi)) and L2[3, 0, 0] == 0.0
    D[7] = np.diag([1.0, -0.5, 0.0])
    with pytest.raises(ValueError, match="not positive semi-definite for particle 7"):
        psd_factor_batch(D)
    assert psd_factor_batch(np.zeros((0, 3, 3))).shape == (0, 3, 3)
