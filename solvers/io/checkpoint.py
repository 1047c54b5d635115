"""Checkpoint and resume for FokkerPlanckSolver, independent of the MPI partition.

Nodal values are gathered with their dof coordinates to rank 0 and written atomically to one .npz;
on resume every rank finds its dofs by coordinate, so a run may resume on another number of ranks.
The problem's fingerprint (degree, method, scheme, beta, dt, global dofs, and moments of the
potential f, so that resuming with another f is refused) must match. Writes are atomic (unique
temporary name, then rename) and collective: a failure on rank 0 raises on every rank and keeps the
previous checkpoint; a missing, truncated or foreign file is an error naming the path on every rank.
"""

from __future__ import annotations

import json
import math
import os

import dolfinx.fem
import numpy as np
import ufl

from samplers.checkpoint import read_npz, write_npz


def _fingerprint(solver) -> dict:
    return {"degree": solver.degree, "method": solver.method, "scheme": solver.scheme,
            "beta": solver.beta, "dt": solver.dt, "num_dofs": solver.num_dofs,
            "gdim": solver.mesh.geometry.dim,
            "interaction": getattr(getattr(solver, "interaction", None), "kind", None),
            "potential_moments": _potential_moments(solver)}


def _potential_moments(solver) -> list[float]:
    """int f, int f^2 and int f x_i over the mesh: a partition-independent fingerprint of f.
    f does not change, so the forms are compiled and assembled once per solver, not per save."""
    if getattr(solver, "_potential_moments", None) is None:
        f, x = solver.f_expr, solver.x
        forms = [f, f * f] + [f * x[i] for i in range(solver.mesh.geometry.dim)]
        dx = ufl.dx(domain=solver.mesh)
        solver._potential_moments = [solver.comm.allreduce(dolfinx.fem.assemble_scalar(dolfinx.fem.form(g * dx)))
                                     for g in forms]
    return solver._potential_moments


def _differs(saved, current) -> bool:
    if isinstance(current, list) and isinstance(saved, list) and len(saved) == len(current):
        scale = max([abs(c) for c in current] + [1e-300])
        return any(not math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-10 * scale) for a, b in zip(saved, current))
    return saved != current


def _gather(comm, a: np.ndarray):
    parts = comm.gather(a, root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


class Checkpointer:
    """Saves solver state to `path` every `every` steps (and at the end of run())."""

    def __init__(self, path: str, every: int = 10):
        if every < 1:
            raise ValueError(f"checkpoint every must be >= 1, got every={every}")
        self.path, self.every = os.fspath(path), int(every)

    def save(self, solver) -> None:
        comm, n = solver.comm, solver.n_owned
        coords = _gather(comm, solver.V.tabulate_dof_coordinates()[:n])
        rho = _gather(comm, solver.rho.x.array[:n])
        prev = _gather(comm, solver.rho_prev.x.array[:n])
        meta = json.dumps(_fingerprint(solver))
        write_npz(comm, self.path, "checkpoint", coords=coords, rho=rho, rho_prev=prev, t=solver.t,
                  steps=solver.steps, mass0=solver._mass0, meta=meta, history=json.dumps(solver.history))


def _keys(coords: np.ndarray, scale: float) -> np.ndarray:
    q = np.round(coords / scale).astype(np.int64)
    return np.ascontiguousarray(q).view([("x", np.int64), ("y", np.int64), ("z", np.int64)]).ravel()


def resume(solver, path: str) -> None:
    """Load the state saved by Checkpointer into `solver` (same problem, any number of ranks)."""
    comm = solver.comm
    data = read_npz(comm, path, "checkpoint",
                    keys=("coords", "rho", "rho_prev", "t", "steps", "mass0", "meta", "history"))
    meta, want = json.loads(str(data["meta"])), _fingerprint(solver)
    diff = {k: (meta.get(k), v) for k, v in want.items() if _differs(meta.get(k), v)}
    if diff:
        raise ValueError(f"checkpoint {os.fspath(path)!r} does not match this problem (saved vs current): "
                         + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items()))
    n = solver.n_owned
    X = solver.V.tabulate_dof_coordinates()
    extent = float(np.max(np.ptp(data["coords"], axis=0))) or 1.0
    scale = 1e-9 * extent
    saved = _keys(data["coords"], scale)
    order = np.argsort(saved)
    mine = _keys(X[:n], scale)
    pos = np.clip(np.searchsorted(saved[order], mine), 0, len(saved) - 1)
    idx = order[pos]
    miss = saved[idx] != mine
    nmiss = comm.allreduce(int(miss.sum()))
    if nmiss:
        x = X[:n][np.flatnonzero(miss)[0]] if miss.any() else None
        raise ValueError(f"checkpoint mesh does not match: {nmiss} dofs not found in it"
                         + (f", e.g. x={tuple(np.round(x, 6))}" if x is not None else ""))
    for fn, key in ((solver.rho, "rho"), (solver.rho_prev, "rho_prev")):
        fn.x.array[:n] = data[key][idx]
        fn.x.scatter_forward()
    solver.t, solver.steps = float(data["t"]), int(data["steps"])
    solver._mass0 = float(data["mass0"])
    solver.history = json.loads(str(data["history"]))
    solver._initialised = True
    solver._guesses = []                     # the Krylov predictor restarts from the loaded state
    solver._refresh_state()                 # psi = W * rho and D(rho) from the loaded densities
