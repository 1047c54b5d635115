"""An output directory that a run owns: created and probed on rank 0, locked against a second run.

`OutputDir(comm, path)` is collective. It fails on every rank, naming the path, when the path is a
file, cannot be created, or is not writable (read-only file system, permissions, full disk), and
when another live run holds its lock (two runs writing one checkpoint would corrupt each other's
results). The lock is an flock on `<path>/.lock`, so it dies with the process that held it.
"""

from __future__ import annotations

import errno
import os
import uuid

from fpjko.common.collective import on_root


class OutputDir:
    def __init__(self, comm, path: str, option: str = "--out"):
        self.comm, self.path, self._fd = comm, os.fspath(path), None
        on_root(comm, self._open, option, broadcast=False)

    def _open(self, option: str) -> None:
        import fcntl

        path = self.path
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(f"{option} {path!r} is a file, not a directory")
        try:
            os.makedirs(path, exist_ok=True)
            probe = os.path.join(path, f".write-test-{os.getpid()}-{uuid.uuid4().hex[:6]}")
            with open(probe, "wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
            os.remove(probe)
        except OSError as e:
            raise OSError(e.errno, f"{option} {path!r} is not writable: {e.strerror or e}") from None
        fd = os.open(os.path.join(path, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RuntimeError(f"another run (pid {holder}) is writing to {option} {path!r}; "
                                   "wait for it or choose another directory") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)              # releases the flock
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
