"""Checkpoint and resume of particle runs, independent of the rank count (numpy .npz on rank 0, written
atomically by fpjko.common.files)."""

from __future__ import annotations

import json
import numpy as np

from fpjko.common.files import read_npz, write_npz
from fpjko.samplers.streams import Streams


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
