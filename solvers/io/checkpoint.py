"""Checkpoint and resume for every solver of the protocol (fpjko.solvers.core.protocol), on any number of ranks.

Checkpointer.save writes the solver's state_dict(): each function's owned nodal values gathered to rank 0 with the
keys that locate them (the dof's coordinates; for a discontinuous space also the centroid of its cell, since
several dofs share a point), the arrays, scalars, t, steps, history and the problem's fingerprint, to one .npz,
atomically (fpjko.common.files). resume() finds each of its own dofs among the saved keys, so a run may resume on
another number of ranks, and refuses a checkpoint of another problem naming every parameter that differs. A
failure on rank 0 raises on every rank and keeps the previous checkpoint; a missing, truncated or foreign file
is an error naming the path on every rank.
"""

from __future__ import annotations

import json
import os

import dolfinx.mesh
import numpy as np

from fpjko.common.collective import agree, same_everywhere
from fpjko.common.files import read_npz, write_npz
from fpjko.solvers.core.protocol import check_fingerprint


def _gather(comm, a: np.ndarray):
    parts = comm.gather(a, root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


def _discontinuous(V) -> bool:
    return bool(getattr(V.ufl_element(), "discontinuous", False))


def dof_keys(V) -> np.ndarray:
    """Coordinates that name V's owned dofs (nodes) independently of the partition, shape (n_owned, 3) or (n_owned, 6):
    the dof's coordinates, and for a discontinuous space the centroid of the one cell that holds it."""
    n = V.dofmap.index_map.size_local
    X = V.tabulate_dof_coordinates()[:n]
    if not _discontinuous(V):
        return X
    msh = V.mesh
    tdim = msh.topology.dim
    cells = np.arange(msh.topology.index_map(tdim).size_local, dtype=np.int32)
    dofs = V.dofmap.list[: len(cells)]
    cell_of = np.full(n, -1, dtype=np.int64)
    rows = np.repeat(cells, dofs.shape[1])
    flat = dofs.ravel()
    own = flat < n
    cell_of[flat[own]] = rows[own]
    mid = dolfinx.mesh.compute_midpoints(msh, tdim, cells) if len(cells) else np.zeros((0, 3))
    return np.hstack([X, mid[cell_of]]) if n else np.zeros((0, 6))


def _int_keys(keys: np.ndarray, scale: float) -> np.ndarray:
    q = np.ascontiguousarray(np.round(keys / scale).astype(np.int64))
    return q.view([(f"c{i}", np.int64) for i in range(q.shape[1])]).ravel()


class Checkpointer:
    """Saves a solver's state to `path` every `every` steps of run() and at its end.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file (replaced atomically at each save).
    every : int
        Steps between saves.
    """

    def __init__(self, path, every: int = 10):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"checkpoint every must be an integer >= 1, got every={every!r}")
        self.path, self.every = os.fspath(path), int(every)

    def save(self, solver) -> None:
        """Write solver.state_dict() (collective).

        Parameters
        ----------
        solver : fpjko.solvers.core.protocol.Solver
        """
        comm = solver.comm
        agree(comm, None if getattr(solver, "_initialised", False) else
              f"{type(solver).__name__} has no state to checkpoint yet: call set_initial(...) first", RuntimeError)
        sd = solver.state_dict()
        arrays = {}
        for name, fn in sd["functions"].items():
            V = fn.function_space
            bs = V.dofmap.index_map_bs
            n = V.dofmap.index_map.size_local
            arrays[f"keys:{name}"] = _gather(comm, dof_keys(V))
            arrays[f"values:{name}"] = _gather(comm, fn.x.array[: n * bs].reshape(n, bs))
        for name, a in sd["arrays"].items():
            arrays[f"array:{name}"] = np.asarray(a)
        meta = {k: sd[k] for k in ("class", "fingerprint", "t", "steps", "history", "scalars")}
        meta["functions"], meta["arrays"] = sorted(sd["functions"]), sorted(sd["arrays"])
        write_npz(comm, self.path, "checkpoint", meta=json.dumps(meta), **arrays)


def resume(solver, path) -> None:
    """Load the state saved by Checkpointer into `solver` (the same problem, any number of ranks).

    Parameters
    ----------
    solver : fpjko.solvers.core.protocol.Solver
    path : str or pathlib.Path
        The checkpoint directory.
    """
    comm = solver.comm
    path = os.fspath(path)
    same_everywhere(comm, "resume", {"path": os.path.abspath(path)})
    data = read_npz(comm, path, "checkpoint", keys=("meta",))
    meta = json.loads(str(data["meta"]))
    if meta.get("class") != type(solver).__name__:
        raise ValueError(f"checkpoint {path!r} is of a {meta.get('class')}, not of a {type(solver).__name__}")
    check_fingerprint(meta["fingerprint"], solver.fingerprint(), f"checkpoint {path!r}")
    functions = {}
    for name, fn in solver._functions().items():
        if f"keys:{name}" not in data:
            if name in solver.optional_functions:
                continue                  # (a field added since: the solver's _restore makes it)
            raise ValueError(f"checkpoint {path!r} lacks the function {name!r}")
        V = fn.function_space
        saved_keys, values = data[f"keys:{name}"], data[f"values:{name}"]
        extent = float(np.max(np.ptp(saved_keys, axis=0))) if len(saved_keys) else 1.0
        scale = 1e-9 * (extent or 1.0)
        mine_keys = dof_keys(V)
        if mine_keys.shape[1] != saved_keys.shape[1] or values.shape[1] != V.dofmap.index_map_bs:
            raise ValueError(f"checkpoint {path!r}: function {name!r} is in another space")
        saved = _int_keys(saved_keys, scale)
        order = np.argsort(saved)
        mine = _int_keys(mine_keys, scale)
        pos = np.clip(np.searchsorted(saved[order], mine), 0, len(saved) - 1)
        idx = order[pos]
        miss = saved[idx] != mine
        nmiss = comm.allreduce(int(miss.sum()))
        if nmiss:
            x = mine_keys[np.flatnonzero(miss)[0]] if miss.any() else None
            raise ValueError(f"checkpoint {path!r}: the mesh does not match: {nmiss} dofs of {name!r} not found in it"
                             + (f", e.g. x={tuple(np.round(x[:3], 6))}" if x is not None else ""))
        functions[name] = values[idx].ravel()
    arrays = {name: data[f"array:{name}"] for name in meta["arrays"]}
    solver.load_state_dict({**{k: meta[k] for k in ("class", "fingerprint", "t", "steps", "history", "scalars")},
                            "functions": functions, "arrays": arrays})
