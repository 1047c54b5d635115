"""Hamilton–Jacobi solvers for deep relaxation: the local entropy f_gamma of a loss as the viscous HJ equation
u_t = -1/2 |grad u|^2 + (2 beta)^-1 Delta u at t = gamma, by Cole–Hopf (cole_hopf.LocalEntropy) or directly by
Newton's method (viscous.ViscousHJ), and its beta -> infinity limit, the Hopf–Lax / Moreau envelope (hopf_lax)."""
