"""Particle-side companion module: numpy only (mpi4py optional), importable without dolfinx.

gaussian: the exact Gaussian law of the Ornstein-Uhlenbeck process dX = -A X dt + sqrt(2/beta D) dW
(mean, covariance, stationary covariance by the Lyapunov equation) and Gaussian densities.
"""

from samplers.gaussian import expm, gaussian_density, lyapunov, ou_law, ou_stationary_covariance

__all__ = ["expm", "lyapunov", "ou_law", "ou_stationary_covariance", "gaussian_density"]
