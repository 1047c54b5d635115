"""Serial and `mpirun -n 2` agree to solver tolerance; checkpoints move between rank counts."""

import numpy as np
import pytest

from conftest import run_mpi

pytestmark = pytest.mark.mpi


def load(res):
    with np.load(res["path"]) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("case,tol", [("ou_p2_bdf2", 1e-10), ("sg_disk", 1e-10), ("ou_p1_cn_iterative", 1e-8),
                                      ("ou_p1_bdf2_amg", 1e-6)])
def test_serial_and_two_ranks_agree(tmp_path, case, tol):
    r1, r2 = run_mpi(1, "mpi_cases.py", case, tmp_path), run_mpi(2, "mpi_cases.py", case, tmp_path)
    a, b = load(r1), load(r2)
    assert r1["dofs"] == r2["dofs"]
    np.testing.assert_allclose(a["X"], b["X"], atol=1e-12)          # same dofs, coordinate order
    scale = np.abs(a["rho"]).max()
    assert np.abs(a["rho"] - b["rho"]).max() < tol * scale
    for k in ("mass", "energy", "relative_entropy"):
        np.testing.assert_allclose(a[k], b[k], rtol=tol, atol=tol)
    m = b["mass"]
    assert np.abs(m - m[0]).max() < 1e-12 * m[0]                       # conservation under MPI too
    if case != "sg_disk":
        assert abs(r1["l2_error"] - r2["l2_error"]) < tol * max(r1["l2_error"], 1e-300) * 10
    else:
        assert b["min_rho"].min() >= 0.0 and np.all(np.diff(b["energy"]) < 0)


def test_checkpoint_from_two_ranks_resumes_on_one(tmp_path):
    ref = load(run_mpi(1, "mpi_cases.py", "ou_p2_bdf2", tmp_path))
    run_mpi(2, "mpi_cases.py", "checkpoint_save", tmp_path)
    resumed = load(run_mpi(1, "mpi_cases.py", "checkpoint_resume_from_n2", tmp_path))
    np.testing.assert_allclose(resumed["rho"], ref["rho"], atol=1e-10 * np.abs(ref["rho"]).max())
    np.testing.assert_allclose(resumed["t"], ref["t"], rtol=1e-14)


@pytest.mark.parametrize("kind", ["poly", "kernel", "kernel_direct", "sg", "transport", "network", "empty_kernel", "empty_sg",
                                  "empty_transport"])
def test_mean_field_serial_and_two_ranks_agree(tmp_path, kind):
    """Interaction fields (moments, the kernel's grid (Allreduced deposit) and ring pass, the SG lagged potential),
    DG transport and the
    network PDE with its density-dependent D: -n 2 reproduces the serial run to solver tolerance, also
    when rank 1 holds no cells (empty_*)."""
    case = "mv_" + kind
    a = load(run_mpi(1, "mpi_cases.py", case, tmp_path, timeout=120))
    b = load(run_mpi(2, "mpi_cases.py", case, tmp_path, timeout=120))
    np.testing.assert_allclose(a["X"], b["X"], atol=1e-12)
    assert np.abs(a["rho"] - b["rho"]).max() < 1e-10 * np.abs(a["rho"]).max()
    for k in ("interaction_energy", "energy", "risk", "min_rho"):
        if k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-10, atol=1e-12)
    m = b["mass"]
    assert np.abs(m - m[0]).max() < 1e-12 * m[0]


def test_bad_kernel_ends_every_rank_with_the_message(tmp_path):
    """An error found where rank 1 has no cells is decided collectively: all ranks exit, none waits."""
    with pytest.raises(AssertionError, match=r"must return finite values of shape \(1, 2\)"):
        run_mpi(2, "mpi_cases.py", "mv_empty_badkernel", tmp_path, timeout=60)
