"""The protocol every time-dependent solver follows, written once.

A solver is built on a dolfinx mesh (or a helper builds the usual one), then

    solver.set_initial(...)                 # a second call starts a new run: t = 0, steps = 0, history reset
    record = solver.step()                  # one step of the solver's step size (dt, or tau for JKO)
    solver.run(t_end, callback=None, checkpoint=None, progress=None) -> solver
    state = solver.state_dict(); other.load_state_dict(state)     # what Checkpointer / resume write and read
    solver.close()                          # or `with Solver(...) as s:`; a closed solver refuses to step

One rule for the last step of run(t_end): ceil((t_end - t) / step - 1e-9) full steps, so t ends within one step
after t_end and at t_end exactly when t_end - t is a multiple of the step. A solver whose step is chosen at every
step by a stability limit (`variable_step`: ContinuityEquation's CFL step) takes that step, and the last one
shortened to land on t_end (a shorter step is as stable).

history holds the core keys CORE_KEYS for every solver (t, mass, energy, converged, iterations, seconds) and each
solver's own extras (its `extra_keys`). A record is appended at set_initial (t = 0), after every
`record_every`-th step and at the end of run(). Non-convergence of an iterative inner solve is reported one way:
a RuntimeWarning (shown on rank 0, see fpjko.common.warn), history['converged'] False, and the run goes
on; only a non-finite state or invalid input raises, on every rank.

A subclass provides
    _set_initial(*args, **kwargs)    the initial state (checked collectively)
    _advance() -> dict               one step from self.t by self.step_size: {'converged', 'iterations', ...} plus
                                     any extras it measures while stepping (cheap ones)
    _measure() -> dict               {'mass', 'energy', ...extras} of the current state (the costly part of a record)
    _functions() -> dict             {name: dolfinx Function}: the fields the next step depends on
    _state() -> dict                 {'arrays': {name: array, the same on every rank}, 'scalars': {name: JSON
                                     value}}: the rest of what the next step depends on
    _restore(state)                  after the base class has set the functions, t, steps and history
    _fingerprint() -> dict           every parameter that changes the solution (a resume into another problem is
                                     refused naming the difference): numbers as they are, fields (functions, UFL
                                     expressions) by partition-independent moments (fpjko.solvers.core.moments)
    _release()                       destroy its PETSc objects
"""

from __future__ import annotations

import math
import os
import time as _time
from typing import Callable

import numpy as np

from fpjko.common import progress as _progress
from fpjko.common.collective import agree, same_everywhere
from fpjko.solvers.core import validation
from fpjko.common.warn import warn

CORE_KEYS = ("t", "mass", "energy", "converged", "iterations", "seconds")


class Solver:
    """Base of the time-dependent solvers (the protocol above).

    Attributes
    ----------
    t : float
        The current time.
    steps : int
        Steps taken since set_initial.
    history : dict of str to list
        CORE_KEYS plus the solver's `extra_keys`, one entry per record.
    prefix : str
        The PETSc options prefix of the solver's own KSPs (each solver class has its own default).
    """

    label = "steps"                 # the progress bar's label
    default_prefix = ""
    extra_keys: tuple = ()
    step_name = "dt"                # the attribute that holds the step size: 'dt', or 'tau' for the JKO solvers
    record_every = 1
    variable_step = False           # the step comes from a stability limit at every step (see the module doc)
    optional_functions = ()         # functions an older state may lack (its _restore then makes them)

    # ------------------------------------------------------------------ the state the base class keeps
    def _init_protocol(self, comm, prefix: str | None = None, arguments: dict | None = None) -> None:
        """Call first in the subclass's __init__, as `self._init_protocol(mesh.comm, prefix, locals())`.

        The constructor's arguments (but the mesh) are compared across ranks first (see
        fpjko.common.collective.same_everywhere): an argument that differs on one rank (a NaN step, another
        scheme) is an error on every rank, and the local checks that follow give every rank the same verdict."""
        if arguments is not None:
            same_everywhere(comm, type(self).__name__,
                            {k: v for k, v in arguments.items() if k not in ("self", "mesh") and not k.startswith("_")})
        self.comm = comm
        self.prefix = self.default_prefix if prefix is None else str(prefix)
        self.t, self.steps = 0.0, 0
        self.history: dict[str, list] = self._empty_history()
        self._initialised = False
        self._closed = False
        self._last_info: dict = {"converged": True, "iterations": 0}

    def _empty_history(self) -> dict:
        return {k: [] for k in (*CORE_KEYS, *self.extra_keys)}

    @property
    def step_size(self) -> float:
        """The step of step() and run(): dt, or tau for the JKO solvers."""
        return getattr(self, self.step_name)

    def _require_open(self) -> None:
        if getattr(self, "_closed", False):
            raise RuntimeError(f"{type(self).__name__} is closed: build a new solver")

    def _require_initial(self, what: str = "step") -> None:
        self._require_open()
        if not self._initialised:
            raise RuntimeError(f"call set_initial(...) (or load a checkpoint) before {what}()")

    # ------------------------------------------------------------------ the protocol
    def set_initial(self, *args, **kwargs) -> None:
        """Set the initial state and start a new run (t = 0, steps = 0, history reset to the t = 0 record).

        Parameters
        ----------
        *args, **kwargs
            The subclass's (see its `_set_initial`).
        """
        self._require_open()
        self._set_initial(*args, **kwargs)
        self.t, self.steps = 0.0, 0
        self.history = self._empty_history()
        self._initialised = True
        self._last_info = {"converged": True, "iterations": 0}
        self._append({"converged": True, "iterations": 0, "seconds": 0.0})

    def step(self) -> dict:
        """Advance one step of `step_size`.

        Returns
        -------
        dict
            The step's record: t, converged, iterations, seconds, and (when the step is recorded, see
            record_every) mass, energy and the solver's extras.
        """
        self._require_initial("step")
        t0 = _time.perf_counter()
        info = dict(self._advance())
        self.t += info.pop("step") if "step" in info else self.step_size   # a variable step says which it took
        self.steps += 1
        info.setdefault("converged", True)
        info.setdefault("iterations", 0)
        info["seconds"] = _time.perf_counter() - t0
        self._last_info = info
        if not info["converged"]:
            warn(self.comm, stacklevel=3, message=f"{type(self).__name__} step {self.steps} (t={self.t:.6g}) did not converge"
                 + (f": {info['why']}" if info.get("why") else ""))
        if self.steps % self.record_every == 0:
            return self._append(info)
        self._unrecorded_step()
        return {"t": self.t, **{k: v for k, v in info.items() if k != "why"}}

    def record(self) -> dict:
        """Append a record of the current state now (what step() does every record_every steps).

        Returns
        -------
        dict
            The record: one value per history key.
        """
        self._require_initial("record")
        return self._append(self._last_info)

    def _unrecorded_step(self) -> None:
        """Called after a step that is not recorded (record_every > 1): a cheap check of the state."""

    def _append(self, info: dict) -> dict:
        rec = {"t": self.t, **self._measure(), **{k: v for k, v in info.items() if k != "why"}}
        rec["converged"], rec["iterations"] = bool(rec["converged"]), int(rec["iterations"])
        h = self.history
        for k in h:
            h[k].append(rec.get(k, math.nan))
        self._after_record()
        return {k: h[k][-1] for k in h}

    def _after_record(self) -> None:
        """Checks on a new record (a non-finite state, a mass drift): raise collectively."""

    def run(self, t_end: float, callback: Callable | None = None, checkpoint=None, progress: bool | None = None):
        """Step until t >= t_end: ceil((t_end - t) / step_size - 1e-9) full steps.

        Parameters
        ----------
        t_end : float
            The end time, not before the current time.
        callback : callable, optional
            callback(solver) after each step.
        checkpoint : fpjko.solvers.io.checkpoint.Checkpointer, optional
            Saved every its `every` steps and at the end of the run.
        progress : bool, optional
            None: a progress bar on rank 0 of an interactive run; True: also a line every tenth of the run;
            False: neither.

        Returns
        -------
        Solver
            self.
        """
        self._require_initial("run")
        same_everywhere(self.comm, f"{type(self).__name__}.run", {
            "t_end": t_end, "checkpoint": None if checkpoint is None else
            {"path": os.path.abspath(getattr(checkpoint, "path", "")), "every": getattr(checkpoint, "every", None)}})
        h = self.step_size
        t_end = validation.end_time(t_end, self.t, h)
        nsteps = max(0, int(math.ceil((t_end - self.t) / h - 1e-9)))     # variable_step: an estimate
        pbar = _progress.bar(nsteps, self.label, self.comm.rank) if progress is not False else _progress.off()
        eps = 1e-12 * max(abs(t_end), h)

        def more(k):
            return t_end - self.t > eps if self.variable_step else k < nsteps

        self._t_end = t_end                     # a variable step is shortened to land on it
        k = 0
        while more(k):
            self.step()
            k += 1
            last = not more(k)
            pbar.update()
            if callback is not None:
                callback(self)
            if last and self.history["t"][-1] != self.t:       # the end of a run is always recorded
                self._append(self._last_info)
            if checkpoint is not None and (self.steps % checkpoint.every == 0 or last):
                checkpoint.save(self)
            if progress and self.comm.rank == 0 and k % max(1, nsteps // 10) == 0:
                r = {key: v[-1] for key, v in self.history.items()}
                print(f"  step {self.steps:5d}  t={r['t']:8.4f}  energy={r['energy']: .6g}  mass={r['mass']:.10g}  "
                      f"iterations={r['iterations']}", flush=True)
        pbar.close()
        self._t_end = None
        return self

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The solver's state: what the next step depends on, and the run's history.

        Returns
        -------
        dict
            {'class', 'fingerprint', 't', 'steps', 'history', 'functions': {name: dolfinx Function},
            'arrays': {name: ndarray, the same on every rank}, 'scalars': {name: JSON value}}.
        """
        self._require_initial("state_dict")
        st = self._state()
        return {"class": type(self).__name__, "fingerprint": self.fingerprint(), "t": self.t, "steps": self.steps,
                "history": {k: list(v) for k, v in self.history.items()},
                "functions": dict(self._functions()), "arrays": dict(st.get("arrays", {})),
                "scalars": dict(st.get("scalars", {}))}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state_dict() of a solver of the same problem.

        Parameters
        ----------
        state : dict
            As state_dict() returns it; a 'functions' entry may also be the owned nodal values (the local part
            on this rank, in this solver's dof order: what Checkpointer's resume builds on another rank count).
        """
        self._require_open()
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict takes the dict of a state_dict(), got {type(state).__name__}")
        if state.get("class") != type(self).__name__:
            raise ValueError(f"the state is of a {state.get('class')}, not of a {type(self).__name__}")
        check_fingerprint(state.get("fingerprint", {}), self.fingerprint(), "the state")
        mine = self._functions()
        missing = sorted(set(mine) - set(state.get("functions", {})) - set(self.optional_functions))
        if missing:
            raise ValueError(f"the state lacks the functions {missing}")
        for name, fn in mine.items():
            if name not in state.get("functions", {}):
                continue                  # an optional function the state predates: _restore makes it
            src = state["functions"][name]
            n = fn.function_space.dofmap.index_map.size_local * fn.function_space.dofmap.index_map_bs
            vals = src.x.array[:n] if hasattr(src, "x") else np.asarray(src)
            agree(self.comm, None if vals.shape == (n,) else
                  f"function {name!r}: {vals.shape[0]} values for {n} owned dofs on rank {self.comm.rank}")
            fn.x.array[:n] = vals
            fn.x.scatter_forward()
        self.t, self.steps = float(state["t"]), int(state["steps"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        for k in self._empty_history():
            self.history.setdefault(k, [math.nan] * len(self.history["t"]))
        self._initialised = True
        self._last_info = {"converged": True, "iterations": 0}
        self._restore(state)

    def fingerprint(self) -> dict:
        """Every parameter that changes the solution, with the class and the step size.

        A variable step (ContinuityEquation's CFL step) depends on the state, so it is None here: the rule that
        chooses it (cfl, ...) is in the subclass's `_fingerprint`.

        Returns
        -------
        dict
            JSON values.
        """
        return {"class": type(self).__name__, self.step_name: None if self.variable_step else self.step_size,
                **self._fingerprint()}

    # ------------------------------------------------------------------ hooks
    def _set_initial(self, *args, **kwargs) -> None:
        raise NotImplementedError

    def _advance(self) -> dict:
        raise NotImplementedError

    def _measure(self) -> dict:
        raise NotImplementedError

    def _functions(self) -> dict:
        raise NotImplementedError

    def _state(self) -> dict:
        return {}

    def _restore(self, state: dict) -> None:
        pass

    def _fingerprint(self) -> dict:
        return {}

    def _release(self) -> None:
        pass

    # ------------------------------------------------------------------ life time
    def close(self) -> None:
        """Destroy the solver's PETSc objects; a closed solver refuses to step (a second close does nothing)."""
        if not getattr(self, "_closed", False):
            self._release()
            self._closed = True

    def destroy(self) -> None:
        """The same as close() (petsc4py's name)."""
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class DensitySolver(Solver):
    """A Solver whose state is a probability density: set_initial(rho0, normalize, mass_tol)."""

    default_mass_tol = 1e-6

    def set_initial(self, rho0, normalize: bool = False, mass_tol: float | None = None) -> None:
        """Set the initial density and start a new run.

        Parameters
        ----------
        rho0 : callable, UFL expression, array or dolfinx Function
            The initial density: a numpy callable x -> values (x of shape (3, n), values of shape (n,)), or what
            the solver's `_set_initial` also takes (a UFL expression, nodal values, a Function on its mesh).
            NaN, negative values and (unless normalize) a mass away from 1 are errors naming the value, on every
            rank.
        normalize : bool
            Rescale to unit mass.
        mass_tol : float, optional
            Tolerance on the mass when not normalising (default: the class's default_mass_tol).
        """
        same_everywhere(self.comm, f"{type(self).__name__}.set_initial", {"normalize": normalize, "mass_tol": mass_tol})
        Solver.set_initial(self, rho0, normalize=normalize,
                           mass_tol=self.default_mass_tol if mass_tol is None else mass_tol)


def _differs(saved, current) -> bool:
    if isinstance(saved, (int, float)) and isinstance(current, (int, float)) and not isinstance(saved, bool):
        return not math.isclose(saved, current, rel_tol=1e-10, abs_tol=1e-300)
    if isinstance(current, (list, tuple)) and isinstance(saved, (list, tuple)) and len(saved) == len(current):
        if all(isinstance(c, (int, float)) for c in current):
            scale = max([abs(c) for c in current] + [1e-300])
            return any(not math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-10 * scale) for a, b in zip(saved, current))
        return any(_differs(a, b) for a, b in zip(saved, current))
    if isinstance(current, dict) and isinstance(saved, dict):
        return set(saved) != set(current) or any(_differs(saved[k], current[k]) for k in current)
    return saved != current


def check_fingerprint(saved: dict, current: dict, what: str) -> None:
    """Raise naming each parameter in which a saved state differs from this solver's problem."""
    keys = list(dict.fromkeys([*current, *saved]))
    diff = {k: (saved.get(k), current.get(k)) for k in keys if _differs(saved.get(k), current.get(k))}
    if diff:
        raise ValueError(f"{what} does not match this problem (saved vs current): "
                         + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items()))
