"""Particle-side companion module: numpy only (mpi4py optional), importable without dolfinx.

sgd_noise: minibatch-SGD gradient noise as a diffusion matrix D(x) and temperature lr/(2B).
sgd: minibatch SGD chains on a finite data set (noise from sampling only).
gaussian: the exact Gaussian law of the Ornstein-Uhlenbeck process dX = -A X dt + sqrt(2/beta D) dW
(mean, covariance, stationary covariance by the Lyapunov equation) and Gaussian densities.
"""

from samplers.gaussian import expm, gaussian_density, lyapunov, ou_law, ou_stationary_covariance
from samplers.sgd import minibatch_sgd
from samplers.sgd_noise import LeastSquares, gradient_covariance, sgd_diffusion, sgd_temperature

__all__ = ["expm", "lyapunov", "ou_law", "ou_stationary_covariance", "gaussian_density",
           "minibatch_sgd", "LeastSquares", "gradient_covariance", "sgd_diffusion", "sgd_temperature"]
