"""Bad input fails early with an error naming the offending value."""

import dolfinx.fem
import numpy as np
import pytest
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver


@pytest.fixture(scope="module")
def msh():
    return meshes.rectangle(MPI.COMM_WORLD, [-3, -3], [3, 3], 0.3)


def quad(x):
    return 0.5 * (x[0] ** 2 + x[1] ** 2)


def gauss(x):
    return gaussian_density(x, [0, 0], 0.5 * np.eye(2))


@pytest.mark.parametrize("kw,msg", [
    ({"beta": -1.0}, "beta=-1.0"), ({"beta": float("nan")}, "beta=nan"), ({"dt": 0.0}, "dt=0.0"),
    ({"scheme": "rk4"}, "scheme='rk4'"), ({"method": "upwind"}, "method='upwind'"),
    ({"degree": 0}, "degree=0"), ({"method": "sg", "degree": 2, "scheme": "backward_euler"}, "degree=2"),
    ({"method": "sg", "scheme": "crank_nicolson"}, "scheme='crank_nicolson'"),
])
def test_bad_parameters(msh, kw, msg):
    with pytest.raises((ValueError, TypeError), match=msg.replace("(", r"\(").replace("[", r"\[")):
        FokkerPlanckSolver(msh, quad, **kw)


def test_bad_initial_densities(msh):
    s = FokkerPlanckSolver(msh, quad)
    with pytest.raises(ValueError, match=r"negative: min value -0\.\d+ at x=\("):
        s.set_initial(lambda x: gauss(x) - 0.5 * np.exp(-((x[0] - 1) ** 2 + x[1] ** 2) * 20))
    with pytest.raises(ValueError, match=r"not normalised: mass 1\.99"):
        s.set_initial(lambda x: 2 * gauss(x))
    with pytest.raises(ValueError, match="not finite"):
        s.set_initial(lambda x: np.where(x[0] > 1, np.nan, gauss(x)))
    with pytest.raises(RuntimeError, match="set_initial"):
        FokkerPlanckSolver(msh, quad).step()
    s.set_initial(lambda x: 2 * gauss(x), normalize=True)
    assert abs(s.history["mass"][0] - 1) < 1e-14


def test_mismatched_mesh(msh):
    other = meshes.rectangle(MPI.COMM_WORLD, [-3, -3], [3, 3], 0.5)
    rho = dolfinx.fem.Function(dolfinx.fem.functionspace(other, ("Lagrange", 1)))
    rho.interpolate(gauss)
    with pytest.raises(ValueError, match="mismatched meshes"):
        FokkerPlanckSolver(msh, quad).set_initial(rho)


def test_diverging_solver_and_nan_are_reported(msh):
    s = FokkerPlanckSolver(msh, quad, petsc_options={"ksp_type": "gmres", "pc_type": "none",
                                                     "ksp_max_it": 2, "ksp_rtol": 1e-14})
    s.set_initial(gauss)
    with pytest.raises(RuntimeError, match="step 1 .*DIVERGED_MAX_IT"):
        s.step()
    import ufl

    with pytest.raises(ValueError, match=r"potential f is not finite .* at x=\(-"):
        FokkerPlanckSolver(msh, lambda x: ufl.ln(x[0] + 1))
