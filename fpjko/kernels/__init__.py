"""Kernel sums at scale (numpy; numba optional): sum_q W(x - y_q) m_q by a uniform grid and FFTs.

- transfer: point <-> grid weights (cloud-in-cell or cubic Lagrange), compiled by numba when present;
- grid: GridConvolution (the grid over a box, the kernel's spectrum, singular kernels, the memory check).

Used by the particle-mesh forces (fpjko.samplers.particle_mesh) and by the finite-element interaction W * rho
(fpjko.solvers.fokker_planck.interaction.KernelInteraction, method="fft"; NewtonJKO).
"""

from fpjko.kernels.grid import GridConvolution, SingularKernelError, singular_cell_average, singularity_exponent
from fpjko.kernels.transfer import deposit, have_numba, interpolate

__all__ = ["GridConvolution", "SingularKernelError", "deposit", "interpolate", "have_numba", "singular_cell_average",
           "singularity_exponent"]
