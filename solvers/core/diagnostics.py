"""What every density time stepper reports the same way: its global dof count, L2 errors and norms."""

from __future__ import annotations

import math

import dolfinx.fem
import ufl


class DensityDiagnostics:
    """Mixin for solvers holding `V`, `rho`, `x` (SpatialCoordinate), `comm` and `degree`."""

    @property
    def num_dofs(self) -> int:
        """The global number of dofs of the density's space."""
        return self.V.dofmap.index_map.size_global

    def l2_error(self, exact) -> float:
        """||rho - exact||_L2 (quadrature degree 2k + 6).

        Parameters
        ----------
        exact : callable
            x -> UFL expression, x the mesh's SpatialCoordinate.

        Returns
        -------
        float
        """
        return self.l2_norm(lambda x: self.rho - exact(x))

    def l2_norm(self, expr) -> float:
        """||expr(x)||_L2.

        Parameters
        ----------
        expr : callable
            x -> UFL expression, x the mesh's SpatialCoordinate.

        Returns
        -------
        float
        """
        form = dolfinx.fem.form(expr(self.x) ** 2 * ufl.dx(metadata={"quadrature_degree": 2 * self.degree + 6}))
        return math.sqrt(self.comm.allreduce(dolfinx.fem.assemble_scalar(form)))
