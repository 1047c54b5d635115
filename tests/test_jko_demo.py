"""The JKO teaching demo: distance to the PDE halves with tau; GIF and plot written."""


def test_jko_vs_pde_short(tmp_path):
    from demos import jko_vs_pde

    s = jko_vs_pde.main(["--out", str(tmp_path), "--taus", "0.2", "0.1", "--t-end", "0.4", "--h", "0.1"])
    d = [s["jko"][k]["l1_to_pde"][-1] for k in ("0.2", "0.1")]
    assert 1.6 < d[0] / d[1] < 2.5, d
    for k in ("0.2", "0.1"):
        F = s["jko"][k]["free_energy"]
        assert all(b < a for a, b in zip(F, F[1:]))
    assert (tmp_path / "jko_steps.gif").stat().st_size > 5000 and (tmp_path / "energy_distance.png").exists()
