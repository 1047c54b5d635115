"""Warnings that reach the user, once per run and not once per rank.

dolfinx's form compiler turns on logging.captureWarnings, which sends every warnings.warn to the 'py.warnings'
logger, and gives that logger only a NullHandler: a warning then prints nothing. ensure_visible() gives the logger
a handler that prints to stderr (only where nothing but NullHandlers would see it, so a user's own logging set-up
is kept). warn(comm, ...) issues a warning on rank 0 only, for a condition every rank has decided together.
"""

from __future__ import annotations

import logging
import sys
import warnings

_handler: logging.Handler | None = None


def ensure_visible() -> None:
    """Make warnings.warn print on stderr again where captured warnings would go nowhere."""
    global _handler
    if getattr(warnings.showwarning, "__module__", "") != "logging":
        return
    log = logging.getLogger("py.warnings")
    seen, node = False, log
    while node is not None:
        if any(not isinstance(h, logging.NullHandler) for h in node.handlers):
            seen = True
            break
        node = node.parent if node.propagate else None
    if not seen and _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(_handler)


def warn(comm, message: str, category: type = RuntimeWarning, stacklevel: int = 2) -> None:
    """Warn on rank 0 of comm (None: this process) about a condition all ranks agree on; always shown.
    stacklevel as for warnings.warn, counted from the caller of warn."""
    ensure_visible()
    if comm is None or comm.rank == 0:
        warnings.warn(message, category, stacklevel=stacklevel + 1)
