"""The aggregation demo, short: a non-polynomial kernel on both sides (particle mesh, FE by FFT), the sliced W2
slope near -1/2, the Random Batch Method's bias shrinking with dt, and the same ring on both sides."""


def test_aggregation_demo_short(tmp_path):
    from fpjko.demos import aggregation

    s = aggregation.main(["--out", str(tmp_path), "--ns", "1000", "10000", "--repeats", "2", "--rbm-n", "10000",
                          "--rbm-dts", "0.1", "0.05", "0.025", "--gif-n", "5000", "--gif-times", "0", "1", "2"])
    assert -0.65 < s["slope"] < -0.35, s["slope"]                      # measured -0.47
    rows = s["rbm"]["rows"]
    assert rows[0]["rbm"] > 2.5 * rows[-1]["rbm"]                      # bias ~ dt: 0.022 -> 0.0056 measured
    assert rows[0]["rbm"] > 2.0 * rows[0]["mesh"]                      # the particle mesh has no such bias
    assert 0.5 < s["rbm"]["rbm_slope_in_dt"] < 1.3                     # measured 0.92 (defaults)
    prof = s["profile"]
    assert abs(prof["ring_radius_pde"] - prof["ring_radius_particles"]) <= 0.051   # one bin of the profile
    assert 0.45 < prof["ring_radius_pde"] < 0.7
    for name in ("ring.gif", "rbm_vs_dt.png", "profile.png", "validate.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 1000
