"""The main demo, short, serial and under mpirun -n 2: same numbers, all outputs written."""

import json
import os

import pytest

from conftest import run_mpi


def short(out):
    return ["--out", str(out), "--t-end", "0.3", "--h", "0.15", "--snapshots", "0", "0.3"]


def test_demo_serial_and_mpi(tmp_path):
    from fpjko.demos import double_well

    s1 = double_well.main(short(tmp_path / "n1"))        # PNGs without a DISPLAY too (a private Xvfb renders)
    s2 = run_mpi(2, "run_demo.py", *short(tmp_path / "n2"), "--no-png")
    assert s1["dofs"] == s2["dofs"] and s1["steps"] == s2["steps"] == 15
    for k in ("mass_final", "free_energy_final", "relative_entropy_final", "mass_in_left_well"):
        assert s1[k] == pytest.approx(s2[k], rel=1e-10, abs=1e-12), k
    assert s1["mass_relative_drift"] < 1e-12 and s1["free_energy_monotone"]
    for name in ("history.json", "free_energy.png", "checkpoint.npz"):
        assert os.path.exists(tmp_path / "n1" / name)
    assert os.path.exists(s1["series"])
    assert len(s1["pngs"]) == 2 and all(os.path.getsize(p) > 10000 for p in s1["pngs"]), s1["pngs"]
    with open(tmp_path / "n2" / "history.json") as fh:
        assert len(json.load(fh)["history"]["t"]) == 16
