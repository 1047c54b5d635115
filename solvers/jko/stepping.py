"""The run loop shared by the JKO solvers (NewtonJKO, JKOSolver): steps of tau up to t_end, a progress bar on
rank 0, an optional line per step and a callback."""

from __future__ import annotations

from fpjko.common.progress import bar as progress_bar
from fpjko.solvers.core import validation


def run_steps(solver, t_end: float, label: str, callback=None, progress: bool = False, its_label: str = "its"):
    """solver.step() round((t_end - t) / tau) times; solver needs t, tau, comm, step_count and step() returning
    its history record."""
    n = int(round((validation.end_time(t_end, solver.t, solver.tau) - solver.t) / solver.tau))
    pbar = progress_bar(n, label, solver.comm.rank)
    for _ in range(n):
        rec = solver.step()
        pbar.update()
        if progress and solver.comm.rank == 0:
            print(f"JKO step {solver.step_count}: t={rec['t']:.4g} F={rec['energy']:.6g} "
                  f"W2={rec['w2']:.3e} {its_label}={rec['iterations']} mass={rec['mass']:.12f}", flush=True)
        if callback is not None:
            callback(solver)
    pbar.close()
    return solver
