"""The Random Batch Method (fpjko.samplers.random_batch): batches over all particles (across stream blocks and ranks),
exactly unbiased for the direct force -(1/n) sum_j grad W(x_i - x_j) for every n, each force exactly its batch's
formula, bitwise the same on 1 and 2 ranks (also with a rank holding no particles), bad input refused."""

import numpy as np
import pytest

from conftest import run_mpi
from fpjko.samplers.interacting import interaction_force
from fpjko.samplers.random_batch import RandomBatch, batch_sizes
from fpjko.samplers.streams import Streams


def gauss_grad(z):
    """grad W for W(z) = -exp(-|z|^2 / 2)."""
    return z * np.exp(-0.5 * np.sum(z * z, axis=-1))[..., None]


def _setup(n, block, seed=4, d=2):
    st = Streams(n, seed, comm=None, block=block)
    x = st.sample(lambda g, m: 0.8 * g.standard_normal((m, d)))
    return st, x, interaction_force(x, st, grad_W=gauss_grad)


def _batches(n, p, perm):
    """The batches of one permutation, as the method cuts them."""
    nb, r, small = batch_sizes(n, p)
    sizes = [small + 1] * r + [small] * (nb - r)
    return np.split(perm, np.cumsum(sizes)[:-1])


def test_batch_sizes():
    """min(ceil(n/p), floor(n/2)) batches whose sizes differ by at most one: never a particle alone (n >= 2), never
    more than p except one batch of 3 for p = 2 and an odd n."""
    for n in range(1, 60):
        for p in range(2, 12):
            nb, r, small = batch_sizes(n, p)
            assert r * (small + 1) + (nb - r) * small == n and 0 <= r < nb
            largest = small + (r > 0)
            if n >= 2:
                assert small >= 2, (n, p)
            assert largest <= (3 if p == 2 and n % 2 else min(p, n)), (n, p)
            assert nb == max(1, min(-(-n // p), n // 2))


@pytest.mark.parametrize("n,block", [(2, 16384), (3, 16384), (7, 16384), (37, 12), (200, 16384)])
def test_one_batch_is_the_direct_force(n, block):
    """p >= n: one batch, F_i = -((n-1)/n) (1/(n-1)) sum_{j != i} grad W = the direct force to round-off."""
    st, x, exact = _setup(n, block)
    for p in (n, n + 5) if n >= 2 else ():
        F = RandomBatch(st, gauss_grad, max(p, 2)).force(x)
        assert np.max(np.abs(F - exact)) <= 1e-12 * np.max(np.abs(exact)), (n, p)


def test_one_particle_feels_nothing():
    st, x, _ = _setup(1, 16384)
    np.testing.assert_array_equal(RandomBatch(st, gauss_grad, 2).force(x), np.zeros((1, 2)))


@pytest.mark.parametrize("n,p,block", [(7, 2, 16384), (101, 4, 16384), (37, 2, 8), (37, 2, 12), (37, 3, 12)])
def test_mean_of_draws_is_the_direct_force(n, p, block):
    """Exactly unbiased for every n: the mean of 2000 draws is the direct force within 4 standard errors (the
    per-particle sample standard deviation over draws), for every particle and component; an odd n with p = 2 (one
    batch of 3), and n over several stream blocks: 37 = 4 x 8 + 5, and 37 = 3 x 12 + 1 with particle 36 alone in
    its block (it never interacted when batches stayed inside blocks). The test has the power to see the old
    batch-inside-the-block bias: a force scaled by (n-1)/n fails it."""
    st, x, exact = _setup(n, block)
    rb = RandomBatch(st, gauss_grad, p)
    draws = np.array([rb.force(x) for _ in range(2000)])
    mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    assert np.all(se > 0)
    z = np.abs(mean - exact) / se
    assert np.all(z <= 4.0), (np.max(z), np.unravel_index(np.argmax(z), z.shape))
    if n % block == 1:                           # the particle alone in its block: a force (0 would fail the test)
        assert np.all(np.abs(exact[-1]) > 4 * se[-1]) and np.all(draws[:, -1] != 0)
    if n == 7:
        assert np.any(np.abs(mean * (n - 1) / n - exact) > 4 * se)


@pytest.mark.parametrize("n,p,block", [(7, 2, 16384), (10, 3, 4), (37, 2, 12), (101, 4, 16), (64, 8, 16384)])
def test_each_force_is_its_batch_exactly(n, p, block):
    """For each of three draws, rebuild the permutation from the same stream, cut it into the batches and check every
    particle's force against -((n-1)/n) (1/(|B|-1)) sum_{j in B, j != i} grad W(x_i - x_j) to 1e-14."""
    st, x, _ = _setup(n, block)
    rb, twin = RandomBatch(st, gauss_grad, p), RandomBatch(st, gauss_grad, p)
    for _ in range(3):
        F, perm = rb.force(x), twin.permutation()
        assert sorted(perm.tolist()) == list(range(n))
        batches = _batches(n, p, perm)
        sizes = [len(b) for b in batches]
        assert min(sizes) >= 2 and max(sizes) - min(sizes) <= 1 and sum(sizes) == n
        want = np.zeros_like(x)
        for B in batches:
            for i in B:
                others = B[B != i]
                want[i] = -(n - 1) / n / (len(B) - 1) * gauss_grad(x[i] - x[others]).sum(axis=0)
        assert np.max(np.abs(F - want)) <= 1e-14 * max(1.0, np.max(np.abs(want))), np.max(np.abs(F - want))


def test_streams_are_its_own():
    """The permutation stream is deterministic (one permutation per call, the same for the same seed) and apart
    from the noise streams and Streams.shared: drawing batches leaves those untouched."""
    a, b = Streams(50, 3, comm=None, block=8), Streams(50, 3, comm=None, block=8)
    x = a.sample(lambda g, m: g.standard_normal((m, 2)))
    b.sample(lambda g, m: g.standard_normal((m, 2)))
    ra, rb = RandomBatch(a, gauss_grad, 2), RandomBatch(b, gauss_grad, 2)
    Fa = [ra.force(x) for _ in range(3)]
    np.testing.assert_array_equal(Fa[0], rb.force(x))
    assert not np.array_equal(Fa[0], Fa[1])
    np.testing.assert_array_equal(a.standard_normal((2,)), b.standard_normal((2,)))
    np.testing.assert_array_equal(a.shared.random(4), b.shared.random(4))
    np.testing.assert_array_equal(Fa[1], rb.force(x))


def test_two_ranks_give_the_serial_forces_bitwise():
    """1 and 2 ranks give the same bits for three draws: batches across blocks and ranks (n = 5000 in blocks of
    1000, p = 3; n = 37 in blocks of 12 with a particle alone in its block, p = 2), and with rank 1 holding no
    particles (n = 700 < one block of 1000)."""
    r1, r2 = run_mpi(1, "mpi_random_batch.py"), run_mpi(2, "mpi_random_batch.py")
    assert set(r1) == set(r2) == {"5000/1000/3", "37/12/2", "700/1000/3"}
    for key, n in (("5000/1000/3", 5000), ("37/12/2", 37), ("700/1000/3", 700)):
        assert r1[key] == r2[key] and len(r1[key]) == 3 * 2 * n, key


def test_bad_input_is_refused():
    st = Streams(10, 0, comm=None)
    rb = RandomBatch(st, gauss_grad, 2)
    with pytest.raises(ValueError, match=r"expected this rank's 10 particles, got 9"):
        rb.force(np.zeros((9, 2)))
    with pytest.raises(ValueError, match=r"expected this rank's 10 particles as an \(n_local, d\) array, got shape "
                                         r"\(10,\)"):
        rb.force(np.zeros(10))
    x = np.zeros((10, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"particle 3 is not finite: x=\[0.0, nan\]"):
        rb.force(x)
    x[3, 1], x[8, 0] = 0.0, -np.inf
    st8 = Streams(10, 0, comm=None, block=4)
    with pytest.raises(ValueError, match=r"particle 8 is not finite: x=\[-inf, 0.0\]"):
        RandomBatch(st8, gauss_grad, 2).force(x)
