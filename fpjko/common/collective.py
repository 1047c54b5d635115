"""Errors that end every MPI rank together (mpi4py optional; comm None means serial).

A check that fails on one rank only must not leave the others waiting in the next collective call.
Each helper below is itself collective: every rank of `comm` must call it, and then either every
rank returns or every rank raises the same exception (the first failing rank's type and message,
prefixed with that rank when the run has several).

- agree(comm, message): raise on every rank if any rank passes a message (a local verdict);
- collectively(comm, fn, ...): run fn on every rank and re-raise any rank's exception on all;
- on_root(comm, fn, ...): run fn on rank 0 only (file I/O) and broadcast its result or its error;
- allgather_checked(comm, value, problem): an allgather that carries each rank's verdict with its
  value, so a check costs no extra collective on a hot path.
"""

from __future__ import annotations

import pickle


def _size(comm) -> int:
    return 1 if comm is None else comm.size


def _rebuild(kind: type, message: str) -> BaseException:
    try:
        return kind(message)
    except Exception:  # exception types with other constructors
        return RuntimeError(message)


def _raise_first(comm, verdicts) -> None:
    """verdicts: one (type, message) or None per rank; raise the first on every rank."""
    for rank, v in enumerate(verdicts):
        if v is not None:
            kind, message = v
            if _size(comm) > 1 and not message.startswith("on rank"):
                message = f"on rank {rank} of {comm.size}: {message}"
            raise _rebuild(kind, message)


def agree(comm, message: str | None, exc: type = ValueError) -> None:
    """Collective: every rank raises exc(first message) if any rank has a message."""
    if _size(comm) == 1:
        if message:
            raise exc(message)
        return
    verdict = (exc, str(message)) if message else None
    _raise_first(comm, comm.allgather(verdict))


def allgather_checked(comm, value, problem: str | None = None, exc: type = ValueError) -> list:
    """Collective: the values of all ranks, or exc(first problem) on every rank if any rank has one
    (value is not used on a rank with a problem)."""
    if _size(comm) == 1:
        if problem:
            raise exc(problem)
        return [value]
    parts = comm.allgather((exc, problem) if problem else (None, value))
    _raise_first(comm, [(k, v) if k is not None else None for k, v in parts])
    return [v for _, v in parts]


def _verdict(e: BaseException):
    kind = type(e)
    try:
        pickle.dumps(kind)
    except Exception:
        kind = RuntimeError
    return kind, str(e) or kind.__name__


def collectively(comm, fn, *args, **kwargs):
    """Collective: fn(*args, **kwargs) on every rank; an exception on any rank is raised on all.

    fn must not call collectives itself (a rank that failed before one would leave the others in it)."""
    if _size(comm) == 1:
        return fn(*args, **kwargs)
    try:
        out, verdict = fn(*args, **kwargs), None
    except Exception as e:
        out, verdict = None, _verdict(e)
        err = e
    verdicts = comm.allgather(verdict)
    if verdict is not None and all(v is None for v in verdicts[: comm.rank]):
        raise err                          # this rank failed first: keep its own traceback
    _raise_first(comm, verdicts)
    return out


def on_root(comm, fn, *args, broadcast: bool = True, **kwargs):
    """Collective: fn(*args, **kwargs) on rank 0 only; its result (broadcast=True) or its exception
    reaches every rank. Use it for rank-0-only file I/O."""
    if _size(comm) == 1:
        return fn(*args, **kwargs)
    out = verdict = None
    if comm.rank == 0:
        try:
            out = fn(*args, **kwargs)
        except Exception as e:
            verdict, err = _verdict(e), e
    verdict = comm.bcast(verdict, root=0)
    if verdict is not None:
        if comm.rank == 0:
            raise err
        _raise_first(comm, [verdict])
    return comm.bcast(out, root=0) if broadcast else out

