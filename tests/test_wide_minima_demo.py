"""The wide-minima demo: f_gamma's global minimum moves to the wide well, and its particles follow their PDEs."""


def test_wide_minima_demo(tmp_path):
    from fpjko.demos import wide_minima

    s = wide_minima.main(["--out", str(tmp_path), "--particles", "800", "--gammas", "0.01,0.3,3", "--t-end", "3",
                          "--h", "0.01", "--h2", "0.1"])
    rows = {r["gamma"]: r for r in s["entropy_sgd"]}
    # grid minima (h = 0.01 here, 0.1 in 2D): measured exactly -1.0 and 1.2 (and 1.2 in 2D)
    assert abs(rows[0.01]["argmin_f_gamma"] + 1.0) < 0.015 and abs(rows[0.3]["argmin_f_gamma"] - 1.2) < 0.015
    assert rows[3.0]["descent_basin"] == 1.0 and rows[0.01]["descent_basin"] < 0.7    # the sharp basin is gone
    for r in rows.values():          # particles against the homogenized flow and the Fokker-Planck law (800: sd 0.018)
        assert abs(r["descent_particles"] - r["descent_flow"]) < 0.06, r
        assert abs(r["particles"] - r["fp_T"]) < 0.06, r
    assert abs(s["langevin"]["particles"] - s["langevin"]["fp_T"]) < 0.06
    assert abs(s["two_d"]["argmin_f_gamma"][0] - 1.2) < 0.06
    assert (tmp_path / "wide_minima.png").exists() and (tmp_path / "wide_minima_2d.png").exists()
