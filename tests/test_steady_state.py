"""Long-time limit: the double-well flow reaches exp(-beta f)/Z to the discretisation error."""

import math

import dolfinx.fem
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from fpjko import meshes
from fpjko.references.gaussian import gaussian_density
from fpjko.solvers import FokkerPlanckSolver
from fpjko.solvers.core.compat import interpolate

BETA = 2.0


def double_well(x):
    return (x[0] ** 2 - 1) ** 2 + 0.5 * x[1] ** 2


def equilibrate(h, degree):
    msh = meshes.rectangle(MPI.COMM_WORLD, [-2.0, -2.0], [2.0, 2.0], h)
    s = FokkerPlanckSolver(msh, double_well, beta=BETA, degree=degree, dt=20.0, scheme="backward_euler")
    s.set_initial(lambda x: gaussian_density(x, [0.6, -0.4], 0.05 * np.eye(2)), normalize=True)
    s.run(3000.0)
    logZ = s.functionals.logZ

    def gibbs(x):
        return ufl.exp(-BETA * double_well(x) - logZ)

    err = s.l2_error(gibbs) / s.l2_norm(gibbs)
    interp = interpolate(dolfinx.fem.Function(s.V), gibbs(s.x))
    e_i = interp - gibbs(s.x)
    q = dolfinx.fem.form(e_i * e_i * ufl.dx(metadata={"quadrature_degree": 2 * degree + 6}))
    err_interp = math.sqrt(MPI.COMM_WORLD.allreduce(dolfinx.fem.assemble_scalar(q))) / s.l2_norm(gibbs)
    return s, err, err_interp


@pytest.mark.parametrize("degree,hs,order", [(1, [0.2, 0.1, 0.05], 2.0), (2, [0.2, 0.1, 0.05], 3.0)])
def test_double_well_reaches_gibbs(degree, hs, order, slope):
    errs = []
    for h in hs:
        s, err, err_interp = equilibrate(h, degree)
        kl = s.history["relative_entropy"]
        assert abs(kl[-1] - kl[-2]) < 5e-11 * abs(kl[0])      # stationary: measured 8.3e-12 at most
        assert err < 3.0 * err_interp, (h, err, err_interp)  # at the discretisation error: measured 0.91-1.0
        errs.append(err)
    assert order - 0.2 < slope(hs, errs) < order + 0.4, errs
