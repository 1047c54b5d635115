"""The digits demo, short, serially and under mpirun -n 2: the chaos studies' distances are the same bits on both
(the neurons are split in fixed blocks), the PDE part agrees to the solver's round-off, and the numbers say what
the theory says even at this size: at beta = 1 runs on independent data stay apart while runs on the same data
approach each other."""

import json

import numpy as np

from conftest import run_demo_mpi

SHORT = ["--ns", "200", "800", "3200", "--seeds", "2", "--T", "4.0", "--steps", "50", "--pde-ns", "100", "400",
         "--pde-repeats", "2", "--pde-t", "0.2", "--h", "0.5"]


def test_digits_demo_short(tmp_path):
    from fpjko.demos import digits

    s = digits.main(["--out", str(tmp_path), *SHORT])
    chaos = s["chaos"]
    far, near = chaos["b = 1"]["metrics"]["sliced W2"], chaos["b = 1, same data"]["metrics"]["sliced W2"]
    assert far["mean"][-1] > 0.8 * far["mean"][0]                    # common noise: no decay with N
    assert near["mean"][-1] < 0.3 * near["mean"][0]                  # the same data: it falls (~N^-1/2)
    assert far["mean"][-1] > 3 * near["mean"][-1]
    for label in ("b = 0.5", "b = 0.75"):
        m = chaos[label]["metrics"]["sliced W2"]
        assert m["mean"][-1] < 0.6 * m["mean"][0] and m["bound"] == -(1 - float(label[4:])) / 2
    assert set(s["pde"]) and all(v["sliced W2"]["mean"][0] > 0 for v in s["pde"].values())
    assert len(s["table1_equal_steps"]) == len(s["table1_equal_time"]) == 9
    assert all(abs(r["t"] - 4.0) < 0.05 for r in s["table1_equal_time"].values())
    for name in ("chaos.png", "figure1_equal_time.png", "figure1_equal_steps.png", "summary.json", "runs_b1.npz"):
        assert (tmp_path / name).stat().st_size > 1000

    s2 = run_demo_mpi("digits", tmp_path / "n2", *SHORT)
    assert s2["ranks"] == 2
    for label, st in chaos.items():
        for k, m in st["metrics"].items():
            assert s2["chaos"][label]["metrics"][k]["mean"] == m["mean"], (label, k)     # bitwise
    for label, v in s["pde"].items():
        np.testing.assert_allclose(s2["pde"][label]["sliced W2"]["mean"], v["sliced W2"]["mean"], rtol=1e-8)
    assert s2["table1_equal_steps"] == json.loads(json.dumps(s["table1_equal_steps"]))
