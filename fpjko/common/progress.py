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


class StudyProgress:
    """Lines on rank 0 (stderr) for a study of many runs: each run's label and time, the time elapsed and an
    estimate of what remains from a cost model (each run's weight, e.g. n or n^2 particle-steps), calibrated on the
    runs done. Off on other ranks, with enabled=False, or with FPJKO_PROGRESS=0 (`--quiet`).

    Parameters
    ----------
    name : str
        The study's name (the lines' prefix).
    weights : sequence of float
        The relative cost of each run to come, in order.
    rank : int
    enabled : bool, optional
        None: on (rank 0) unless FPJKO_PROGRESS=0.
    """

    def __init__(self, name: str, weights, rank: int = 0, enabled: bool | None = None):
        import time

        self.name, self.weights = name, [float(w) for w in weights]
        self.on = rank == 0 and os.environ.get("FPJKO_PROGRESS", "1") != "0" and enabled is not False
        self.start = self._t = time.perf_counter()
        self.done, self.spent = 0, 0.0

    def note(self, text: str) -> None:
        """A line of its own (e.g. a phase that is not a run)."""
        if self.on:
            print(f"{self.name}: {text}", file=sys.stderr, flush=True)

    def phase(self) -> float:
        """Seconds since the last call (or the start)."""
        import time

        now = time.perf_counter()
        dt, self._t = now - self._t, now
        return dt

    def run_done(self, label: str) -> None:
        """A run finished: its label, its time, the time elapsed and an estimate of what remains."""
        import time

        dt = self.phase()
        self.spent += dt
        self.done += 1
        doneweight = sum(self.weights[: self.done])
        left = self.spent / doneweight * sum(self.weights[self.done:]) if doneweight > 0 else float("nan")
        elapsed = time.perf_counter() - self.start
        self.note(f"[{self.done}/{len(self.weights)}] {label}: {dt:.2f} s (elapsed {_clock(elapsed)}, "
                  + (f"about {_clock(left)} left)" if self.done < len(self.weights) else "done)"))


def _clock(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
