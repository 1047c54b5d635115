"""The aggregation demo, short, serially and under mpirun -n 2: a non-polynomial kernel on both sides (particle
mesh, FE by FFT), the sliced W2 slope near -1/2, the Random Batch Method's bias shrinking with dt, the same ring on
both sides, and the 2-rank run equal to the serial one."""


import json

import numpy as np

from conftest import run_demo_mpi

SHORT = ["--ns", "1000", "10000", "--rbm-n", "10000", "--rbm-dts", "0.1", "0.05", "0.025",
         "--gif-n", "5000", "--gif-times", "0", "1", "2"]


def test_aggregation_demo_short(tmp_path):
    from fpjko.demos import aggregation

    s = aggregation.main(["--out", str(tmp_path), "--repeats", "4", *SHORT])
    # the theory's -1/2 inside validate's interval (2 standard errors of the 4 seeds' slopes; 2 seeds gave an
    # interval of |s1 - s2|): measured -0.512 [-0.605, -0.419]; 8 seeds (and n = 3000 too) -0.537 [-0.621, -0.453]
    lo, hi = s["interval"]
    assert lo <= -0.5 <= hi and (hi - lo) / 2 < 0.25, (s["slope"], s["interval"])
    assert -0.65 < s["slope"] < -0.35, s["slope"]
    rows = s["rbm"]["rows"]
    assert rows[0]["rbm"] > 2.5 * rows[-1]["rbm"]                      # bias ~ dt: 0.022 -> 0.0056 measured
    assert rows[0]["rbm"] > 2.0 * rows[0]["mesh"]                      # the particle mesh has no such bias
    assert 0.5 < s["rbm"]["rbm_slope_in_dt"] < 1.3                     # measured 0.92 (defaults)
    prof = s["profile"]
    assert abs(prof["ring_radius_pde"] - prof["ring_radius_particles"]) <= 0.051   # one bin of the profile
    assert 0.45 < prof["ring_radius_pde"] < 0.7
    for name in ("ring.gif", "rbm_vs_dt.png", "profile.png", "validate.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 1000

    # the same demo under mpirun -n 2: the particles are bitwise the serial ones and the FE runs agree to solver
    # round-off, so every distance, slope and profile is the serial one (2 seeds there: the serial run's first two,
    # compared seed by seed, so that the comparison costs what it did)
    out2 = tmp_path / "n2"
    s2 = run_demo_mpi("aggregation", out2, "--repeats", "2", *SHORT)
    per_seed = [json.loads((d / "validate.json").read_text())["metrics"]["sliced W2"]["per_seed"]
                for d in (tmp_path, out2)]
    np.testing.assert_allclose(per_seed[1], per_seed[0][:2], rtol=1e-8)
    np.testing.assert_allclose([r["rbm"] for r in s2["rbm"]["rows"]], [r["rbm"] for r in rows], rtol=1e-8)
    np.testing.assert_allclose(s2["profile"]["particles"], prof["particles"], rtol=0, atol=0)
    np.testing.assert_allclose(s2["profile"]["pde"], prof["pde"], rtol=1e-8)
