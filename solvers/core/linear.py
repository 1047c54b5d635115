"""PETSc KSP set-up: defaults < the caller's options < the command line, under a per-problem prefix."""

from __future__ import annotations

from petsc4py import PETSc


def direct_solver_options() -> dict:
    """LU through MUMPS where PETSc has it (parallel), else SuperLU_dist, else PETSc's own (serial)."""
    for pkg in ("mumps", "superlu_dist"):
        if PETSc.Sys.hasExternalPackage(pkg):
            return {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": pkg}
    return {"ksp_type": "preonly", "pc_type": "lu"}


def iterative_solver_options(symmetric: bool, rtol: float = 1e-12) -> dict:
    """Krylov + algebraic multigrid (hypre BoomerAMG if present, else GAMG)."""
    pc = "hypre" if PETSc.Sys.hasExternalPackage("hypre") else "gamg"
    return {"ksp_type": "cg" if symmetric else "gmres", "pc_type": pc, "ksp_rtol": rtol,
            "ksp_atol": 0.0, "ksp_max_it": 1000}


def make_ksp(A: PETSc.Mat, prefix: str, options: dict | None = None) -> PETSc.KSP:
    """A KSP on A. Options given on the command line under `prefix` win over `options`,
    which win over the direct-solver defaults."""
    db = PETSc.Options()
    merged = {**direct_solver_options(), **(options or {})}
    if options and "pc_type" in options and options["pc_type"] != "lu":
        merged.pop("pc_factor_mat_solver_type", None)
    ours = [key for key in merged if not db.hasName(prefix + key)]   # the rest came from the user
    for key in ours:
        db.setValue(prefix + key, merged[key])
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setOptionsPrefix(prefix)
    try:
        ksp.setFromOptions()
    except PETSc.Error as e:
        given = {k: v for k, v in db.getAll().items() if k.startswith(prefix)}
        raise ValueError(f"PETSc rejected the solver options under prefix {prefix!r}: "
                         + ", ".join(f"-{k} {v}" for k, v in sorted(given.items()))
                         + f" (PETSc error {e.ierr}: an unknown or misspelled type or value?)") from None
    finally:
        for key in ours:             # leave the database as found, so the next solver starts clean
            db.delValue(prefix + key)
    return ksp


def solve(ksp: PETSc.KSP, b: PETSc.Vec, x: PETSc.Vec, what: str) -> int:
    """Solve and fail loudly (with PETSc's reason) when the KSP diverges; returns iterations."""
    ksp.solve(b, x)
    reason = ksp.getConvergedReason()
    if reason < 0:
        names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}
        raise RuntimeError(f"{what}: linear solve failed ({names.get(reason, reason)}, "
                           f"{ksp.getIterationNumber()} iterations, "
                           f"residual {ksp.getResidualNorm():.3e}); prefix {ksp.getOptionsPrefix()!r}")
    return max(1, ksp.getIterationNumber())
