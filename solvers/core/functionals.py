"""Mass, free energy F = int f rho + beta^-1 int rho log rho (+ 1/2 iint W rho rho), and
KL(rho || exp(-beta f)/Z).

Two discretisations: 'quadrature' (exact integrals of the FE function, for Galerkin) and
'lumped' (nodal sums with the lumped mass, the discrete energy the edge-averaged scheme
dissipates). KL = beta F + mass log Z, which for unit mass is the relative entropy (F without
the interaction energy there: it is the KL to exp(-beta f)/Z).
With an interaction, `interaction_energy` is 1/2 int psi rho, psi = W * rho the field the caller
keeps equal to W * (current rho): a UFL expression ('quadrature') or a function returning its nodal
values ('lumped'). A psi Function in rho's space with the caller's mass matrix M (mass_matrix) is
1/2 psi^T M rho, the same number as the form without a quadrature pass.
"""

from __future__ import annotations

import math

import dolfinx.fem
import dolfinx.la
import numpy as np
import ufl
from mpi4py import MPI


def _log_partition(z: float, beta: float) -> float:
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"Z = int exp(-beta (f - min f)) = {z!r} for beta={beta:g}: exp(-beta f) underflows at every "
                         "quadrature point (the Gibbs density is narrower than the mesh resolves, or f is not "
                         "finite); reduce beta or refine the mesh")
    return math.log(z)


class Functionals:
    def __init__(self, rho: dolfinx.fem.Function, f_expr, f_nodal: np.ndarray, beta: float,
                 kind: str, lumped_mass: np.ndarray | None = None, quadrature_degree: int | None = None,
                 psi=None, mass_matrix=None):
        self.rho, self.beta, self.kind, self.psi = rho, beta, kind, psi
        V = rho.function_space
        self.comm = V.mesh.comm
        self.n = V.dofmap.index_map.size_local
        self.f_nodal = f_nodal
        self.fmin = self.comm.allreduce(float(np.min(f_nodal[: self.n])) if self.n else math.inf, MPI.MIN)
        if kind == "lumped":
            self.m = lumped_mass[: self.n]
            z = float(np.sum(self.m * np.exp(-beta * (f_nodal[: self.n] - self.fmin))))
            self.logZ = _log_partition(self.comm.allreduce(z), beta) - beta * self.fmin
        else:
            p = V.element.basix_element.degree
            q = quadrature_degree or 2 * p + 4
            dx = ufl.dx(metadata={"quadrature_degree": q})
            # the entropy, integrated at every record, by a rule of degree 2p + 2 (6 points per triangle for
            # P1, against 12 for 2p + 4: 0.11 s against 0.18 s at 1.44M dofs); its error O(h^(2p+3)) where
            # rho > 0 is far below the discretisation's
            dx_s = ufl.dx(metadata={"quadrature_degree": quadrature_degree or 2 * p + 2})
            entropy = ufl.conditional(ufl.gt(rho, 0), rho * ufl.ln(ufl.max_value(rho, 1e-300)), 0)
            # the terms linear in rho are dot products with vectors assembled once (int phi_i and
            # int f phi_i, same quadrature): only the entropy is integrated again at each record
            v = ufl.TestFunction(V)
            self._w_mass = self._vector(v * dx)
            self._w_f = self._vector(f_expr * v * dx) if f_expr is not None else None
            self._energy = dolfinx.fem.form(entropy / beta * dx_s)
            self._interaction = dolfinx.fem.form(0.5 * psi * rho * dx) if psi is not None else None
            self._M = None
            if mass_matrix is not None and isinstance(psi, dolfinx.fem.Function) and psi.function_space == V:
                # psi in rho's space (a kernel's nodal field): 1/2 int psi rho = 1/2 psi^T M rho with the caller's
                # mass matrix, exact like the form (both integrate the same product exactly), 5x cheaper
                self._M = mass_matrix
                self._Mx, self._My = self._M.createVecs()
            zform = dolfinx.fem.form(ufl.exp(-beta * (f_expr - self.fmin)) * dx)
            self.logZ = _log_partition(self._sum(zform), beta) - beta * self.fmin

    @property
    def mass_weights(self) -> np.ndarray:
        """w with mass = sum_i w_i rho_i over the owned dofs: int phi_i ('quadrature', = M 1) or the lumped mass."""
        return self._w_mass if self.kind != "lumped" else self.m

    def _vector(self, L) -> np.ndarray:
        b = dolfinx.fem.assemble_vector(dolfinx.fem.form(L))
        b.scatter_reverse(dolfinx.la.InsertMode.add)
        return b.array[: self.n].copy()

    def _dot(self, w: np.ndarray) -> float:
        return self.comm.allreduce(float(w @ self.rho.x.array[: self.n]), op=MPI.SUM)

    def _sum(self, form) -> float:
        return self.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)

    def mass(self) -> float:
        if self.kind == "lumped":
            return self.comm.allreduce(float(np.sum(self.m * self.rho.x.array[: self.n])))
        return self._dot(self._w_mass)

    def free_energy(self, interaction: bool = True) -> float:
        """F, with the interaction energy unless interaction=False."""
        if self.kind == "lumped":
            r = self.rho.x.array[: self.n]
            ent = np.where(r > 0, r * np.log(np.where(r > 0, r, 1.0)), 0.0)
            F = self.comm.allreduce(float(np.sum(self.m * (self.f_nodal[: self.n] * r + ent / self.beta))))
        else:
            F = self._sum(self._energy) + (self._dot(self._w_f) if self._w_f is not None else 0.0)
        return F + self.interaction_energy() if interaction else F

    def interaction_energy(self) -> float:
        """1/2 iint W rho rho = 1/2 int psi rho (0 without an interaction)."""
        if self.psi is None:
            return 0.0
        if self.kind == "lumped":
            r = self.rho.x.array[: self.n]
            return 0.5 * self.comm.allreduce(float(np.sum(self.m * self.psi()[: self.n] * r)))
        if self._M is not None:
            self._Mx.array[:] = self.rho.x.array[: self.n]
            self._M.mult(self._Mx, self._My)
            return 0.5 * self.comm.allreduce(float(self.psi.x.array[: self.n] @ self._My.array), op=MPI.SUM)
        return self._sum(self._interaction)

    def relative_entropy(self, mass: float | None = None, free_energy: float | None = None) -> float:
        """KL(rho || exp(-beta f)/Z) = beta F_0 + mass log Z, F_0 the free energy without interaction."""
        mass = self.mass() if mass is None else mass
        F = self.free_energy(interaction=False) if free_energy is None else free_energy
        return self.beta * F + mass * self.logZ

    def kl_form(self, ref, floor: float = 1e-300):
        """The compiled form of KL(rho || ref) = int rho log(rho / ref) (ref a positive Function;
        values of either below `floor` are clipped; where rho <= 0 the integrand is 0)."""
        rho = self.rho
        q = 2 * rho.function_space.element.basix_element.degree + 4
        integrand = ufl.conditional(ufl.gt(rho, 0), rho * ufl.ln(ufl.max_value(rho, floor) / ufl.max_value(ref, floor)), 0)
        return dolfinx.fem.form(integrand * ufl.dx(metadata={"quadrature_degree": q}))

    def kl(self, form) -> float:
        return self._sum(form)

    def min_value(self) -> float:
        r = self.rho.x.array[: self.n]
        return self.comm.allreduce(float(np.min(r)) if self.n else math.inf, op=MPI.MIN)
