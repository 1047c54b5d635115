"""Finite-element Fokker-Planck solvers on dolfinx (PETSc-dependent code lives here)."""

from solvers.fokker_planck import METHODS, SCHEMES, FokkerPlanckSolver

__all__ = ["FokkerPlanckSolver", "SCHEMES", "METHODS"]
