"""The exact-JKO-step demo (demos/jko_geodesic.py), short, serially and under mpirun -n 2: the geodesic of a
large-tau step on the L-shaped mesh passes the re-entrant corner and is longer than the straight line, the step
lands near the equilibrium, and in 1D 'auto' is the exact Gaussian step where the one-step scheme and the PDE at
t = tau are far from it."""

from conftest import run_demo_mpi

SHORT = ["--taus", "0.01", "0.04", "--cells", "400"]


def check(s):
    g = s["geodesic"]
    assert g["converged"] and g["K"] >= 6 and g["pseudo_error"] <= 1e-3, g
    # measured: K = 12 (estimate 9.6e-4), W_K 1.371 against 1.273 (W_K at K = 4, 8, 16, 32: 1.437, 1.381, 1.368,
    # 1.366); L1 to the equilibrium 0.013 (first order in 1/tau: 1.4e-3 at tau = 100);
    # 0.71 of the mass within 0.15 of the corner at pseudo-time 1/2, 4e-6 at the ends
    assert 1.05 * g["straight_line"] < g["w_K"] < 1.15 * g["straight_line"], g
    assert g["l1_end_to_equilibrium"] < 0.03 and g["mass_drift"] < 1e-13, g
    near = g["mass_near_corner"]
    assert near[g["K"] // 2] > 0.5 and max(near[0], near[-1]) < 1e-4, near
    for r in s["step"]["rows"]:
        # measured at 400 cells: auto within 2.5e-3 of the exact step (the mesh's floor), the one-step scheme
        # 0.15 / 0.63, the PDE at t = tau 0.12 / 0.65
        assert r["auto"]["converged"] and r["auto"]["l1_to_exact_step"] < 2.5e-3, r
        assert r["one_step"]["l1_to_exact_step"] > 0.1 and r["exact_step_to_pde"] > 0.1, r
        assert abs(r["auto"]["w2"] - r["exact_w2"]) < 1e-3 * r["exact_w2"], r


def test_jko_geodesic_demo_serial_and_two_ranks(tmp_path, capfd):
    from fpjko.demos import jko_geodesic

    s1 = jko_geodesic.main(["--out", str(tmp_path), *SHORT])
    check(s1)
    # Part 1 meets a pivot that CHOLMOD calls non-positive (MUMPS takes over): CHOLMOD's own line (on stdout) is
    # silenced
    out = capfd.readouterr()
    assert "CHOLMOD" not in out.out + out.err, out
    for name in ("geodesic_l_shape.png", "jko_step_vs_pde.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 1000

    s2 = run_demo_mpi("jko_geodesic", tmp_path / "n2", *SHORT, timeout=600)
    check(s2)
    g1, g2 = s1["geodesic"], s2["geodesic"]
    # The K-step's cut is built from the one-step solution, whose far tails agree only to its Newton test's
    # mass-weighted defect (tol 1e-5): at the cut's level (1e-4, from pseudo_tol) one rank's tails and two ranks'
    # differ (6e-12 against 1e-3 at (-0.75, 0.125)), so the serial cut (429 nodes) misses the corner, fails
    # `_cut_holds` and the step falls back to the whole mesh, where two ranks' cut (755 nodes) holds: W_K 1.4e-5 apart
    # (relative), both within the tolerances (identical on the whole mesh at tol 1e-8: 1.3712181241720)
    assert g1["K"] == g2["K"] and abs(g1["w_K"] - g2["w_K"]) < 1e-4 * g1["w_K"], (g1, g2)
    assert abs(g1["l1_end_to_equilibrium"] - g2["l1_end_to_equilibrium"]) < 1e-6
    # ('auto''s step is the one-step solution's off its cut, whose far tails agree to its Newton test's
    # mass-weighted defect (tol 1e-5): measured 5.2e-8 apart, the one-step rows to 1e-10)
    for r1, r2 in zip(s1["step"]["rows"], s2["step"]["rows"]):
        for mode, bound in (("one_step", 1e-8), ("auto", 2e-7)):
            assert abs(r1[mode]["l1_to_exact_step"] - r2[mode]["l1_to_exact_step"]) < bound, (r1, r2)
