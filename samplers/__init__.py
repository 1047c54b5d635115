"""Particle dynamics (numpy only, mpi4py optional; importable without dolfinx).

    streams          seeded per-block random streams and block-ordered reductions: particles split across MPI
                     ranks give the same bits for any rank count
    sde              Euler-Maruyama with state-dependent D (vectorised Cholesky), Langevin
    interacting      McKean-Vlasov particles (O(n) quadratic W, chunked O(n^2) general W)
    particle_mesh    the force of any W by the particle mesh: CIC deposit, FFT convolution, O(n + G log G)
    random_batch     the Random Batch Method (Jin, Li, Liu 2020): interactions within random batches, O(n p)
    mean_field_nn    two-layer network neurons trained by SGD with step gamma N^b (and TeacherData, its problem)
    two_layer        the wide two-layer network of both layers (C outputs, square or cross-entropy loss) and SGD
                     with step gamma N^beta, shared or independent samples, neurons split over ranks bitwise
    data             data sets: scikit-learn's digits (Debian's file), a user's arrays or .npz, seeded splits
    sgd, sgd_noise   minibatch SGD chains on a finite data set; its noise as D(x) and temperature lr/(2B)
    deep_relaxation  Entropy-SGD / Elastic-SGD and the homogenized flow
    graphon          SGD on symmetric matrices (GraphonObjective, projected noisy gradient descent)
    checkpoint       save/resume of particle runs, independent of the rank count

Exact laws are in fpjko.references, distances and fitted slopes in fpjko.metrics.
"""

from fpjko.samplers.data import Dataset, digits, from_arrays, from_npz
from fpjko.samplers.interacting import interaction_force, mckean_vlasov
from fpjko.samplers.mean_field_nn import TeacherData, TwoLayerMeanField
from fpjko.samplers.particle_mesh import ParticleMesh, particle_mesh_force
from fpjko.samplers.random_batch import RandomBatch
from fpjko.samplers.sde import cholesky_batch, euler_maruyama, langevin
from fpjko.samplers.sgd import minibatch_sgd
from fpjko.samplers.sgd_noise import LeastSquares, gradient_covariance, sgd_diffusion, sgd_temperature
from fpjko.samplers.streams import Streams
from fpjko.samplers.two_layer import TwoLayerNetwork

__all__ = ["ParticleMesh", "particle_mesh_force", "RandomBatch", "minibatch_sgd", "LeastSquares", "gradient_covariance", "sgd_diffusion", "sgd_temperature",
           "Streams", "euler_maruyama", "langevin", "cholesky_batch", "mckean_vlasov", "interaction_force",
           "TeacherData", "TwoLayerMeanField", "TwoLayerNetwork", "Dataset", "digits", "from_arrays", "from_npz"]
