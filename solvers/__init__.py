"""Finite-element solvers on dolfinx (the PETSc-dependent half of the package).

    core/           compat (dolfinx 0.9/0.10), validation, linear (KSP set-up; StepSolver: the LU/AMG policy,
                    predictor and mass restoration of a time stepper), protocol, functionals, moments (the
                    fingerprint's partition-independent moments of a field), exact
    fokker_planck/  stepper (FokkerPlanckSolver), stationary, coefficients, edge_averaged, interaction
    transport/      the continuity equation (DG upwind) for deterministic mean-field limits
    mean_field/     mean-field PDEs built from the above: two-layer network, Desai-Zwanzig reference
    jko/            newton (NewtonJKO, any mesh), alg2 (JKOSolver, Benamou-Brenier reference),
                    entropic (EntropicJKO), pointwise kernels
    graphon/        flow (graphon gradient flow, DG0/Q1 on [0,1]^2), mckean_vlasov (the noisy limit)
    hamilton_jacobi/ cole_hopf (LocalEntropy: f_gamma by Cole-Hopf), viscous (ViscousHJ: the HJ equation by Newton)
    particles/      empirical (particles on the mesh), evaluate (point evaluation)
    io/             output (VTX/XDMF, PNG), checkpoint

The public names are importable from `solvers` itself, so moving a module never breaks a user.
Imports flow one way: solvers -> meshes, samplers; never demos or benchmarks.
"""

from importlib import import_module

_PUBLIC = {
    "FokkerPlanckSolver": "fpjko.solvers.fokker_planck.stepper",
    "SCHEMES": "fpjko.solvers.fokker_planck.stepper",
    "METHODS": "fpjko.solvers.fokker_planck.stepper",
    "stationary_density": "fpjko.solvers.fokker_planck.stationary",
    "mean_field_stationary": "fpjko.solvers.fokker_planck.stationary",
    "PolynomialInteraction": "fpjko.solvers.fokker_planck.interaction",
    "SeparableInteraction": "fpjko.solvers.fokker_planck.interaction",
    "KernelInteraction": "fpjko.solvers.fokker_planck.interaction",
    "quadratic": "fpjko.solvers.fokker_planck.interaction",
    "ContinuityEquation": "fpjko.solvers.transport.continuity",
    "network_pde": "fpjko.solvers.mean_field.network",
    "tensor_field": "fpjko.solvers.fokker_planck.coefficients",
    "NewtonJKO": "fpjko.solvers.jko.newton",
    "GraphonFlow": "fpjko.solvers.graphon.flow",
    "GraphonMcKeanVlasov": "fpjko.solvers.graphon.mckean_vlasov",
    "JKOSolver": "fpjko.solvers.jko.alg2",
    "LocalEntropy": "fpjko.solvers.hamilton_jacobi.cole_hopf",
    "ViscousHJ": "fpjko.solvers.hamilton_jacobi.viscous",
    "EntropicJKO": "fpjko.solvers.jko.entropic",
    "Checkpointer": "fpjko.solvers.io.checkpoint",
    "resume": "fpjko.solvers.io.checkpoint",
    "SeriesWriter": "fpjko.solvers.io.output",
    "plot_png": "fpjko.solvers.io.output",
    "evaluate_on_points": "fpjko.solvers.particles.evaluate",
    "empirical": "fpjko.solvers.particles.empirical",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    """Public names load on first use (importing `solvers` stays cheap)."""
    if name in _PUBLIC:
        mod = import_module(_PUBLIC[name])
        value = mod if mod.__name__.endswith("." + name) else getattr(mod, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'solvers' has no attribute {name!r}")
