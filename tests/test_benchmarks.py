"""The benchmark scripts run and write well-formed JSON (timings are reported, never asserted)."""

import json

import numpy as np

from benchmarks.fd_reference import FiniteDifferenceFP


def test_fd_reference_conserves_and_converges():
    fd = FiniteDifferenceFP(lambda x: 0.5 * x**2, 1.0, [-6], [6], 200)
    p0 = np.exp(-((fd.grid[0] - 1) ** 2) / 0.4)
    p0 /= p0.sum() * fd.cell
    p, _ = fd.solve(p0, 10.0, 0.05)
    assert abs(p.sum() * fd.cell - 1) < 2e-13                                   # measured 3.0e-14
    ex = np.exp(-0.5 * fd.grid[0] ** 2) / np.sqrt(2 * np.pi)
    assert np.abs(p - ex).max() < 5e-5                                         # measured 1.1e-5


def test_ou_vs_fd_quick(tmp_path):
    from benchmarks import ou_vs_fd

    ou_vs_fd.main(["--out", str(tmp_path), "--quick"])
    data = json.loads((tmp_path / "ou_vs_fd.json").read_text())
    assert {r["method"] for r in data["rows"]} >= {"FE P2 BDF2 (LU)", "FD SQRA CN (splu)"}
    for method in {r["method"] for r in data["rows"]}:
        errs = [r["error"] for r in data["rows"] if r["method"] == method]
        assert all(b < a for a, b in zip(errs, errs[1:])), (method, errs)   # refinement helps
    assert len(data["time_to_error"]) == 5 * 3


def test_particles_benchmark_quick(tmp_path):
    from benchmarks import particles

    particles.main(["--out", str(tmp_path), "--quick"])
    data = json.loads((tmp_path / "particles-n1.json").read_text())
    methods = {r["method"] for r in data["rows"]}
    assert any(m.startswith("plain numpy loop") for m in methods) and len(methods) == 6
    assert "interaction force, Gaussian W, particle mesh 256^2" in methods
    assert all(r["particle_steps_per_s"] > 0 for r in data["rows"]) and data["speedup_vectorised_vs_loop"] > 0


def test_jko_benchmark_runs(tmp_path):
    from benchmarks import jko

    jko.main(["--out", str(tmp_path), "--hs", "0.25", "--iters", "20"])
    data = json.loads((tmp_path / "jko-n1.json").read_text())
    assert [r["method"].split()[0] for r in data["rows"]] == ["ALG2", "entropic"]
    assert data["rows"][0]["iterations"] == 20 and all(r["seconds_per_step"] > 0 for r in data["rows"])


def test_interaction_benchmark_quick(tmp_path):
    from benchmarks import interaction

    out = interaction.main(["--out", str(tmp_path), "--quick"])
    data = json.loads((tmp_path / "interaction-n1.json").read_text())
    assert len({r["path"] for r in data["rows"]}) == 4 and len(data["rows"]) == 8
    assert all(r["seconds_step_semi_implicit"] > 0 and r["seconds_step_explicit"] > 0 for r in data["rows"])
    assert set(out["exponents"]) == {r["path"] for r in data["rows"]}


def test_jko_newton_benchmark_quick(tmp_path):
    """Small sizes: every step converges, iterations do not grow with the mesh, the error falls."""
    from benchmarks import jko_newton

    jko_newton.main(["--out", str(tmp_path), "--sizes", "32", "64"])
    data = json.loads((tmp_path / "jko_newton-n1.json").read_text())
    rect = [r for r in data["rows"] if r["mesh"].startswith("rectangle")]
    assert all(r["converged"] for r in data["rows"]) and len(data["rows"]) == 3
    assert rect[1]["l1_first_step"] < rect[0]["l1_first_step"]
    assert max(rect[1]["newton_iterations"]) <= max(rect[0]["newton_iterations"]) + 1
    assert np.isfinite(data["exponent"])


def test_fp_scaling_benchmark_quick(tmp_path):
    """One 2D size with the three solvers and a small 3D box: they agree on the error (the Krylov paths,
    stopped at 1e-3 of the predictor's residual, within 1e-4 of the discretisation error), JSON well formed."""
    from benchmarks import fp_scaling

    fp_scaling.main(["--out", str(tmp_path), "--cells", "100", "--gamg-cells", "100", "--box-h", "0.4"])
    data = json.loads((tmp_path / "fp_scaling-n1.json").read_text())
    two = [r for r in data["rows"] if r["dim"] == 2]
    assert [r["kind"] for r in two] == ["iterative", "direct", "gamg"] and any(r["dim"] == 3 for r in data["rows"])
    assert "FGMRES + hypre" in two[0]["solver"] and "gamg" in two[2]["solver"]
    for r in (two[0], two[2]):
        assert abs(r["rel_l2_error"] - two[1]["rel_l2_error"]) < 1e-4 * two[1]["rel_l2_error"]
    assert all(r["seconds_per_step"] > 0 and r["peak_rss_mb"] > 0 for r in data["rows"])


def test_deep_relaxation_benchmark_quick(tmp_path):
    """Two HJ sizes (the Cole-Hopf and direct solves agree better on the finer one, Newton takes 2-5 iterations)
    and the particle rates; JSON well formed."""
    from benchmarks import deep_relaxation

    deep_relaxation.main(["--out", str(tmp_path), "--cells", "20,40", "--runs", "200", "--steps", "200"])
    data = json.loads((tmp_path / "deep_relaxation-n1.json").read_text())
    hj = data["hj"]
    assert hj[1]["max_difference"] < hj[0]["max_difference"] and all(2 <= r["newton_per_step"] <= 5 for r in hj)
    assert all(r["particle_steps_per_s"] > 1e5 for r in data["particles"])


def test_front_door_benchmark_quick(tmp_path):
    from benchmarks import front_door

    front_door.main(["--out", str(tmp_path), "--quick"])
    data = json.loads((tmp_path / "front_door-n1.json").read_text())
    assert [r["d"] for r in data["rows"]] == [1, 2, 3] and all(r["auto"] == "direct" for r in data["rows"])
    assert all(r["direct"] > 0 and r["mesh"] > 0 for r in data["rows"]) and data["newcomer"] is None


def test_digits_benchmark_quick(tmp_path):
    from benchmarks import digits

    digits.main(["--out", str(tmp_path), "--quick"])
    data = json.loads((tmp_path / "digits-n1.json").read_text())
    assert len(data["rows"]) == 3 and all(r["ms_per_step"] > 0 for r in data["rows"])
    assert [r["label"] for r in data["chaos_table"]] == ["b = 0.5", "b = 0.75", "b = 1", "b = 1, same data"]


def test_jko_spacetime_benchmark_quick(tmp_path):
    from benchmarks import jko_spacetime

    jko_spacetime.main(["--out", str(tmp_path), "--quick"])
    rows = json.loads((tmp_path / "jko_spacetime-n1.json").read_text())["rows"]
    assert [r["mode"] for r in rows] == ["one step", "auto (tol 0.001)"] and rows[1]["K"][0] >= 2
    assert all(r["converged"] for r in rows)
    # the K-step is nearer the exact Gaussian step (measured at 24^2: 0.104 against 0.151, the mesh's floor there)
    assert rows[1]["l1_step1"] < 0.8 * rows[0]["l1_step1"], rows
