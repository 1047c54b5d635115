"""The two-layer network demo, short: the distance to the right limit falls, to the wrong one does not."""


def test_mean_field_network_demo_short(tmp_path):
    from fpjko.demos import mean_field_network

    s = mean_field_network.main(["--out", str(tmp_path), "--ns", "100", "1000", "10000", "--repeats", "1",
                                 "--n-show", "1000", "--h", "0.2", "--frames", "4"])
    t = {row["N"]: row for row in s["table"]}
    assert t[10000]["ct_to_diffusive"] < 0.25 * t[100]["ct_to_diffusive"]
    assert t[10000]["ct_to_noiseless"] > 0.8 * t[100]["ct_to_noiseless"]
    assert t[10000]["sgd_to_noiseless"] < 0.4 * t[100]["sgd_to_noiseless"]
    assert all(v["mass_drift"] < 2e-14 for v in s["pde"].values())             # measured 2.3e-15
    assert 0 < s["fe_floor_sw2"]["diffusive"] < t[10000]["ct_to_diffusive"]
    b1 = s["spread_b1"]
    assert b1[-1]["spread_b1"] > 0.8 * b1[0]["spread_b1"]                  # SGD at b = 1 stays random ...
    assert b1[-1]["b1_to_noiseless"] > 0.5 * b1[0]["b1_to_noiseless"]      # ... and near neither PDE
    assert b1[-1]["b1_to_diffusive_gamma0.1"] > 0.5 * b1[0]["b1_to_diffusive_gamma0.1"]
    assert t[10000]["ct_risk_error"] < 1.5e-3        # measured 1.6e-4 (one seed; 4.3e-4 over 3 in test_network)
    for name in ("neurons_over_pde.gif", "risk.png", "distance_vs_N.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 1000
