"""Distances between measures and fitted rates (numpy; POT for exact OT):

    distances  exact 1D W_p, exact OT, sliced W_p, Gaussian W2, W_p against a CDF
    study      distance against n with the fitted slope, and its table
"""

from fpjko.metrics.distances import gaussian_w2, sliced_wasserstein, wasserstein_1d, wasserstein_ot
from fpjko.metrics.study import convergence_in_n, fitted_slope

__all__ = ["wasserstein_1d", "wasserstein_ot", "sliced_wasserstein", "gaussian_w2", "convergence_in_n",
           "fitted_slope"]
