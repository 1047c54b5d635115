"""Hamilton–Jacobi solvers for deep relaxation: the local entropy f_gamma of a loss is the viscous HJ equation
u_t = -1/2 |grad u|^2 + (2 beta)^-1 Delta u at t = gamma, solved by Cole–Hopf (cole_hopf.LocalEntropy) or directly by
Newton's method (viscous.ViscousHJ). Its beta -> infinity limit, the Hopf–Lax / Moreau envelope, and the quadrature
reference are numpy (fpjko.references.local_entropy)."""
