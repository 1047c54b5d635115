"""What the two HJ solvers share: the protocol (fpjko.solvers.core.protocol) for u_t = -1/2 |grad u|^2 +
(2 beta)^-1 Delta u with u(0) = f, and marching u from its current time to gamma in equal steps."""

from __future__ import annotations

import math

import dolfinx.fem
import ufl

from fpjko.common.collective import same_everywhere
from fpjko.solvers.core import validation
from fpjko.solvers.core.compat import interpolate
from fpjko.solvers.core.protocol import Solver


class TimeMarching(Solver):
    """The protocol for the HJ solvers: the state is u (a Lagrange Function), the step dt.

    A subclass builds self.u, self.V, self.n and calls _init_marching(f, dt); it provides _reset() (forget the
    previous level), _prev_function() (the previous level, for BDF2), _step_info (its history extras) and
    _advance().

    History: the core keys with mass NaN (there is no density) and energy int u dx; iterations as each solver says.
    """

    label = "HJ steps"

    def _init_marching(self, f, dt) -> None:
        """After the subclass has built self.u: remember f, set the step, start at u = f."""
        self._f = f
        self.dt = None if dt is None else validation.positive_number("dt", dt)
        Solver.set_initial(self)

    def set_initial(self, f=None) -> None:
        """Start a new run from u = f (default: the loss the solver was built with).

        Parameters
        ----------
        f : callable, UFL expression or dolfinx Function, optional
            A numpy callable x (3, N) -> (N,), a UFL expression of the mesh's SpatialCoordinate, or a Function.
        """
        Solver.set_initial(self, f)

    def _set_initial(self, f=None) -> None:
        interpolate(self.u, self._f if f is None else f)
        validation.finite_field(self.comm, self.u.x.array[: self.n], self.V.tabulate_dof_coordinates()[: self.n],
                                "the loss f")
        if f is not None:
            self._f = f
        self._reset()

    @property
    def step_size(self) -> float:
        """The protocol's step dt (an error where none was given)."""
        if self.dt is None:
            raise RuntimeError(f"{type(self).__name__} has no step: pass dt= to the constructor or to step(dt), "
                               "or use solve(gamma, steps)")
        return self.dt

    def step(self, dt: float | None = None) -> dict:
        """One step of dt (given here, it becomes the solver's step).

        Parameters
        ----------
        dt : float, optional

        Returns
        -------
        dict
            The step's record.
        """
        same_everywhere(self.comm, f"{type(self).__name__}.step", {"dt": dt})
        if dt is not None:
            self.dt = validation.positive_number("dt", dt)
        return Solver.step(self)

    def _measure(self) -> dict:
        if getattr(self, "_u_integral", None) is None:
            self._u_integral = dolfinx.fem.form(self.u * ufl.dx)
        return {"mass": math.nan,
                "energy": self.comm.allreduce(float(dolfinx.fem.assemble_scalar(self._u_integral))),
                **self._step_info}

    def _functions(self) -> dict:
        return {"u": self.u, "u_prev": self._prev_function()}

    def _state(self) -> dict:
        return {"scalars": {"last_dt": self._last_dt, "substeps": getattr(self, "_substeps", None)}}

    def _restore(self, state: dict) -> None:
        self._last_dt = state["scalars"]["last_dt"]
        if state["scalars"]["substeps"] is not None:
            self._substeps = int(state["scalars"]["substeps"])
        self._step_info = {k: (math.nan if isinstance(v, float) else v) for k, v in self._step_info.items()}

    def solve(self, gamma: float, steps: int) -> dolfinx.fem.Function:
        """Advance u from the current time to gamma in `steps` equal steps.

        Parameters
        ----------
        gamma : float
            The end time.
        steps : int

        Returns
        -------
        dolfinx.fem.Function
            u.
        """
        same_everywhere(self.comm, f"{type(self).__name__}.solve", {"gamma": gamma, "steps": steps})
        gamma = validation.positive_number("gamma", gamma)
        steps = validation.integer("steps", steps, 1)
        if gamma <= self.t:
            raise ValueError(f"gamma={gamma:g} is not after the current time t={self.t:g}")
        dt = (gamma - self.t) / steps
        for _ in range(steps):
            self.step(dt)
        self.t = gamma
        return self.u
