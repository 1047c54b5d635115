"""The SGD demo: the FE stationary covariance matches SGD's Lyapunov prediction, not Gibbs."""

import numpy as np


def test_sgd_not_gibbs_short(tmp_path):
    from fpjko.demos import sgd_not_gibbs

    s = sgd_not_gibbs.main(["--out", str(tmp_path), "--chains", "4000", "--steps", "600", "--cells", "40", "--no-png"])
    fe, lyap, gibbs = (np.array(s[k]) for k in ("cov_fe_stationary", "cov_lyapunov_at_minimizer", "cov_gibbs"))
    sgd, se = np.array(s["cov_sgd_iterates"]), np.array(s["cov_sgd_stderr"])
    assert np.abs(fe - lyap).max() < 0.05 * np.abs(lyap).max()        # D(x) varies slowly near x*
    assert np.abs(fe - sgd).max() < 5 * se.max() + 0.05 * np.abs(fe).max()
    assert np.abs(fe - gibbs).max() > 0.5 * np.abs(gibbs).max()       # not exp(-beta f)
    # measured KL 0.42, current 4.8e-3, residual 1.5e-18
    assert s["kl_stationary_vs_gibbs"] > 0.1 and s["current_L2"] > 1e-3 and s["stationarity_residual"] < 1e-16
