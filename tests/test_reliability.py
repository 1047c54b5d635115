"""Silent wrong results that are now errors or warnings naming the value (issue 29, point 4), serially; the
MPI cases (an argument bad on one rank only) are in test_mpi_faults.py."""

import warnings

import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from fpjko.metrics.distances import gaussian_w2
from fpjko.solvers import FokkerPlanckSolver, LocalEntropy, ViscousHJ, network_pde

COMM = MPI.COMM_WORLD


def _line(h=0.1):
    return meshes.interval(COMM, -3, 3, h)


def _quad(x):
    return 0.5 * x[0] ** 2


def test_an_odd_interaction_kernel_is_refused():
    """W(z) = z_0 is no interaction potential (W(z) = W(-z) fails): refused naming a probe and both values; an
    even kernel is taken."""
    with pytest.raises(ValueError, match=r"must be even, W\(z\) = W\(-z\): W\(\[.*\]\) = .* but W\(-z\) = "):
        FokkerPlanckSolver(_line(), lambda x: 0.5 * x[0] ** 2, interaction=lambda z: z[..., 0])
    FokkerPlanckSolver(_line(), lambda x: 0.5 * x[0] ** 2, interaction=lambda z: np.exp(-np.sum(z * z, axis=-1)))
    from fpjko.solvers import NewtonJKO, PolynomialInteraction

    with pytest.raises(ValueError, match=r"must be even, W\(z\) = W\(-z\): it has the odd-degree terms 0.5 z\^\(3,\)"):
        NewtonJKO(_line(), 0.1, potential=_quad, beta=1.0, interaction=PolynomialInteraction({(2,): 1.0, (3,): 0.5}))


def test_gaussian_w2_refuses_a_non_covariance():
    assert gaussian_w2([0, 0], np.eye(2), [3, 4], np.eye(2)) == pytest.approx(5.0, rel=1e-14)
    with pytest.raises(ValueError, match=r"C2 = \[\[1.0, 0.0\], \[0.0, -1.0\]\] is not positive semi-definite "
                                         r"\(eigenvalue -1\)"):
        gaussian_w2([0, 0], np.eye(2), [0, 0], np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="C1 = .* is not symmetric"):
        gaussian_w2([0, 0], [[1, 0.5], [0, 1]], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match=r"C2 has shape \(3, 3\), expected \(2, 2\)"):
        gaussian_w2([0, 0], np.eye(2), [0, 0], np.eye(3))
    with pytest.raises(ValueError, match="m1 = .* is not finite"):
        gaussian_w2([np.nan, 0], np.eye(2), [0, 0], np.eye(2))


def test_a_zero_density_is_no_measure():
    import dolfinx.fem
    from fpjko.solvers.particles.empirical import density_as_measure

    rho = dolfinx.fem.Function(dolfinx.fem.functionspace(_line(), ("Lagrange", 1)))
    with pytest.raises(ValueError, match="total mass 0.0: a zero density is no probability measure"):
        density_as_measure(rho)
    rho.x.array[:] = 1.0 / 6.0
    pts, w = density_as_measure(rho)
    assert w.sum() == pytest.approx(1.0, abs=1e-14) and np.all(w >= 0) and pts.shape == (len(w), 1)


def test_a_misspelled_petsc_option_is_reported():
    """An option the KSP never reads (ksp_typ for ksp_type) is named in a warning with its prefix; correct options
    (and the defaults the solver sets itself) give none."""
    s = FokkerPlanckSolver(_line(), _quad, dt=0.05, petsc_options={"ksp_typ": "cg", "pc_type": "lu"})
    s.set_initial(lambda x: np.exp(-x[0] ** 2), normalize=True)
    with pytest.warns(RuntimeWarning, match=r"PETSc options not used by the solver with prefix 'fp_': -fp_ksp_typ "):
        s.step()
    ok = FokkerPlanckSolver(_line(), _quad, dt=0.05, petsc_options={"ksp_type": "preonly", "pc_type": "lu"},
                            solver="iterative")
    ok.set_initial(lambda x: np.exp(-x[0] ** 2), normalize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok.step()


def test_a_matrix_option_reaches_the_factorisation():
    """Options of the factor matrix (mat_*) given to a solver are read when the factor is made, in the first solve:
    they were taken out of PETSc's database when the KSP was set up and silently never used (an ICNTL of MUMPS,
    CHOLMOD's ordering methods); now they reach the factor, and the database is left as found."""
    from petsc4py import PETSc

    from fpjko.solvers.core import linear

    n = 8
    A = PETSc.Mat().createAIJ((n, n), nnz=3, comm=PETSc.COMM_SELF)
    for i in range(n):
        A.setValue(i, i, 2.0)
        for j in (i - 1, i + 1):
            if 0 <= j < n:
                A.setValue(i, j, -1.0)
    A.assemble()
    ksp = linear.make_ksp(A, "tmat_", {"pc_type": "lu", "pc_factor_mat_solver_type": "mumps",
                                       "mat_mumps_icntl_14": 55})
    b, x = A.createVecs()
    b.set(1.0)
    linear.solve(ksp, b, x, "test")
    assert ksp.getPC().getFactorMatrix().getMumpsIcntl(14) == 55
    assert not any(k.startswith("tmat_") for k in PETSc.Options().getAll())
    for obj in (ksp, A, b, x):
        obj.destroy()


@pytest.mark.parametrize("cls", [LocalEntropy, ViscousHJ])
def test_a_loss_of_the_wrong_shape_is_refused(cls):
    """f returning 3 values for every point set was read out of bounds (results changed from run to run)."""
    with pytest.raises(ValueError, match=r"returned values of shape \(3,\) at \d+ points x of shape \(3, \d+\); "
                                         r"expected \(\d+,\)"):
        cls(_line(), lambda x: np.array([1.0, 2.0, 3.0]), 2.0)
    u = cls(_line(), lambda x: 0.5, 2.0).u                   # a constant is broadcast
    assert np.all(u.x.array == 0.5)


def test_viscous_hj_reports_a_result_outside_the_comparison_principle():
    """At beta = 1e4 on a steep f the mesh does not resolve the layer and Newton landed on u ~ -1e4 from f in
    [0, 450] with converged = True (measured); u(t) must stay within the range of u(s), s < t, so such a step now
    warns naming the ranges and records converged = False."""
    s = ViscousHJ(_line(), lambda x: 50 * x[0] ** 2, 1e4)
    with pytest.warns(RuntimeWarning, match=r"u left the range of the previous level, .* \(the comparison "
                                            r"principle\): the mesh does not resolve the layer at beta=10000"):
        s.solve(1.0, 5)
    assert not all(s.history["converged"][1:])
    fine = ViscousHJ(_line(), lambda x: 0.5 * x[0] ** 2, 2.0)  # resolved: every step converged and in range
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine.solve(1.0, 10)
    u = fine.u.x.array
    assert all(fine.history["converged"]) and u.min() >= 0.0 and u.max() <= 4.5


def test_an_increasing_free_energy_is_reported():
    """The explicit interaction beyond its step limit (k = 20, dt = 0.05: F 4.6 -> -3.5 -> 3.1, min rho -7.8e4 by
    t = 0.5, measured) went on with no word on F; the semi-implicit default at the same dt keeps F non-increasing
    and warns nothing. (k = 200 is caught earlier, by the mass check's error.)"""
    def run(scheme):
        s = FokkerPlanckSolver(_line(), _quad, dt=0.05, scheme="backward_euler", interaction=20.0,
                               interaction_scheme=scheme)
        s.set_initial(lambda x: np.exp(-(x[0] - 1) ** 2), normalize=True)
        s.run(0.5)
        return s
    with pytest.warns(RuntimeWarning, match=r"the free energy increased from .* which the Fokker-Planck flow never "
                                            r"does: interaction_scheme='explicit' is stable only for dt"):
        run("explicit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = run("semi-implicit")
    assert np.all(np.diff(s.history["energy"]) <= 1e-10 * abs(s.history["energy"][0]))


def test_network_pde_refuses_a_zero_step():
    from fpjko.samplers.mean_field_nn import TeacherData

    X = np.random.default_rng(0).standard_normal((5, 1))
    with pytest.raises(ValueError, match="dt must be positive, got dt=0"):
        network_pde(_line(), TeacherData(X, np.tanh(X[:, 0])), temperature=0.1, dt=0)
