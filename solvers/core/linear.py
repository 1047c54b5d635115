"""PETSc KSP set-up: defaults < the caller's options < the command line, under a per-problem prefix; and the
step-solver policy of a time stepper (StepSolver: LU or Krylov + AMG, the predictor, the mass restoration)."""

from __future__ import annotations

import functools
import math

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from fpjko.common.checks import one_of


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


def make_ksp(A: PETSc.Mat, prefix: str, options: dict | None = None, user=None) -> PETSc.KSP:
    """A KSP on A. Options given on the command line under `prefix` win over `options`, which win over the
    direct-solver defaults.

    Parameters
    ----------
    A : petsc4py.PETSc.Mat
    prefix : str
        The options prefix.
    options : dict, optional
        Options (without the prefix).
    user : iterable of str, optional
        The keys of `options` that the user gave (None: all of them). Those, and the command line's ksp_* and
        pc_* options under the prefix, that the KSP does not read are reported in a warning (a misspelled
        option); the rest are the caller's defaults.

    Returns
    -------
    petsc4py.PETSc.KSP
    """
    db = PETSc.Options()
    merged = {**direct_solver_options(), **(options or {})}
    if options and "pc_type" in options and options["pc_type"] not in ("lu", "cholesky"):
        merged.pop("pc_factor_mat_solver_type", None)
    ours = [key for key in merged if not db.hasName(prefix + key)]   # the rest came from the user
    for key in ours:
        db.setValue(prefix + key, merged[key])
    cmdline = [k[len(prefix):] for k in db.getAll() if k.startswith(prefix) and k[len(prefix):] not in ours]
    given = list(dict.fromkeys([*(options or {} if user is None else user),
                                *(k for k in cmdline if k.startswith(("ksp_", "pc_")))]))
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setOptionsPrefix(prefix)
    try:
        ksp.setFromOptions()
        _report_unused(A.getComm().tompi4py(), prefix, given)
    except PETSc.Error as e:
        given = {k: v for k, v in db.getAll().items() if k.startswith(prefix)}
        raise ValueError(f"PETSc rejected the solver options under prefix {prefix!r}: "
                         + ", ".join(f"-{k} {v}" for k, v in sorted(given.items()))
                         + f" (PETSc error {e.ierr}: an unknown or misspelled type or value?)") from None
    finally:
        for key in ours:             # leave the database as found, so the next solver starts clean
            db.delValue(prefix + key)
    # the matrix options (mat_*: the factorisation's, e.g. mat_mumps_icntl_14) are read when the factor is made,
    # in the first solve: `solve` puts them back in the database around it
    ksp.setAttr("fpjko_mat_options", {prefix + k: merged[k] for k in ours if k.startswith("mat_")})
    return ksp


@functools.lru_cache(maxsize=1)
def _options_used():
    """PETSc's PetscOptionsUsed(NULL, name, &flag) through ctypes (petsc4py has no binding), or None (looked up
    once per process)."""
    import ctypes

    try:
        fn = ctypes.CDLL(PETSc.__file__).PetscOptionsUsed
    except (OSError, AttributeError):           # pragma: no cover (a PETSc without the symbol exported)
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]

    def used(name: str) -> bool:
        flag = ctypes.c_int(1)
        return fn(None, name.encode(), ctypes.byref(flag)) != 0 or bool(flag.value)
    return used


def _report_unused(comm, prefix: str, given) -> None:
    """Warn (rank 0) about the caller's and the command line's options under `prefix` that the KSP and PC did not
    read when they were set from the options: a misspelled option (-fp_ksp_typ) would otherwise be ignored
    silently. Matrix options (mat_*) are read later, at the factorisation, and are not judged here."""
    used = _options_used()
    if used is None:
        return
    unused = [k for k in given if not k.startswith("mat_") and not used(prefix + k)]
    if unused:
        from fpjko.common.warn import warn

        warn(comm, f"PETSc options not used by the solver with prefix {prefix!r}: "
                   + ", ".join(f"-{prefix}{k}" for k in unused) + " (misspelled, or not for this solver type?)",
             RuntimeWarning, stacklevel=4)


def solve(ksp: PETSc.KSP, b: PETSc.Vec, x: PETSc.Vec, what: str) -> int:
    """Solve and fail loudly (with PETSc's reason) when the KSP diverges; returns iterations. The matrix options
    that `make_ksp` was given (mat_*, read when the factor is made) are in PETSc's database during the solve."""
    db = PETSc.Options()
    mat = {k: v for k, v in (ksp.getAttr("fpjko_mat_options") or {}).items() if not db.hasName(k)}
    for k, v in mat.items():
        db.setValue(k, v)
    try:
        ksp.solve(b, x)
    finally:
        for k in mat:
            db.delValue(k)
    reason = ksp.getConvergedReason()
    if reason < 0:
        names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}
        raise RuntimeError(f"{what}: linear solve failed ({names.get(reason, reason)}, "
                           f"{ksp.getIterationNumber()} iterations, "
                           f"residual {ksp.getResidualNorm():.3e}); prefix {ksp.getOptionsPrefix()!r}")
    return max(1, ksp.getIterationNumber())


# ---------------------------------------------------------------------------------------------------------------
# The step-solver policy of a time stepper (FokkerPlanckSolver's; any solver with one linear system per step)
#
# solver='auto': LU below, Krylov + AMG above, by the mesh's dimension. LU's factorisation is reused every step, so
# its steps are the cheapest while they fit (2D P1 at 251k dofs: 0.05 s/step, 0.9 GB; AMG 0.19 s), but its
# memory grows superlinearly, in 3D much faster (benchmarks/fp_scaling.py)
AUTO_ITERATIVE_DOFS = 300_000
AUTO_ITERATIVE_DOFS_3D = 50_000
# The Krylov path starts from the quadratic extrapolation of the last three solutions. Its initial residual
# r0 = A (x - x_pred) measures the predictor-corrector difference, the time stepper's own local error estimate
# (Milne's device), so the solve stops at |b - A x| <= PREDICTOR_RTOL |r0|: the algebraic error stays a fixed
# small fraction of the time error, and the iteration count does not grow with the mesh (a test against |b|
# tightens with refinement, since |A e| / |b| grows like dt/h^2 for the same error e). Floor ROUNDOFF_RTOL |b|
# (a predictor exact to round-off, at equilibrium); without a predictor (the first solve) ITERATIVE_RTOL |b|.
# The mass is then restored exactly.
# BoomerAMG with HMIS coarsening, strong threshold 0.5, one level of aggressive coarsening and Chebyshev
# smoothing: the cheapest V-cycle measured at 1.44M 2D P1 dofs (0.07 s, against 0.09 s for the hybrid
# Gauss-Seidel default) for the same iteration count; FGMRES rather than GMRES (both right-preconditioned, so
# the test sees the true residual): FGMRES keeps the preconditioned directions, so it forms its solution
# without GMRES's extra V-cycle (benchmarks/fp_scaling.py; issue 14)
PREDICTOR_RTOL = 1e-3
ROUNDOFF_RTOL = 1e-12
ITERATIVE_RTOL = 1e-8
AMG_OPTIONS = {"pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i",
               "pc_hypre_boomeramg_P_max": 4, "pc_hypre_boomeramg_agg_nl": 1,
               "pc_hypre_boomeramg_strong_threshold": 0.5, "pc_hypre_boomeramg_relax_type_all": "Chebyshev"}
CHOICES = ("auto", "direct", "iterative")
_EXTRAPOLATION = {1: (1.0,), 2: (2.0, -1.0), 3: (3.0, -3.0, 1.0)}


class StepSolver:
    """One KSP per step matrix of a time stepper, chosen, predicted and mass-restored by one policy.

    choice='auto' takes LU (MUMPS) below AUTO_ITERATIVE_DOFS global dofs (AUTO_ITERATIVE_DOFS_3D in 3D) and above
    them a Krylov method with algebraic multigrid (CG for a symmetric step matrix, FGMRES otherwise), on the true
    residual, from a guess extrapolated from the last three solutions and stopped at PREDICTOR_RTOL times that
    guess's residual, the mass then restored exactly (see `solve`). For a fixed matrix (`fixed`) the AMG set-up
    is done once and reused every step. 'direct' / 'iterative' force one; petsc_options and the command line
    (-<prefix>...) override either (a ksp_rtol given there is PETSc's usual test, relative to |b|).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        The communicator of the step matrices.
    prefix : str
        The PETSc options prefix of the KSPs.
    ndofs : int
        Global number of unknowns (the 'auto' choice).
    gdim : int
        Geometric dimension of the mesh (the 'auto' threshold).
    choice : {'auto', 'direct', 'iterative'}
    petsc_options : dict, optional
        The caller's options (they win over the defaults; the command line wins over both).
    fixed : bool
        The step matrices do not change between steps (the AMG hierarchy is set up once and hypre keeps no
        copy of the matrix).
    owner : str
        The solver's name, for the one-line report of an iterative choice on rank 0.

    Attributes
    ----------
    description : str or None
        What was built, from the KSP as set up (so options from the command line show), e.g.
        "FGMRES + hypre (AMG set up once) for 1442401 dofs (auto: >= 300000)".
    last_residual : float
        |b - A x| / |b| of the last Krylov solve.
    """

    def __init__(self, comm, prefix: str, ndofs: int, gdim: int, choice: str = "auto",
                 petsc_options: dict | None = None, fixed: bool = True, owner: str = "solver"):
        self.comm, self.prefix, self.ndofs, self.gdim = comm, prefix, int(ndofs), int(gdim)
        self.choice = one_of("solver", choice, CHOICES)
        self.petsc_options = dict(petsc_options or {})
        self.fixed, self.owner = bool(fixed), owner
        self.description: str | None = None
        self.last_residual = 0.0
        self._ksp: dict[str, PETSc.KSP] = {}
        self._predictor_test: dict[str, bool] = {}   # name -> the Krylov solve stops relative to the predictor
        self._guesses: list = []                       # (step, dt, solution) of the last Krylov solves
        self._announced = False

    @property
    def limit(self) -> int:
        """The global dof count from which choice='auto' goes iterative (by the mesh's dimension)."""
        return AUTO_ITERATIVE_DOFS_3D if self.gdim == 3 else AUTO_ITERATIVE_DOFS

    def defaults(self, symmetric: bool) -> dict:
        """The policy's PETSc options for a step matrix (before petsc_options and the command line).

        Parameters
        ----------
        symmetric : bool
            The step matrix is SPD (CG) or not (FGMRES).

        Returns
        -------
        dict
            {} for the direct solve (make_ksp's LU defaults), else the Krylov + AMG options.
        """
        iterative = self.choice == "iterative" or (self.choice == "auto" and self.ndofs >= self.limit)
        if not iterative:
            return {}
        opts = iterative_solver_options(symmetric=symmetric, rtol=ITERATIVE_RTOL)
        # the stopping test sees the true residual (FGMRES: right preconditioning, no extra V-cycle for it; CG: the
        # unpreconditioned norm, which it has anyway)
        opts.update({"ksp_norm_type": "unpreconditioned"} if opts["ksp_type"] == "cg"
                    else {"ksp_type": "fgmres", "ksp_pc_side": "right"})
        if not ("ksp_rtol" in self.petsc_options or PETSc.Options().hasName(self.prefix + "ksp_rtol")):
            opts.update(ksp_rtol=PREDICTOR_RTOL, ksp_converged_use_initial_residual_norm="true")
        if opts["pc_type"] == "hypre":
            opts.update(AMG_OPTIONS)
        return opts

    def operator(self, name: str, A: PETSc.Mat, symmetric: bool) -> PETSc.KSP:
        """The KSP of the step matrix `name`, built on A on first use, else given A as its new operator.

        Parameters
        ----------
        name : str
            The step's name (e.g. the time scheme).
        A : petsc4py.PETSc.Mat
            The step matrix (a fixed one may be converted in place to hypre's format).
        symmetric : bool
            A is SPD.

        Returns
        -------
        petsc4py.PETSc.KSP
        """
        if name in self._ksp:
            self._ksp[name].setOperators(A)
            return self._ksp[name]
        defaults = self.defaults(symmetric)
        ksp = self._ksp[name] = make_ksp(A, self.prefix, {**defaults, **self.petsc_options}, user=self.petsc_options)
        # the predictor-relative test where the defaults chose it (not where the options set a ksp_rtol)
        self._predictor_test[name] = (ksp.getType() != PETSc.KSP.Type.PREONLY
                                      and "ksp_converged_use_initial_residual_norm" in defaults)
        if ksp.getPC().getType() == "hypre" and self.fixed:
            # in place (petsc4py's convert): BoomerAMG then uses this matrix itself instead of keeping its own
            # copy of it (1.44M dofs: 137 MB less); hypre's matvec is as fast
            A.convert("hypre")
            ksp.setOperators(A)
        self._describe(ksp)
        return ksp

    def __contains__(self, name: str) -> bool:
        return name in self._ksp

    def __iter__(self):
        """The names of the step matrices with a KSP."""
        return iter(list(self._ksp))

    def krylov(self, name: str) -> bool:
        """The step `name` is solved by a Krylov method (not a direct factorisation).

        Parameters
        ----------
        name : str

        Returns
        -------
        bool
        """
        return self._ksp[name].getType() != PETSc.KSP.Type.PREONLY

    def predictor_relative(self, name: str) -> bool:
        """The Krylov solve of `name` stops relative to its predictor's residual (the defaults' test).

        Parameters
        ----------
        name : str

        Returns
        -------
        bool
        """
        return self._predictor_test[name]

    def drop(self, name: str) -> None:
        """Destroy the KSP of a step that is not needed again (a start-up scheme).

        Parameters
        ----------
        name : str
        """
        self._ksp.pop(name).destroy()
        self._predictor_test.pop(name, None)

    def restart(self) -> None:
        """Forget the predictor's solutions (a new initial state, or a loaded one)."""
        self._guesses = []

    def _describe(self, ksp: PETSc.KSP) -> None:
        pc = ksp.getPC().getType()
        if ksp.getType() == PETSc.KSP.Type.PREONLY:
            self.description = f"direct ({pc.upper()}) for {self.ndofs} dofs"
            return
        once = " (AMG set up once)" if pc in ("hypre", "gamg") and self.fixed else ""
        self.description = (f"{ksp.getType().upper()} + {pc}{once} for {self.ndofs} dofs"
                            + (" (auto: >= %d)" % self.limit if self.choice == "auto" else ""))
        if self.comm.rank == 0 and not self.petsc_options.get("pc_type") and not self._announced:
            print(f"{self.owner}: linear solver {self.description}", flush=True)
            self._announced = True

    def solve(self, name: str, b: PETSc.Vec, x: PETSc.Vec, step: int, dt: float, a_m: float,
              weights: np.ndarray, what: str) -> int:
        """Solve A x = b for the step `name` (its `step`-th, of size dt); returns the iterations.

        A Krylov solve starts from the extrapolation of the last three solutions of the same dt (second order in
        dt: a BDF2 step's own order) and stops at |b - A x| <= PREDICTOR_RTOL |b - A x_pred| (floor
        ROUNDOFF_RTOL |b|; ITERATIVE_RTOL |b| from a zero guess), unless the options set another ksp_rtol. Its
        mass is then restored exactly: 1^T A = a_m w^T (a flux form has 1^T K = 0; w the mass weights), so the
        exact solution has w . x = 1^T b / a_m, and x is scaled to that. Mass is conserved to round-off whatever
        the tolerance, and the solve error stays in the shape of the density, not its total.

        Parameters
        ----------
        name : str
            The step matrix's name (see `operator`).
        b, x : petsc4py.PETSc.Vec
            Right-hand side and solution (owned part, length n_owned on each rank).
        step : int
            The number of steps taken before this one (the predictor's clock).
        dt : float
            The step size (only solutions of the same dt are extrapolated).
        a_m : float
            The mass coefficient of the step matrix (1^T A = a_m w^T).
        weights : numpy.ndarray, shape (n_owned,)
            The mass weights w.
        what : str
            The step, for the error message of a failed solve.

        Returns
        -------
        int
            The KSP's iterations (1 for a direct solve).
        """
        ksp = self._ksp[name]
        krylov = self.krylov(name)
        if krylov:
            prev = {s: sol for s, h, sol in self._guesses if h == dt}
            k = 0
            while k < 3 and step - k in prev:
                k += 1
            if k:
                x.array[:] = sum(c * prev[step - j] for j, c in enumerate(_EXTRAPOLATION[k]))
            ksp.setInitialGuessNonzero(bool(k))
            bnorm = b.norm()
            if self._predictor_test[name]:          # a zero guess has r0 = b
                ksp.setTolerances(rtol=PREDICTOR_RTOL if k else ITERATIVE_RTOL, atol=ROUNDOFF_RTOL * bnorm)
        its = solve(ksp, b, x, what)
        if krylov:
            self.last_residual = ksp.getResidualNorm() / bnorm if bnorm > 0 else 0.0
            have = self.comm.allreduce(float(weights @ x.array), op=MPI.SUM)
            want = b.sum() / a_m
            if have != 0.0 and math.isfinite(want / have):
                x.scale(want / have)
            self._guesses = [g for g in self._guesses if step - 2 < g[0] <= step and g[1] == dt]
            self._guesses.append((step + 1, dt, x.array.copy()))
        return its

    def destroy(self) -> None:
        """Destroy every KSP."""
        for k in self._ksp.values():
            k.destroy()
        self._ksp = {}
