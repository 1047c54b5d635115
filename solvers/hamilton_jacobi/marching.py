"""What the two HJ solvers share: marching u from its current time to gamma in equal steps."""

from __future__ import annotations

import dolfinx.fem

from fpjko.solvers.core import validation


class TimeMarching:
    """A mixin for solvers with u, t and step(dt)."""

    def solve(self, gamma: float, steps: int) -> dolfinx.fem.Function:
        """Advance u from the current time to gamma in `steps` equal steps; returns u."""
        gamma = validation.positive_number("gamma", gamma)
        steps = validation.integer("steps", steps, 1)
        if gamma <= self.t:
            raise ValueError(f"gamma={gamma:g} is not after the current time t={self.t:g}")
        dt = (gamma - self.t) / steps
        for _ in range(steps):
            self.step(dt)
        self.t = gamma
        return self.u
