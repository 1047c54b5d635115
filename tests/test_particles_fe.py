"""Particles on the FE mesh: histogram/projection mass, distances to FE densities with known
answers, and serial vs mpirun -n 2 agreement of samplers and histograms."""

import math

import dolfinx.fem
import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from fpjko.metrics.distances import sliced_wasserstein, wasserstein_1d, wasserstein_1d_cdf
from fpjko.references.gaussian import gaussian_density
from fpjko.samplers.streams import Streams
from fpjko.solvers.particles import empirical

from conftest import run_mpi


def normal_cdf(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@pytest.fixture(scope="module")
def square():
    return meshes.rectangle(MPI.COMM_WORLD, [-5, -5], [5, 5], 0.25)


@pytest.mark.parametrize("degree", [1, 2])
def test_histogram_and_projection_conserve_mass(square, degree):
    s = Streams(30000, 1, comm=None)
    x = s.sample(lambda g, m: g.standard_normal((m, 2)) * [0.8, 0.5] + [0.5, 0.0])
    h = empirical.histogram(square, x)
    assert abs(empirical.integral(h) - 1.0) < 1e-13
    V = dolfinx.fem.functionspace(square, ("Lagrange", degree))
    assert abs(empirical.integral(empirical.project(V, x)) - 1.0) < 1e-12
    if degree == 1:
        ul = empirical.project(V, x, lumped=True)
        assert abs(empirical.integral(ul) - 1.0) < 1e-12
        assert ul.x.array.min() >= 0.0
    else:
        with pytest.raises(ValueError, match="lumped projection needs P1"):
            empirical.project(V, x, lumped=True)
    # the load vector is exactly phi_i summed over particles (a particle at a vertex loads that vertex)
    b = empirical.particle_load(V, np.array([[0.0, 0.0]]))
    assert b.x.array.sum() == pytest.approx(1.0, abs=1e-14)
    if degree == 1:
        assert np.sort(b.x.array)[-1] == pytest.approx(1.0, abs=1e-12)


def test_outside_particles_are_reported(square):
    x = np.array([[0.0, 0.0], [7.0, 1.0], [0.1, 0.2]])
    with pytest.raises(ValueError, match=r"1 of 3 particles lie outside the mesh, e.g. x=\[7\. 1\.\]"):
        empirical.histogram(square, x)
    h = empirical.histogram(square, x, outside="ignore")
    assert empirical.integral(h) == pytest.approx(2 / 3, abs=1e-13)
    with pytest.raises(ValueError, match=r"particles must have shape \(n, 2\) on this 2D mesh, got shape \(4, 3\)"):
        empirical.histogram(square, np.zeros((4, 3)))


def test_l1_and_kl_between_fe_gaussians_match_closed_forms():
    msh = meshes.interval(MPI.COMM_WORLD, -10, 10, 0.02)
    V = dolfinx.fem.functionspace(msh, ("Lagrange", 2))
    p, q = dolfinx.fem.Function(V), dolfinx.fem.Function(V)
    mu, s1, s2 = 0.7, 1.0, 1.3
    p.interpolate(lambda x: gaussian_density(x[:1], [0.0], [[s1 ** 2]]))
    q.interpolate(lambda x: gaussian_density(x[:1], [mu], [[s1 ** 2]]))
    assert empirical.l1_distance(p, q) == pytest.approx(2 * (2 * normal_cdf(mu / 2) - 1), abs=1e-5)
    q.interpolate(lambda x: gaussian_density(x[:1], [mu], [[s2 ** 2]]))
    kl = math.log(s2 / s1) + (s1 ** 2 + mu ** 2) / (2 * s2 ** 2) - 0.5
    assert empirical.kl_divergence(p, q) == pytest.approx(kl, abs=5e-11)            # measured 7.4e-12


def test_w1_and_sliced_w2_between_particles_and_fe_density():
    """The FE density as a quadrature-weighted cloud: W1 of a shifted quantile sample equals the
    shift; in 2D the sliced distance of the exact density to itself is ~0 and a shift is |v|/sqrt(2)."""
    from statistics import NormalDist
    msh = meshes.interval(MPI.COMM_WORLD, -9, 9, 0.02)
    V = dolfinx.fem.functionspace(msh, ("Lagrange", 2))
    rho = dolfinx.fem.Function(V)
    rho.interpolate(lambda x: gaussian_density(x[:1], [0.0], [[1.0]]))
    grid, cdf = empirical.cdf_1d(rho)
    u = (np.arange(20000) + 0.5) / 20000
    q = np.array([NormalDist().inv_cdf(v) for v in u])
    assert wasserstein_1d_cdf(q, grid, cdf, 1) < 2e-4                                  # measured 1.13e-4
    assert wasserstein_1d_cdf(q + 0.25, grid, cdf, 1) == pytest.approx(0.25, abs=2e-5)  # measured 3.5e-6
    # W2 of the quantile sample is dominated by the Gaussian tails beyond its extreme atoms; a shift
    # adds in quadrature because the sample is symmetric: W2(q + a)^2 = a^2 + W2(q)^2
    w2 = wasserstein_1d_cdf(q, grid, cdf, 2)
    assert w2 < 4e-3                                                                   # measured 2.4e-3
    assert wasserstein_1d_cdf(q + 0.25, grid, cdf, 2) == pytest.approx(math.hypot(0.25, w2), abs=3e-12)  # 4e-13
    # atoms at quadrature points are a coarser stand-in, still consistent (measured 3.5e-6 at h = 0.02)
    pts, w = empirical.density_as_measure(rho)
    assert wasserstein_1d(q + 0.25, pts[:, 0], wy=w) == pytest.approx(0.25, abs=2e-5)

    sq = meshes.rectangle(MPI.COMM_WORLD, [-6, -6], [6, 6], 0.2)
    W = dolfinx.fem.functionspace(sq, ("Lagrange", 2))
    r2 = dolfinx.fem.Function(W)
    r2.interpolate(lambda x: gaussian_density(x[:2], [0.0, 0.0], np.eye(2)))
    pts, w = empirical.density_as_measure(r2, quadrature_degree=4)
    shift = np.array([0.3, 0.4])
    assert sliced_wasserstein(pts, pts, wx=w, wy=w) == 0.0
    sw = sliced_wasserstein(pts + shift, pts, wx=w, wy=w, n_projections=400)
    assert sw == pytest.approx(0.5 / math.sqrt(2), rel=0.05)


def test_particle_paths_agree_serial_and_two_ranks(tmp_path):
    """Same seed, 1 vs 2 ranks: particles (Langevin with D(x), McKean-Vlasov with a nonlinear W,
    mean-field network) bitwise equal; histogram and projection equal to solver tolerance."""
    r1 = run_mpi(1, "mpi_particles.py", tmp_path)
    r2 = run_mpi(2, "mpi_particles.py", tmp_path)
    a, b = np.load(r1["path"]), np.load(r2["path"])
    for key in ("x_lv", "x_mv", "theta", "theta_ct", "theta_sgd"):     # bitwise, also with an empty rank
        assert np.array_equal(a[key], b[key]), key
    assert r2["local_neurons"] == [0, 100]
    assert np.allclose(a["h"], b["h"], rtol=0, atol=1e-12)
    assert np.allclose(a["u"], b["u"], rtol=0, atol=1e-10)
    for r in (r1, r2):
        assert abs(r["hist_mass"] - 1) < 1e-13 and abs(r["proj_mass"] - 1) < 1e-11
        assert abs(r["lumped_mass"] - 1) < 1e-13
