import json
import os
import subprocess
import sys

import pytest

from fpjko.metrics.study import fitted_slope  # noqa: F401  (tests import it from here too)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




def run_mpi(nprocs: int, script: str, *args, timeout: int = 600) -> dict:
    """Run tests/<script> under mpirun -n nprocs; it prints one JSON line prefixed 'RESULT '."""
    cmd = ["mpirun", "-n", str(nprocs), sys.executable, os.path.join(ROOT, "tests", script), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no RESULT line from {cmd}:\n{p.stdout[-2000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def run_demo_mpi(name: str, out, *args, timeout: int = 900) -> dict:
    """`python3 -m fpjko.demos.<name> --out OUT --no-png ARGS` under mpirun -n 2; returns its summary.json."""
    cmd = ["mpirun", "-n", "2", sys.executable, "-m", f"fpjko.demos.{name}", "--out", str(out), "--no-png",
           *map(str, args)]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    with open(os.path.join(str(out), "summary.json")) as fh:
        return json.load(fh)


def run_faults(script: str, *args, timeout: int = 420) -> tuple[dict, list, str]:
    """Run tests/<script> (the fault_harness protocol) under mpirun -n 2: ({case: {rank: record}}, the cases that
    started, the output). A run that times out still returns what it printed."""
    cmd = ["mpirun", "-n", "2", sys.executable, os.path.join(ROOT, "tests", script), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT).stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    results = {}
    for line in out.splitlines():
        if line.startswith("FAULT "):
            r = json.loads(line[len("FAULT "):])
            results.setdefault(r["case"], {})[r["rank"]] = r
    started = [ln.split()[1] for ln in out.splitlines() if ln.startswith("START ")]
    return results, started, out


def check_fault(faults, case: str, want, skip_reason: str = "") -> None:
    """Both ranks finished the case; with want = (exception type, words) both raised that type with those words
    and the same message (up to the rank prefix); with want None neither raised."""
    results, started, out = faults
    assert case in started, f"{case} never started (an earlier case hung):\n{out[-3000:]}"
    got = results.get(case, {})
    assert set(got) == {0, 1}, f"{case}: ranks {sorted(got)} finished, the others hung:\n{out[-3000:]}"
    if any(r["type"] == "skip" for r in got.values()):
        pytest.skip(f"{case}: {got[0]['message']} ({skip_reason})")
    for rank, r in got.items():
        if want is None:
            assert r["type"] is None, f"{case} rank {rank}: unexpected {r['type']}: {r['message']}"
            continue
        assert r["type"] == want[0], f"{case} rank {rank}: {r['type']}: {r['message']}"
        for word in want[1]:
            assert word in r["message"], f"{case} rank {rank}: {word!r} not in {r['message']!r}"
    if want is not None:                          # the same error on both ranks (up to the rank prefix)
        strip = [r["message"].replace("on rank 0 of 2: ", "").replace("on rank 1 of 2: ", "") for r in got.values()]
        assert strip[0] == strip[1]


@pytest.fixture
def slope():
    return fitted_slope
