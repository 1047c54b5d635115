"""Transport without diffusion: the continuity equation (DG upwind, SSP-RK3) for deterministic
mean-field limits."""
