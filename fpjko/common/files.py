"""Atomic, collective file writes and checked reads (numpy and mpi4py only).

write_npz / read_npz are the .npz writer and reader of every checkpoint (particles and FE solvers);
write_json writes a text file the same way. A write goes to a unique temporary name, is fsynced and renamed, so
a failed write on rank 0 (read-only or full disk) raises on every rank and keeps the previous file; a missing,
truncated or foreign file is an error naming the path on every rank.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile

import numpy as np

from fpjko.common.collective import on_root


def _atomic(path: str, what: str, write, mode: str = "wb") -> None:
    """Write path through write(fh) on a unique temporary file, fsync and rename; an OSError names the path."""
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"      # unique: runs sharing a directory never collide
    try:
        with open(tmp, mode) as fh:
            write(fh)
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


def write_json(path: str, obj, what: str = "file") -> None:
    """Write obj as JSON to path atomically (the calling rank only; see on_root for a collective write)."""
    _atomic(path, what, lambda fh: json.dump(obj, fh, indent=1), mode="w")


def _write(path: str, what: str, arrays: dict) -> None:
    _atomic(path, what, lambda fh: np.savez(fh, **arrays))


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
