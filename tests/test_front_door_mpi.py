"""The front door under `mpirun -n 2`: one rank's bad or different value at Model, model.particles, validate, a
solver's callable and the particle forces is one error on every rank, naming the argument and both values (or the
particle); a rank without particles runs the particle mesh to the serial result. The cases live in
tests/mpi_front_door.py."""

import pytest

from conftest import check_fault, run_faults

pytestmark = pytest.mark.mpi

DIFFERS = ["differs across ranks", "rank 0", "rank 1 of 2"]
EXPECTED = {
    "model_beta_differs": ("ValueError", [*DIFFERS, "Model", "'beta'", "3.0", "2.0"]),
    "model_V_differs": ("ValueError", [*DIFFERS, "Model", "'V'", "0.5*x**2"]),
    "model_initial_differs": ("ValueError", [*DIFFERS, "Model", "'initial'"]),
    "model_bad_key_on_rank1": ("ValueError", [*DIFFERS, "'initial'", "covariance"]),
    "particles_dt_differs": ("ValueError", [*DIFFERS, "Model.particles", "'dt'", "0.02", "0.01"]),
    "particles_n_differs": ("ValueError", [*DIFFERS, "Model.particles", "'n'", "41", "40"]),
    "particles_seed_differs": ("ValueError", [*DIFFERS, "Model.particles", "'seed'"]),
    "particles_force_differs": ("ValueError", [*DIFFERS, "Model.particles", "'force'", "mesh", "direct"]),
    "particles_too_many_on_both": ("MemoryError", ["n = 1e+11 particles", "GiB", "take fewer particles"]),
    "particles_model_nan_on_rank1": ("FloatingPointError", ["grad V", "not finite", "sqrt(x0)",
                                                            "not a time-step problem"]),
    "particles_empty_rank_auto_mesh": None,
    "validate_h_differs": ("ValueError", [*DIFFERS, "validate", "'h'", "0.25", "0.2"]),
    "validate_ns_differs": ("ValueError", [*DIFFERS, "validate", "'ns'"]),
    "validate_seed_differs": ("ValueError", [*DIFFERS, "validate", "'seed'"]),
    "validate_repeats_differs": ("ValueError", [*DIFFERS, "validate", "'repeats'"]),
    "validate_out_is_file": ("NotADirectoryError", ["out", "is a file"]),
    "validate_too_fine_h": ("MemoryError", ["h = 5e-10", "dofs", "GiB", "take a larger h"]),
    "solver_potential_callable_differs": ("ValueError", [*DIFFERS, "FokkerPlanckSolver", "'potential'"]),
    "particle_mesh_nan_on_rank1": ("ValueError", ["on rank 1 of 2", "particle 19 is not finite"]),
    "particle_mesh_outside_on_rank0": ("ValueError", ["on rank 0 of 2", "particle 2", "left the particle mesh's box"]),
    "network_gamma_differs": ("ValueError", [*DIFFERS, "TwoLayerNetwork.sgd", "'gamma'", "0.2", "0.1"]),
    "network_width_differs": ("ValueError", [*DIFFERS, "TwoLayerNetwork", "'N'", "300", "301"]),
    "network_data_differs": ("ValueError", [*DIFFERS, "TwoLayerNetwork.sgd", "'data'"]),
    "network_beta_out_of_range_on_both": ("ValueError", ["beta must lie in [0, 1]", "1.5"]),
    "network_empty_rank_matches_serial": None,
    "chaos_file_bad_on_rank0": ("ValueError", ["N20_s0_b", "not finite"]),
    # found by an independent probe (they hung, crashed or passed silently)
    "stationary_tol_differs": ("ValueError", [*DIFFERS, "Model.stationary", "'tol'"]),
    "callback_stops_on_rank1": None,
    "callback_raises_on_rank1": ("RuntimeError", ["the user's callback failed"]),
    "density_sampler_fails_on_rank1": ("ValueError", ["is negative at x = [0.1]"]),
    "particle_mesh_cells_differ": ("ValueError", [*DIFFERS, "ParticleMesh", "'cells'"]),
    "random_batch_p_differs": ("ValueError", [*DIFFERS, "RandomBatch", "'p'"]),
    "random_batch_kernel_fails_on_rank1": ("FloatingPointError", ["grad W overflowed"]),
    "streams_seed_differs": ("ValueError", [*DIFFERS, "Streams", "'seed'"]),
    "model_numbers_as_array_or_list": None,
    # found by the re-probe: a checkpoint's every or path differing per rank hung or let rank 0's path win
    "checkpoint_every_differs": ("ValueError", [*DIFFERS, ".run", "'checkpoint'", "'every'"]),
    "checkpoint_path_differs": ("ValueError", [*DIFFERS, ".run", "'checkpoint'", "cpA", "cpB"]),
    "resume_path_differs": ("ValueError", [*DIFFERS, "resume", "'path'", "rA", "rB"]),
}


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    return run_faults("mpi_front_door.py", tmp_path_factory.mktemp("front_door"), timeout=400)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_front_door_fault_ends_every_rank(faults, case):
    check_fault(faults, case, EXPECTED[case])


def test_the_cli_under_two_ranks_gives_one_error_line(tmp_path):
    """`fpjko validate MODEL.toml -n 2` with --out pointing at a file: refused before the study runs, one `error:`
    line (rank 0), a non-zero exit (one rank used to report success after the whole study had run)."""
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from test_front_door import TOML

    path = tmp_path / "model.toml"
    path.write_text(TOML)
    (tmp_path / "FILE").write_text("")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "fpjko.cli", "validate", str(path), "-n", "2", "--out",
                        str(tmp_path / "FILE")], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    assert p.returncode != 0 and len(errors) == 1 and "is a file" in errors[0], p.stderr
    assert "Traceback" not in p.stderr and "validate: " not in p.stderr        # nothing ran
