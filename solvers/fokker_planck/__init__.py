"""Fokker-Planck (and McKean-Vlasov) time stepping, stationary states, coefficients, the
structure-preserving edge-averaged operator and the interaction field W * rho."""
