"""The two-layer network's mean-field PDEs against the particle systems whose limits they are.

Data: M = 64 Gaussian inputs, teacher y = mean of tanh(<theta*_k, x>) over two teacher neurons; student
neurons start at N(0, 0.5^2 I); mean-field time t = 1; PDEs on [-3.5, 3.5]^2, h = 0.1.
Measured (seeds here; the FE floor, SW2 between h = 0.1 and h = 0.05, is 0.0023 for both PDEs):
  continuous-time model, gamma = 1, independent noise per neuron: sliced W2 to the diffusive PDE
      0.096, 0.027, 0.0083 for N = 1e2, 1e3, 1e4 (3 seeds, slope -0.532 [-0.592, -0.471]); to the noiseless PDE
      0.11, 0.097, 0.099;
  shared-sample SGD, b = 1/2: to the noiseless PDE 0.13, 0.034, 0.019; to the diffusive PDE 0.2, 0.11, 0.10;
  shared-sample SGD, b = 1 (gamma = 0.1): the spread over data seeds of the neurons' mean stays 0.10 for
      N = 1e2 ... 1e4 (does not vanish), against 0.043 -> 0.0056 for b = 1/2.
"""

import math

import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from conftest import fitted_slope
from fpjko.metrics.study import convergence_in_n
from fpjko.metrics.distances import sliced_wasserstein
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.mean_field_nn import TeacherData, TwoLayerMeanField, continuous_time
from fpjko.samplers.streams import Streams
from fpjko.solvers.mean_field.network import network_pde, risk
from fpjko.solvers.particles.empirical import density_as_measure

COMM = MPI.COMM_WORLD
DATA = TeacherData.teacher(64, [[2.0, 1.0], [-1.0, 1.5]], seed=1)
S0, T, GAMMA = 0.5, 1.0, 1.0
NS = [100, 1000, 10000]


def initial(x):
    return gaussian_density(x, [0.0, 0.0], S0 ** 2 * np.eye(2))


@pytest.fixture(scope="module")
def pdes():
    msh = meshes.rectangle(COMM, [-3.5, -3.5], [3.5, 3.5], 0.1)
    out = {}
    for name, kw in (("noiseless", {}), ("diffusive", dict(gamma=GAMMA, dt=0.01)),
                     ("langevin", dict(temperature=0.05, dt=0.01))):
        s = network_pde(msh, DATA, **kw)
        s.set_initial(initial, normalize=True)
        risks = [risk(s, DATA)]
        s.run(T, callback=lambda sol: risks.append(risk(sol, DATA)))
        out[name] = dict(solver=s, cloud=density_as_measure(s.rho, quadrature_degree=2), risks=risks)
    return out


def sw2(theta, cloud):
    return sliced_wasserstein(theta, cloud[0], wy=cloud[1], n_projections=64)


def neurons(N, seed):
    st = Streams(N, seed, comm=None)
    return st, st.sample(lambda g, m: S0 * g.standard_normal((m, 2)))


def test_features_gradient_and_noise_covariance():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((5, 2))
    c = 0.3 * rng.standard_normal(DATA.M)                            # some predictions f(x_m)
    psi = lambda th: DATA.features(th) @ (c - DATA.Y) / DATA.M      # noqa: E731  Psi = V + U * rho
    eps = 1e-6
    fd = np.stack([(psi(theta + eps * e) - psi(theta - eps * e)) / (2 * eps) for e in np.eye(2)], axis=1)
    assert np.abs(DATA.grad_psi(theta, c) - fd).max() < 1e-10                 # measured 2.1e-11 (eps = 1e-6)
    g = ((c - DATA.Y)[None, :, None] * DATA.dsigma(theta @ DATA.X.T)[:, :, None] * DATA.X[None])  # (n, M, d)
    brute = np.stack([np.cov(gi.T, bias=True) for gi in g])
    assert np.abs(DATA.noise_covariance(theta, c) - brute).max() < 1e-15     # measured 1.4e-16
    assert DATA.risk(DATA.Y) == 0.0


def test_pde_risk_decreases_and_matches_mass(pdes):
    """The noiseless flow is the W2 gradient flow of the risk: R decreases monotonically; all conserve mass."""
    r = np.array(pdes["noiseless"]["risks"])
    assert np.all(np.diff(r) < 0) and r[-1] < 0.5 * r[0]
    for p in pdes.values():
        m = np.array(p["solver"].history["mass"])
        assert np.abs(m - 1).max() < 2e-14                                   # measured 2.7e-15 at most
    # noise slows the descent: R(diffusive) > R(noiseless) at t = 1 (measured 0.0687 vs 0.0589)
    assert pdes["diffusive"]["risks"][-1] > pdes["noiseless"]["risks"][-1] + 0.005


def test_continuous_time_model_converges_to_the_diffusive_pde(pdes):
    """Independent noise per neuron (gamma Sigma): SW2 to the diffusive PDE falls like N^(-1/2): -1/2 lies in the
    interval convergence_in_n returns (3 seeds; measured -0.532 [-0.592, -0.471], 8 seeds -0.495 [-0.530, -0.461]);
    the distance to the noiseless PDE levels off at their distance (about 0.1); risks agree."""
    runs = {}

    def sample(N, seed):
        st, th0 = neurons(N, seed)
        runs[N, seed] = st, continuous_time(th0, st, DATA, GAMMA, T, 2e-3)
        return runs[N, seed][1]

    res = convergence_in_n(sample, lambda th: sw2(th, pdes["diffusive"]["cloud"]), NS, repeats=3, seed=99,
                           echo=False)                                   # seeds 100, 1100, 2100
    lo, hi = res["interval"]
    assert lo <= -0.5 <= hi and (hi - lo) / 2 < 0.25, res
    assert -0.7 < res["slope"] < -0.35, res
    to_diff = res["mean"]
    to_plain = [np.mean([sw2(th, pdes["noiseless"]["cloud"]) for (n, _), (_, th) in runs.items() if n == N])
                for N in NS]
    risk_err = [np.mean([abs(DATA.risk(st.mean(DATA.features(th))) - pdes["diffusive"]["risks"][-1])
                         for (n, _), (st, th) in runs.items() if n == N]) for N in NS]
    print("to the diffusive PDE", to_diff, "to the noiseless", to_plain, "risk errors", risk_err)
    assert to_plain[-1] > 0.8 * to_plain[0] and to_plain[-1] > 5 * to_diff[-1], (to_plain, to_diff)
    assert risk_err[-1] < 3e-3, risk_err


def test_shared_sample_sgd_below_b1_converges_to_the_noiseless_pde(pdes):
    """Online SGD, one shared sample per step, step gamma N^(1/2): SW2 to the continuity equation's
    solution falls (slope about -0.4); the distance to the diffusive PDE levels off."""
    to_plain, to_diff = [], []
    for N in NS:
        dp, dd = [], []
        for rep in range(2):
            st, th0 = neurons(N, 200 + rep)
            th = TwoLayerMeanField(st, data=DATA).train(th0, GAMMA, 0.5, T, data_seed=rep)
            dp.append(sw2(th, pdes["noiseless"]["cloud"]))
            dd.append(sw2(th, pdes["diffusive"]["cloud"]))
        to_plain.append(np.mean(dp)), to_diff.append(np.mean(dd))
    assert fitted_slope(NS, to_plain) < -0.25, to_plain
    assert to_diff[-1] > 0.07 and to_diff[-1] > 3 * to_plain[-1], (to_diff, to_plain)


def test_shared_sample_sgd_at_b1_stays_random():
    """b = 1, gamma = 0.1 (10 steps per unit time whatever N): the common noise does not average out, the
    spread over data seeds of the neurons' mean stays about 0.10 for N = 1e2 ... 1e4; for b = 1/2 it decays
    (measured 0.043, 0.014, 0.0056: slope -0.44)."""
    spread = {b: [] for b in (1.0, 0.5)}
    for b in spread:
        for N in NS:
            st, th0 = neurons(N, 5)
            net = TwoLayerMeanField(st, data=DATA)
            means = np.array([st.mean(net.train(th0, 0.1, b, T, data_seed=r)) for r in range(8)])
            spread[b].append(float(np.linalg.norm(means.std(axis=0))))
    assert min(spread[1.0]) > 0.05 and spread[1.0][-1] > 0.8 * spread[1.0][0], spread
    assert fitted_slope(NS, spread[0.5]) < -0.3, spread


def test_mean_field_langevin(pdes):
    """Noisy gradient descent (temperature T per neuron, no SGD noise) against rho_t = div(rho grad Psi) + T
    Laplacian rho (FokkerPlanckSolver, constant operator): SW2 falls with N."""
    dist = []
    for N in (100, 10000):
        st, th0 = neurons(N, 300)
        th = continuous_time(th0, st, DATA, 0.0, T, 2e-3, temperature=0.05)
        dist.append(sw2(th, pdes["langevin"]["cloud"]))
    assert dist[1] < 0.25 * dist[0] and dist[1] < 0.02, dist


def test_noiseless_continuous_time_neurons_follow_the_continuity_equation(pdes):
    """gamma = 0, temperature = 0: the N-neuron gradient flow (explicit Euler) against the DG solution."""
    dist = []
    for N in (100, 10000):
        st, th0 = neurons(N, 400)
        th, rec = continuous_time(th0, st, DATA, 0.0, T, 2e-3, record_every=250)
        assert rec.shape == (2, N, 2) and np.array_equal(rec[-1], th)
        dist.append(sw2(th, pdes["noiseless"]["cloud"]))
    assert dist[1] < 0.25 * dist[0] and dist[1] < 0.02, dist


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="64 inputs but 3 labels"):
        TeacherData(DATA.X, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="either a teacher"):
        TwoLayerMeanField(Streams(10, 0, comm=None))
    msh = meshes.rectangle(COMM, [-1, -1], [1, 1], 0.5)
    with pytest.raises(ValueError, match="gamma=-1"):
        network_pde(msh, DATA, gamma=-1.0)
    st, th0 = neurons(10, 0)
    with pytest.raises(ValueError, match="temperature=-1"):
        continuous_time(th0, st, DATA, 1.0, 0.1, 0.01, temperature=-1.0)
    assert math.isfinite(DATA.risk(np.zeros(DATA.M)))
