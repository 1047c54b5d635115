"""The mean-field PDE of a two-layer network f(x) = (1/N) sum_i phi(theta_i, x) on a mesh of parameter space,
phi(theta, x) = sigma(<theta, x>), or a sigma(<u, x>) for theta = (a, u) with both layers trained
(TeacherData(output_weight=True)); below, sigma(<theta, x_m>) stands for phi(theta, x_m).

For square loss on a data set of M points (fpjko.samplers.mean_field_nn.TeacherData), the density rho(t, theta)
of the neurons solves

    rho_t = div(rho grad Psi(theta; rho)) [+ (gamma/2) d_ij(rho Sigma_ij(theta; rho))] [+ T Laplacian(rho)],
    Psi = V + int U(theta, theta') rho(dtheta'),   V(theta) = -(1/M) sum_m y_m sigma(<theta, x_m>),
    U(theta, theta') = (1/M) sum_m sigma(<theta, x_m>) sigma(<theta', x_m>),

the gradient flow (in W2) of the risk R(rho) = 1/2 mean_m (f_rho(x_m) - y_m)^2. U has rank M, so
int U rho = (1/M) sum_m sigma(<theta, x_m>) c_m, c_m = int sigma(<theta, x_m>) rho = f_rho(x_m): a
SeparableInteraction, O(M dofs) per step, never O(dofs^2); its state c is the network's predictions on
the data, so the risk of the PDE is data.risk(c). Sigma(theta; rho), the covariance over the data of
the per-sample gradient (f_rho(x_m) - y_m) sigma'(<theta, x_m>) x_m, is computed by the same numpy code
as the particles' (TeacherData.noise_covariance), at the nodes of a P1 tensor field.

`network_pde` builds the solver for each particle system (fpjko.samplers.mean_field_nn says which is which):
    gamma = 0, T = 0   noiseless continuity equation (SGD with step gamma N^b, b < 1): DG upwind,
                       fpjko.solvers.transport.continuity.ContinuityEquation;
    gamma = 0, T > 0   mean-field Langevin: FokkerPlanckSolver with beta = 1/T (constant operator);
    gamma > 0          the continuous-time model at b = 1 (independent noise per neuron): FokkerPlanckSolver
                       with the density-dependent D = (gamma/2) Sigma(theta; rho) + T I (beta = 1),
                       re-assembled every step.
"""

from __future__ import annotations

import dolfinx.fem
import numpy as np

from fpjko.common.collective import same_everywhere
from fpjko.samplers.mean_field_nn import TeacherData
from fpjko.solvers.core import validation
from fpjko.solvers.core.moments import json_numbers
from fpjko.solvers.fokker_planck.coefficients import StateDependentDiffusion
from fpjko.solvers.fokker_planck.interaction import SeparableInteraction
from fpjko.solvers.fokker_planck.stepper import FokkerPlanckSolver
from fpjko.solvers.transport.continuity import ContinuityEquation


def network_interaction(data: TeacherData, **kw) -> SeparableInteraction:
    """U(theta, theta') = (1/M) sum_m sigma(<theta, x_m>) sigma(<theta', x_m>); state c_m = f_rho(x_m)."""
    return SeparableInteraction(data.features, np.full(data.M, 1.0 / data.M), **kw)


def network_potential(V: dolfinx.fem.FunctionSpace, data: TeacherData) -> dolfinx.fem.Function:
    """V(theta) = -(1/M) sum_m y_m sigma(<theta, x_m>), interpolated in the Lagrange space V."""
    d = V.mesh.geometry.dim
    pot = dolfinx.fem.Function(V, name="V")
    X = V.tabulate_dof_coordinates()[:, :d]
    pot.x.array[:] = -(data.features(X) @ data.Y) / data.M
    return pot


class SGDNoise(StateDependentDiffusion):
    """D(theta; rho) = (gamma/2) Sigma(theta; rho) + T I at the nodes of a P1 tensor field (positive semi-definite:
    the gradient noise vanishes where the feature's gradient does, e.g. in a at u = 0 for a tanh(<u, x>))."""

    semidefinite = True

    def __init__(self, mesh, data: TeacherData, gamma: float, temperature: float = 0.0, interaction=None):
        super().__init__(mesh, name="D_sgd")
        self.data, self.gamma, self.temperature = data, float(gamma), float(temperature)
        self.interaction = interaction          # bound SeparableInteraction giving c(rho)

    def values(self, X, rho):
        c = self.interaction.state(rho)
        d = X.shape[1]
        return 0.5 * self.gamma * self.data.noise_covariance(X, c) + self.temperature * np.eye(d)

    def fingerprint(self) -> dict:
        """gamma, temperature and the data set's activation and moments (the order of the points does not matter).

        Returns
        -------
        dict
            JSON values.
        """
        X, Y = self.data.X, self.data.Y
        return {**super().fingerprint(), "activation": self.data.activation, "M": int(self.data.M),
                "output_weight": bool(self.data.output_weight),
                "data": json_numbers(np.concatenate([X.sum(0), (X * X).sum(0), [Y.sum(), Y @ Y], X.T @ Y]))}


def network_pde(mesh, data: TeacherData, gamma: float = 0.0, temperature: float = 0.0, dt: float | None = None,
                degree: int = 1, scheme: str = "bdf2", psi_degree: int = 2, **kw):
    """The limit PDE's solver of the two-layer network for the given noise (see the module doc).

    The returned solver's `interaction.state(rho)` is c = f_rho(x_m), so
    `data.risk(solver.interaction.state(solver.rho))` is R(rho).

    Parameters
    ----------
    mesh : dolfinx.mesh.Mesh
        The neurons' parameter space.
    data : fpjko.samplers.mean_field_nn.TeacherData
    gamma : float
        The SGD step's noise: the diffusion (gamma/2) Sigma(theta) (b = 1, independent noise per neuron).
    temperature : float
        An isotropic temperature.
    dt : float, optional
        The time step (default 0.01 for the Fokker-Planck solvers, the CFL step for the continuity equation).
    degree : int
    scheme : str
        The Fokker-Planck time scheme.
    psi_degree : int
        Degree of the space of psi.
    **kw
        Passed to the solver.

    Returns
    -------
    ContinuityEquation or FokkerPlanckSolver
        The continuity equation when gamma = temperature = 0, else the Fokker-Planck equation.
    """
    same_everywhere(mesh.comm, "network_pde", {k: v for k, v in locals().items() if k != "mesh"})
    gamma = validation.number("gamma", gamma, nonnegative=True)            # NaN too, not only < 0
    if mesh.geometry.dim != data.dim:
        raise ValueError(f"the neurons live in R^{data.dim} (data.dim), the mesh is {mesh.geometry.dim}D: "
                         "mismatched meshes")
    temperature = validation.number("temperature", temperature, nonnegative=True)
    inter = network_interaction(data)
    if gamma == 0 and temperature == 0:
        Vpsi = dolfinx.fem.functionspace(mesh, ("Lagrange", psi_degree))
        return ContinuityEquation(mesh, potential=network_potential(Vpsi, data), interaction=inter,
                                  degree=degree, dt=dt, psi_degree=psi_degree, **kw)
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
    pot = network_potential(V, data)
    if gamma == 0:
        return FokkerPlanckSolver(mesh, pot, beta=1.0 / temperature, degree=degree, dt=1e-2 if dt is None else dt, scheme=scheme,
                                  interaction=inter, **kw)
    noise = SGDNoise(mesh, data, gamma, temperature, interaction=inter)
    solver = FokkerPlanckSolver(mesh, pot, beta=1.0, degree=degree, dt=1e-2 if dt is None else dt, scheme=scheme,
                                interaction=inter, diffusion=noise, **kw)
    noise.interaction = solver.interaction      # the one the solver bound (its own copy, were inter bound before)
    return solver


def risk(solver, data: TeacherData) -> float:
    """R(rho) = 1/2 mean_m (f_rho(x_m) - y_m)^2 of the solver's current density."""
    return data.risk(solver.interaction.state(solver.rho))
