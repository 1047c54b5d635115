"""Exact laws and numerical reference values (numpy only):

    gaussian       the exact Ornstein-Uhlenbeck and linear McKean-Vlasov laws (Lyapunov equation), Gaussian densities
    local_entropy  the local entropy f_gamma by quadrature, the Hopf-Lax (Moreau) envelope
    desai_zwanzig  the Desai-Zwanzig self-consistency and its critical temperature
    reflected_ou   the stationary law of a reflected Ornstein-Uhlenbeck process on an interval
"""

from fpjko.references.gaussian import (expm, gaussian_density, lyapunov, mckean_vlasov_law, ou_law,
                                       ou_stationary_covariance)

__all__ = ["expm", "lyapunov", "ou_law", "ou_stationary_covariance", "mckean_vlasov_law", "gaussian_density"]
