"""Particle-side companion module: numpy only (mpi4py optional), importable without dolfinx.

sgd_noise: minibatch-SGD gradient noise as a diffusion matrix D(x) and temperature lr/(2B).
sgd: minibatch SGD chains on a finite data set (noise from sampling only).
gaussian: the exact Gaussian law of the Ornstein-Uhlenbeck process dX = -A X dt + sqrt(2/beta D) dW
(mean, covariance, stationary covariance by the Lyapunov equation) and Gaussian densities.
streams: seeded per-block random streams and block-ordered reductions; particles split across MPI
ranks give the same bits for any rank count.
sde: Euler-Maruyama with state-dependent D (vectorised Cholesky), Langevin.
interacting: McKean-Vlasov particles (O(n) quadratic W, chunked O(n^2) general W).
mean_field_nn: two-layer network neurons trained by SGD with step gamma N^b.
distances: exact 1D W_p, exact OT (POT), sliced W_p, Gaussian W2.
study: distance versus n with the fitted slope. checkpoint: save/resume particle runs.
graphon: SGD on symmetric matrices (homomorphism densities, graphon derivatives, projected noisy GD).
"""

from samplers.gaussian import expm, gaussian_density, lyapunov, ou_law, ou_stationary_covariance
from samplers.distances import gaussian_w2, sliced_wasserstein, wasserstein_1d, wasserstein_ot
from samplers.interacting import interaction_force, mckean_vlasov
from samplers.mean_field_nn import TwoLayerMeanField
from samplers.sde import cholesky_batch, euler_maruyama, langevin
from samplers.sgd import minibatch_sgd
from samplers.sgd_noise import LeastSquares, gradient_covariance, sgd_diffusion, sgd_temperature
from samplers.streams import Streams
from samplers.study import convergence_in_n

__all__ = ["expm", "lyapunov", "ou_law", "ou_stationary_covariance", "gaussian_density",
           "minibatch_sgd", "LeastSquares", "gradient_covariance", "sgd_diffusion", "sgd_temperature",
           "Streams", "euler_maruyama", "langevin", "cholesky_batch", "mckean_vlasov", "interaction_force",
           "TwoLayerMeanField", "wasserstein_1d", "wasserstein_ot", "sliced_wasserstein", "gaussian_w2",
           "convergence_in_n"]
