"""The particles-vs-FE demo: W1 / sliced W2 to the FE density decay like n^(-1/2)."""


def test_particles_vs_fe_short(tmp_path):
    from fpjko.demos import particles_vs_fe

    s = particles_vs_fe.main(["--out", str(tmp_path), "--cases", "ou_1d", "double_well_2d", "--ns", "100", "400",
                              "1600", "6400", "--repeats", "3", "--dt-particles", "2e-3", "--t-end", "0.5"])
    for case, res in s.items():
        assert -0.75 < res["slope"] < -0.3, (case, res)
        assert abs(res["hist_mass"] - 1) < 1e-12 and res["fe_mass_drift"] < 1e-10
    assert (tmp_path / "double_well_2d.png").stat().st_size > 10000
    assert (tmp_path / "summary.json").exists()


def test_interacting_particles_vs_mckean_vlasov_fe(tmp_path):
    """McKean-Vlasov: interacting particles against FokkerPlanckSolver(interaction=k), 1D (W1) and 2D (sliced W2):
    slopes -0.44 / -0.45 here (n <= 25600, dt = 2e-3, 4 seeds); the demo's defaults (n <= 102400, dt = 5e-4)
    measure -0.55 / -0.53."""
    from fpjko.demos import particles_vs_fe

    s = particles_vs_fe.main(["--out", str(tmp_path), "--cases", "desai_zwanzig_1d", "interacting_2d", "--ns", "100",
                              "400", "1600", "6400", "25600", "--repeats", "4", "--dt-particles", "2e-3",
                              "--t-end", "1.0", "--no-png"])
    for case, res in s.items():
        assert -0.75 < res["slope"] < -0.35, (case, res)
        assert res["fe_mass_drift"] < 1e-10
