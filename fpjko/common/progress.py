"""A progress bar on rank 0 (tqdm), off when stderr is not a terminal, with FPJKO_PROGRESS=0 (`fpjko ... --quiet`)
or on other ranks; the per-step numbers stay in each solver's history. tqdm is optional (numpy-only module)."""

from __future__ import annotations

import os
import sys


class _Off:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s, refresh=True):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def off() -> _Off:
    """A bar that shows nothing."""
    return _Off()


def enabled(rank: int = 0) -> bool:
    return rank == 0 and os.environ.get("FPJKO_PROGRESS", "1") != "0" and sys.stderr.isatty()


def bar(total: int, desc: str, rank: int = 0):
    """A tqdm bar of `total` steps on rank 0 of an interactive run, else an object that does nothing."""
    if not enabled(rank):
        return _Off()
    try:
        from tqdm import tqdm
    except ImportError:                                     # pragma: no cover
        return _Off()
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)
