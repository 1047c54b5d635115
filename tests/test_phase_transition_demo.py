"""The phase-transition demo, short: the diagram's points lie on the self-consistency curve."""

import pytest


def test_phase_transition_demo_short(tmp_path):
    from fpjko.demos import phase_transition

    s = phase_transition.main(["--out", str(tmp_path), "--betas", "1.5", "3.0", "--t-end", "20", "--n", "2000"])
    assert s["beta_c"] == pytest.approx(2.188439615, abs=1e-9)                    # measured 2.3e-10 (the digits)
    low, high = s["runs"]
    assert low["m_star"] == 0.0 and abs(low["m_pde_T"]) < 0.02 and abs(low["m_particles_T"]) < 0.1
    assert high["m_pde_T"] == pytest.approx(high["m_star"], abs=2e-3)
    assert high["m_particles_T"] == pytest.approx(high["m_star"], abs=0.06)
    for r in s["runs"]:
        assert r["free_energy_monotone"] and all(b["converged"] for b in r["branches"].values())
    for name in ("bifurcation.png", "magnetisation_vs_t.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 1000
