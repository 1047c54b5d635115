"""Checkpoint and resume of particle runs, independent of the rank count (numpy .npz on rank 0).

write_npz / read_npz are the atomic, collective .npz writer and the checked reader that the FE
checkpoints (solvers.io.checkpoint) use too: a failed write on rank 0 (read-only or full disk)
raises on every rank and keeps the previous file; a missing, truncated or foreign file is an error
naming the path on every rank.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile

import numpy as np

from samplers.collective import on_root
from samplers.streams import Streams


def _write(path: str, what: str, arrays: dict) -> None:
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"      # unique: runs sharing a directory never collide
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise OSError(e.errno, f"could not write the {what} {path!r}: {e.strerror or e}"
                      + ("; the previous one is kept" if os.path.exists(path) else "")) from None


def write_npz(comm, path: str, what: str = "checkpoint", **arrays) -> None:
    """Collective: rank 0 writes arrays to path atomically (unique temporary name, fsync, rename)."""
    on_root(comm, _write, path, what, arrays, broadcast=False)


def _read(path: str, what: str) -> dict:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {what} at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as e:
        why = "it holds pickled objects, not arrays" if "pickled" in str(e) else f"{type(e).__name__}: {e}"
        raise ValueError(f"the {what} {path!r} is truncated or not a {what} file ({why})") from None


def read_npz(comm, path: str, what: str = "checkpoint", keys=()) -> dict:
    """Collective: rank 0 reads the .npz at path, checks `keys` are there, and every rank gets it."""
    def read():
        data = _read(path, what)
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"the {what} {os.fspath(path)!r} lacks {missing}: not a {what} of this kind")
        return data
    return on_root(comm, read)


def save(path: str, streams: Streams, x: np.ndarray, t: float, step: int) -> None:
    """Write all particles (global order), the state of every block stream, t and step."""
    allx = streams.allgather(np.asarray(x))
    states = [g.bit_generator.state for g in streams._gens]
    if streams.comm is not None and streams.comm.size > 1:
        states = [s for part in streams.comm.allgather(states) for s in part]
    write_npz(streams.comm, path, "particle checkpoint", x=allx, t=t, step=step, n=streams.n,
              seed=streams.seed, block=streams.block, states=json.dumps(states, default=int))


def load(path: str, streams: Streams):
    """Restore the block streams of this rank; returns (local particles, t, step)."""
    f = read_npz(streams.comm, path, "particle checkpoint", keys=("x", "t", "step", "n", "seed", "block", "states"))
    if (int(f["n"]), int(f["seed"]), int(f["block"])) != (streams.n, streams.seed, streams.block):
        raise ValueError(f"checkpoint {path} has n={int(f['n'])}, seed={int(f['seed'])}, block={int(f['block'])}; "
                         f"streams have n={streams.n}, seed={streams.seed}, block={streams.block}")
    states = json.loads(str(f["states"]))
    for g, b in zip(streams._gens, streams.blocks):
        g.bit_generator.state = states[b]
    return f["x"][streams.lo:streams.hi].copy(), float(f["t"]), int(f["step"])
