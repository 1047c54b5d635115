"""The `fpjko` command: listing, strict options, TOML configs written beside the results and read back,
mpirun through -n, progress bars only on interactive runs."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from fpjko import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fpjko(*args, timeout=300):
    """Run the installed `fpjko` (docker/run puts a launcher of python3 -m fpjko on PATH); python3 -m fpjko.cli elsewhere."""
    exe = [shutil.which("fpjko")] if shutil.which("fpjko") else [sys.executable, "-m", "fpjko.cli"]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(exe + list(map(str, args)), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def test_demo_list_names_every_demo():
    p = fpjko("demo", "--list")
    assert p.returncode == 0, p.stderr
    for name in cli.DEMOS:
        assert f"  {name} " in p.stdout
    assert "Mantel's theorem" in p.stdout and "two-layer network" in p.stdout
    b = fpjko("bench", "--list")
    assert b.returncode == 0 and all(f"  {n} " in b.stdout for n in cli.BENCHES)


def test_config_is_read_written_and_repeats_the_run(tmp_path):
    """--config gives the parameters, the command line wins (t_end), PETSc options pass through in [petsc];
    OUT/config.toml holds the effective parameters and reproduces the run exactly."""
    cfg = tmp_path / "run.toml"
    cfg.write_text('h = 0.2\ndt = 0.05\nt_end = 5.0\nsnapshots = [0.0, 0.1]\nno_png = true\ndegree = 1\n\n'
                   '[petsc]\ndw_ksp_type = "preonly"\ndw_pc_type = "lu"\n')
    out = tmp_path / "a"
    p = fpjko("demo", "double_well", "--config", cfg, "--t-end", "0.1", "--out", out, "--quiet")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    import tomllib

    written = tomllib.loads((out / "config.toml").read_text())
    assert written["t_end"] == 0.1 and written["h"] == 0.2 and written["dt"] == 0.05 and written["degree"] == 1
    assert written["snapshots"] == [0.0, 0.1] and written["no_png"] is True and written["out"] == str(out)
    assert written["petsc"] == {"dw_ksp_type": "preonly", "dw_pc_type": "lu"}
    h1 = json.loads((out / "history.json").read_text())
    # repeat from the written config alone, into another folder
    p2 = fpjko("demo", "double_well", "--config", out / "config.toml", "--out", tmp_path / "b", "--quiet")
    assert p2.returncode == 0, p2.stderr[-2000:]
    h2 = json.loads((tmp_path / "b" / "history.json").read_text())
    assert h1["history"]["energy"] == h2["history"]["energy"] and len(h1["history"]["t"]) == 3


def test_bad_commands_and_options_are_errors(tmp_path):
    for args, msg in ((["demo", "nope"], "unknown demo 'nope'"),
                      (["demo", "mantel", "--t_end", "3"], "unrecognized arguments: --t_end"),
                      (["demo", "double_well", "-xx_ksp_type", "cg", "--out", tmp_path], "match no solver"),
                      (["demo", "mantel", "--np", "zero"], "positive integer"),
                      (["demo", "mantel", "--config", tmp_path / "missing.toml"], "cannot read the config file"),
                      (["bench", "nope"], "unknown benchmark"), (["frobnicate"], "unknown command")):
        p = fpjko(*args)
        assert p.returncode != 0 and msg in p.stdout + p.stderr, (args, p.stdout, p.stderr)
    bad = tmp_path / "bad.toml"
    bad.write_text("t_end = \n")
    p = fpjko("demo", "mantel", "--config", bad)
    assert p.returncode != 0 and "not valid TOML" in p.stderr


@pytest.mark.mpi
def test_np_runs_under_mpirun(tmp_path):
    p = fpjko("demo", "mantel", "-n", "2", "--n", "40", "--t-end", "40", "--flow-n", "8", "--no-gif",
              "--out", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.count("matrix n=40") == 1                      # rank 0 reports
    s = json.loads((tmp_path / "summary.json").read_text())
    assert abs(s["matrix"]["edge_density"] - 0.5) < 0.02 and (tmp_path / "config.toml").exists()


def test_config_round_trip_and_progress_switch(tmp_path, monkeypatch):
    import argparse

    ns = argparse.Namespace(t_end=0.25, snapshots=[0.0, 0.5], no_png=False, method="sg", n=3, out="o d")
    f = tmp_path / "c.toml"
    f.write_text(cli.namespace_to_toml(ns, {"fp_ksp_type": "cg", "log_view": ""}))
    argv = cli.config_to_argv(str(f))
    assert argv == ["--method", "sg", "--n", "3", "--out", "o d", "--snapshots", "0.0", "0.5", "--t-end", "0.25",
                    "-fp_ksp_type", "cg", "-log_view"]
    from fpjko.common import progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("FPJKO_PROGRESS", "1")
    assert progress.enabled(0) and not progress.enabled(1)
    monkeypatch.setenv("FPJKO_PROGRESS", "0")
    assert not progress.enabled(0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.setenv("FPJKO_PROGRESS", "1")
    assert not progress.enabled(0) and isinstance(progress.bar(10, "x"), progress._Off)
