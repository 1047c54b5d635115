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


@pytest.fixture
def slope():
    return fitted_slope
