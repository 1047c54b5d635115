"""Entropy-SGD and Elastic-SGD against the homogenized flow X' = -grad f_gamma(X) from the FE local entropy, their
rank-count independence, and Langevin on the smoothed loss (the Fokker–Planck solver run on f_gamma)."""

import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from conftest import run_mpi
from fpjko.samplers.deep_relaxation import elastic_sgd, entropy_sgd, homogenized_flow
from fpjko.references.local_entropy import local_entropy_quadrature
from fpjko.solvers import FokkerPlanckSolver, stationary_density
from fpjko.solvers.hamilton_jacobi.cole_hopf import LocalEntropy

BETA, GAMMA, X0 = 4.0, 0.5, 1.5


def f(x):
    return (x[0] ** 2 - 1) ** 2 + 0.3 * x[0]


def grad_f(y):
    return 4 * y * (y ** 2 - 1) + 0.3


@pytest.fixture(scope="module")
def fe_gradient():
    """grad f_gamma from the Cole–Hopf P1 solution (h = 0.005 on [-3, 3]), sampled on a grid for np.interp."""
    le = LocalEntropy(meshes.interval(MPI.COMM_WORLD, -3, 3, 0.005), f, BETA)
    le.solve(GAMMA, 200)
    grid = np.linspace(-2.0, 2.5, 1801)
    g = le.gradient(np.c_[grid, np.zeros((len(grid), 2))])[:, 0]
    return lambda z: np.interp(z[:, 0], grid, g)[:, None]


def test_fe_gradient_flow_matches_quadrature(fe_gradient):
    """The homogenized ODE driven by the FE grad f_gamma and by the quadrature one end within 1e-3 at s = 1."""
    grid = np.linspace(-2.0, 2.5, 1801)
    gq = local_entropy_quadrature(f, grid, GAMMA, BETA, [-6], [6])[1][:, 0]
    X_fe = homogenized_flow(fe_gradient, [[X0]], 1.0)[-1, 0, 0]
    X_q = homogenized_flow(lambda z: np.interp(z[:, 0], grid, gq)[:, None], [[X0]], 1.0)[-1, 0, 0]
    assert abs(X_fe - X_q) < 1e-3 and 0.9 < X_fe < 1.2, (X_fe, X_q)


def test_homogenization_rate(fe_gradient, slope):
    """eps -> 0: mean |x(1) - X(1)| over 64 seeds falls with eps for Entropy-SGD (K = 1) and Elastic-SGD (K = 4),
    with fitted slopes 0.3-0.8 (measured 0.43 and 0.50: the fluctuations of x are O(sqrt(eps))), and four replicas
    halve the error (their mean averages the fast noise). ds = eps / 400 (see fpjko.samplers.deep_relaxation)."""
    X = homogenized_flow(fe_gradient, [[X0]], 1.0)[-1, 0, 0]
    epss = [0.1, 0.03, 0.01]
    errs = {}
    for K in (1, 4):
        errs[K] = [np.abs(elastic_sgd(grad_f, [X0], GAMMA, BETA, eps, 1.0, replicas=K, runs=64, seed=1)["x"][-1, :, 0]
                          - X).mean() for eps in epss]
    p1, p4 = slope(epss, errs[1]), slope(epss, errs[4])
    print(errs, p1, p4)
    for K, p in ((1, p1), (4, p4)):
        assert np.all(np.diff(errs[K]) < 0) and 0.3 < p < 0.8, (K, errs[K], p)
    assert all(e4 < 0.75 * e1 for e1, e4 in zip(errs[1], errs[4]))
    assert errs[1][-1] < 0.015


def test_entropy_sgd_is_one_replica_and_seeded():
    a = entropy_sgd(grad_f, [X0], GAMMA, BETA, 0.05, 0.1, runs=3, seed=5)
    b = elastic_sgd(grad_f, [X0], GAMMA, BETA, 0.05, 0.1, replicas=1, runs=3, seed=5)
    c = entropy_sgd(grad_f, [X0], GAMMA, BETA, 0.05, 0.1, runs=3, seed=6)
    assert np.array_equal(a["x"], b["x"]) and not np.array_equal(a["x"], c["x"])
    assert a["x"].shape == (len(a["s"]), 3, 1) and a["s"][-1] == pytest.approx(0.1)


def test_bad_input():
    with pytest.raises(ValueError, match="ds=0.01 > eps/2"):
        entropy_sgd(grad_f, [X0], GAMMA, BETA, 0.01, 1.0, ds=0.01)
    with pytest.raises(ValueError, match="gamma"):
        entropy_sgd(grad_f, [X0], -1.0, BETA, 0.01, 1.0)
    with pytest.raises(ValueError, match=r"x0 must have shape \(d,\) or \(3, d\) for runs=3, got \(2, 1\)"):
        entropy_sgd(grad_f, [[X0], [X0]], GAMMA, BETA, 0.05, 0.1, runs=3)
    assert entropy_sgd(grad_f, X0, GAMMA, BETA, 0.05, 0.01, runs=2)["x"].shape[1:] == (2, 1)      # a scalar x0
    with pytest.raises(FloatingPointError, match="blew up by step"), np.errstate(over="ignore", invalid="ignore"):
        entropy_sgd(lambda y: 1e200 * y ** 3, [X0], GAMMA, BETA, 0.05, 0.05)


@pytest.mark.mpi
def test_elastic_sgd_two_ranks_bitwise_serial(tmp_path):
    """Replicas split over two ranks (3 as 2 + 1, and 1 as 1 + 0): the centres are bitwise the serial ones; a
    blow-up is reported on both ranks."""
    r1, r2 = run_mpi(1, "mpi_deep_relaxation.py"), run_mpi(2, "mpi_deep_relaxation.py")
    assert sorted(r2["local1"]) == [0, 1] and sorted(r2["local3"]) == [1, 2]
    for K in (1, 3):
        assert r1[f"x{K}"] == r2[f"x{K}"]
    assert all("blew up" in m for m in r2["faults"]) and len(set(r2["faults"])) == 1


def test_langevin_on_the_smoothed_loss():
    """The Fokker–Planck solver takes f_gamma (the Cole–Hopf Function) as its potential: its stationary density is
    exp(-beta f_gamma) / Z to 4e-4 in L1 (measured 7.9e-5), and it puts more mass in the wide right basin than exp(-beta f) does."""
    msh = meshes.interval(MPI.COMM_WORLD, -2.5, 2.5, 0.01)
    le = LocalEntropy(msh, f, BETA)
    u = le.solve(GAMMA, 100)
    fp = FokkerPlanckSolver(msh, u, beta=BETA)
    st = stationary_density(fp)
    X = fp.V.tabulate_dof_coordinates()[: fp.n_owned, 0]
    order = np.argsort(X)
    X, rho = X[order], st.rho.x.array[: fp.n_owned][order]
    gibbs = np.exp(-BETA * (u.x.array[: fp.n_owned][order] - u.x.array.min()))
    gibbs /= np.trapezoid(gibbs, X)
    assert np.trapezoid(np.abs(rho - gibbs), X) < 4e-4
    plain = np.exp(-BETA * (f(X[None]) - f(X[None]).min()))
    plain /= np.trapezoid(plain, X)
    right = X > 0.1
    assert np.trapezoid(rho[right], X[right]) > np.trapezoid(plain[right], X[right])
