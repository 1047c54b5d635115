"""Errors that end every MPI rank together (mpi4py optional; comm None means serial).

A check that fails on one rank only must not leave the others waiting in the next collective call.
Each helper below is itself collective: every rank of `comm` must call it, and then either every
rank returns or every rank raises the same exception (the first failing rank's type and message,
prefixed with that rank when the run has several).

- agree(comm, message): raise on every rank if any rank passes a message (a local verdict);
- collectively(comm, fn, ...): run fn on every rank and re-raise any rank's exception on all;
- on_root(comm, fn, ...): run fn on rank 0 only (file I/O) and broadcast its result or its error;
- any_stop(comm, fn, ...): a user's callback on every rank: stop together if any rank asks, its error on all;
- allgather_checked(comm, value, problem): an allgather that carries each rank's verdict with its
  value, so a check costs no extra collective on a hot path;
- same_everywhere(comm, owner, params): the scalar and configuration arguments are the same on every rank
  (compared by `describe`), so that every local check of them gives the same verdict everywhere.
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


def any_stop(comm, fn, *args, **kwargs) -> bool:
    """Collective: fn(*args, **kwargs) on every rank (a user's callback), True on every rank if it returned a true
    value on any rank (stop together), its exception raised on every rank if it raised on any (one allgather).

    fn must not call collectives itself unless every rank reaches them (a rank that raised before one would leave
    the others in it)."""
    if _size(comm) == 1:
        return bool(fn(*args, **kwargs))
    try:
        mine, verdict = bool(fn(*args, **kwargs)), None
    except Exception as e:
        mine, verdict, err = False, _verdict(e), e
    every = comm.allgather((mine, verdict))
    verdicts = [v for _, v in every]
    if verdict is not None and all(v is None for v in verdicts[: comm.rank]):
        raise err
    _raise_first(comm, verdicts)
    return any(m for m, _ in every)


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



_OPAQUE = ("dolfinx", "ufl", "petsc4py", "mpi4py", "basix", "ffcx")


def describe(value, depth: int = 2):
    """A canonical, comparable description of an argument (what same_everywhere compares across ranks).

    Numbers by their repr (NaN is 'nan' on every rank), strings, bools and None as they are, arrays by their
    shape and a digest of their bytes, sympy expressions by their canonical tree (srepr), containers and
    dataclasses item by item, functions by their values at fixed probe points (else by their code and the values
    they close over), other objects (an Interaction) by their public attributes (to `depth` levels),
    dolfinx/UFL/PETSc/MPI objects and objects that hold one (bound to a mesh: their arrays are this rank's) by
    their type only.

    Parameters
    ----------
    value : object
    depth : int
        How deep to describe the attributes of objects.

    Returns
    -------
    object
        Nested tuples of str, int, bool and None.
    """
    import dataclasses
    import hashlib
    import inspect
    import numbers

    import numpy as np

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, (np.ndarray, list, tuple)):
        # numbers compare by value, however they are held: [0.5], (0.5,) and np.array([0.5]) are one argument
        a = _numbers(value)
        if a is not None:        # a few numbers by value (the message shows them), more by a digest
            return ("numbers", a.shape, tuple(repr(float(v)) for v in a.ravel()) if a.size <= 16 else
                    hashlib.sha1(a.tobytes()).hexdigest())
        if isinstance(value, np.ndarray):
            a = np.ascontiguousarray(value)
            if a.dtype == object:
                return ("array", a.shape, tuple(describe(v, depth) for v in a.ravel()[:64]))
            return ("array", a.shape, str(a.dtype), hashlib.sha1(a.tobytes()).hexdigest())
        return tuple(describe(v, depth) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), describe(v, depth)) for k, v in value.items()))
    module = type(value).__module__ or ""
    if module.split(".")[0] == "sympy":                      # a formula: its canonical tree
        import sympy

        return ("sympy", sympy.srepr(value))
    if module.split(".")[0] in _OPAQUE or depth <= 0:
        return type(value).__name__
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                tuple((f.name, describe(getattr(value, f.name), depth - 1)) for f in dataclasses.fields(value)))
    if isinstance(value, type):
        return ("class", value.__module__, value.__qualname__)
    if inspect.isroutine(value) or (callable(value) and not hasattr(value, "__dict__")):
        return _describe_callable(value, depth)
    if not hasattr(value, "__dict__"):
        return type(value).__name__
    attrs = vars(value)
    # an object that holds a communicator or a dolfinx/PETSc object is bound to the mesh: its other attributes
    # (nodal arrays, owned counts) are this rank's, so only its type can be compared
    if any((type(v).__module__ or "").split(".")[0] in _OPAQUE for v in attrs.values()):
        return type(value).__name__
    return (type(value).__name__, tuple(sorted((k, describe(v, depth - 1)) for k, v in attrs.items()
                                               if not k.startswith("_"))))


def _numbers(value):
    """value as a contiguous float64 array when it is numbers (an array of a numeric dtype, or nested lists of real
    numbers of a regular shape), else None."""
    import numbers

    import numpy as np

    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value, dtype=np.float64) if value.dtype.kind in "iuf" else None

    def flat(v):
        if isinstance(v, (list, tuple)):
            return all(flat(x) for x in v)
        return isinstance(v, numbers.Real) and not isinstance(v, bool)
    if not value or not flat(value):
        return None
    try:
        a = np.asarray(value, dtype=np.float64)
    except ValueError:                                  # ragged
        return None
    return np.ascontiguousarray(a)


PROBE_SHAPES = ((3, 16), (16, 3), (16, 2), (16, 1), (16,))   # components first (dolfinx), then rows of points


def _probe(shape):
    import numpy as np

    return np.random.default_rng(20261207).uniform(-1.5, 1.5, size=shape)


def _describe_callable(fn, depth: int):
    """A function by its values at fixed probe points (the same on every rank), tried as x of shape (3, 16)
    (components first, as dolfinx interpolates) and as rows of points; one that takes no such array (a UFL-only
    form, a callback) by its code: name, bytecode, constants, defaults and the values it closes over."""
    import hashlib

    import numpy as np

    for shape in PROBE_SHAPES:
        try:
            with np.errstate(all="ignore"):
                out = fn(_probe(shape))
            arr = np.asarray(out, dtype=float)
        except Exception:                                   # noqa: BLE001 (any failure: try the next form)
            continue
        if arr.size:
            return ("callable", shape, arr.shape, hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest())
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__func__", None), "__code__", None)
    if code is None:
        return type(fn).__name__
    func = getattr(fn, "__func__", fn)
    cells = tuple(c.cell_contents for c in (getattr(func, "__closure__", None) or ()) if _filled(c))
    return ("code", code.co_name, hashlib.sha1(code.co_code).hexdigest(),
            describe(tuple(c for c in code.co_consts if not hasattr(c, "co_code")), depth - 1),
            describe(getattr(func, "__defaults__", None), depth - 1), describe(cells, depth - 1))


def _filled(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def same_everywhere(comm, owner: str, params: dict) -> None:
    """Collective: raise on every rank unless every rank passed the same arguments.

    A scalar or configuration argument that differs on one rank (a NaN step, another scheme, another beta) would
    let that rank fail a local check or take another branch while the others wait in the next collective call.
    With the arguments equal everywhere, every local check gives the same verdict on every rank.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or None
    owner : str
        Who takes the arguments (for the message), e.g. 'FokkerPlanckSolver'.
    params : dict
        {name: value}; see `describe` for how values are compared.

    Raises
    ------
    ValueError
        On every rank, naming the first argument that differs and its values on rank 0 and on the rank that
        differs.
    """
    if _size(comm) == 1:
        return
    mine = {k: describe(v) for k, v in params.items()}
    every = comm.allgather(mine)
    for rank, theirs in enumerate(every[1:], start=1):
        for k in every[0]:
            if theirs.get(k) != every[0][k]:
                def show(v):
                    return v if not isinstance(v, str) or len(v) < 80 else v[:77] + "..."
                raise ValueError(f"{owner}: the argument {k!r} differs across ranks: {show(every[0][k])!r} on rank 0, "
                                 f"{show(theirs.get(k))!r} on rank {rank} of {comm.size} (every rank must pass the "
                                 f"same value)")
