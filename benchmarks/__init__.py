"""Speed and accuracy benchmarks: each script prints a table and writes JSON (python3 -m benchmarks.NAME)."""

import json as _json
import os as _os


def write_result(out: str, name: str, ranks: int, result: dict) -> str:
    """Write result to OUT/NAME-n<ranks>.json (rank 0's job) and say so; returns the path."""
    _os.makedirs(out, exist_ok=True)
    path = _os.path.join(out, f"{name}-n{ranks}.json")
    with open(path, "w") as fh:
        _json.dump(result, fh, indent=1)
    print(f"wrote {path}")
    return path


def serial_rows(out: str, name: str) -> list | None:
    """The rows of an earlier serial run's OUT/NAME-n1.json (for speedups under mpirun), or None."""
    path = _os.path.join(out, f"{name}-n1.json")
    if not _os.path.exists(path):
        return None
    with open(path) as fh:
        return _json.load(fh)["rows"]
