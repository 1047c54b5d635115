"""One protocol for every time-dependent solver: built on a mesh, set_initial, step() -> record, run(t_end, ...)
-> self, the history core, state_dict / load_state_dict and Checkpointer / resume (also from 1 rank to 2),
a second set_initial starting a new run, close(), a PETSc prefix of its own."""

import math

import numpy as np
import pytest
from mpi4py import MPI

from conftest import run_mpi
from protocol_cases import CASES, field
from fpjko.solvers.core.protocol import CORE_KEYS
from fpjko.solvers.io.checkpoint import Checkpointer, resume

COMM = MPI.COMM_WORLD
READY = {"LocalEntropy", "ViscousHJ"}


def _new(name):
    build, _ = CASES[name]
    s, args, kwargs = build(COMM)
    return s, args, kwargs


def _close(a, b, tol):
    (xa, va), (xb, vb) = field(a), field(b)
    np.testing.assert_allclose(xa, xb, atol=1e-12)
    scale = np.abs(va).max()
    if tol == 0:
        assert np.array_equal(va, vb)
    else:
        assert np.abs(va - vb).max() <= tol * scale, np.abs(va - vb).max() / scale


@pytest.mark.parametrize("name", sorted(CASES))
def test_protocol_run_checkpoint_resume(name, tmp_path):
    tol = CASES[name][1]
    ref, args, kw = _new(name)
    h = ref.step_size
    ref.set_initial(*args, **kw)
    rec = ref.step()
    assert set(CORE_KEYS) <= set(rec) and rec["t"] == pytest.approx(h) and ref.steps == 1
    assert ref.run(4 * h) is ref and ref.steps == 4 and ref.t == pytest.approx(4 * h)
    assert set(CORE_KEYS) <= set(ref.history) and len(ref.history["t"]) == 5
    assert all(len(v) == 5 for v in ref.history.values())
    assert all(ref.history["converged"]) and all(math.isfinite(e) for e in ref.history["energy"])
    # one rule for the last step: ceil, a full step
    ref.run(4 * h + 0.5 * h)
    assert ref.steps == 5 and ref.t == pytest.approx(5 * h)
    ref.run(6 * h)

    a, args, kw = _new(name)
    a.set_initial(*args, **kw)
    path = tmp_path / "ck.npz"
    a.run(3 * h, checkpoint=Checkpointer(path, every=2))
    b, _, _ = _new(name)
    resume(b, path)
    assert b.steps == 3 and b.t == pytest.approx(3 * h) and len(b.history["t"]) == 4
    b.run(6 * h)
    _close(ref, b, tol)
    for k in ("t", "mass", "energy"):
        np.testing.assert_allclose(b.history[k], ref.history[k], rtol=max(tol, 1e-14) * 10, atol=1e-13)

    # in memory: state_dict -> load_state_dict
    c, _, _ = _new(name)
    a.run(4 * h)
    c.load_state_dict(a.state_dict())
    a.run(6 * h)
    c.run(6 * h)
    _close(a, c, tol)

    # a second set_initial starts a new run
    a.set_initial(*args, **kw)
    assert a.t == 0.0 and a.steps == 0 and all(len(v) == 1 for v in a.history.values())
    a.close()
    a.close()
    with pytest.raises(RuntimeError, match="is closed"):
        a.step()
    fresh = _new(name)[0]
    if name in READY:                   # built from its initial state (the HJ solvers: u(0) = f)
        assert fresh.t == 0.0 and len(fresh.history["t"]) == 1
    else:
        with pytest.raises(RuntimeError, match="before step"):
            fresh.step()
    fresh.close()
    for s in (ref, b, c):
        s.close()


NO_KSP = {"GraphonFlow", "GraphonMcKeanVlasov"}          # numpy steps: no PETSc solve, no prefix


def _owns_ksp(solver) -> bool:
    """The solver has a place for its KSP (or a dict of them), itself or in one of its parts (FP's StepSolver,
    NewtonJKO's SchurSystem)."""
    def holds(obj):
        return any(k.endswith("_ksp") for k in vars(obj))
    return holds(solver) or any(holds(v) for v in vars(solver).values() if hasattr(v, "__dict__")
                                and type(v).__module__.startswith("fpjko"))


def test_each_solver_has_its_own_prefix():
    prefixes = {}
    for name in CASES:
        s, _, _ = _new(name)
        prefixes[name] = s.prefix
        assert (s.prefix == "" and not _owns_ksp(s)) if name in NO_KSP else _owns_ksp(s), name
        s.close()
    owned = [p for n, p in prefixes.items() if n not in NO_KSP]
    assert all(owned) and len(set(owned)) == len(owned), prefixes


def test_resume_refuses_another_problem(tmp_path):
    from fpjko import meshes
    from fpjko.solvers import FokkerPlanckSolver

    a, args, kw = _new("FokkerPlanckSolver")
    a.set_initial(*args, **kw)
    Checkpointer(tmp_path / "ck.npz").save(a)
    msh = meshes.rectangle(COMM, [-3, -3], [3, 3], 0.4)
    other = FokkerPlanckSolver(msh, lambda x: 0.5 * x[0] ** 2 + x[1] ** 2, beta=2.0, dt=0.05, scheme="bdf2")
    with pytest.raises(ValueError, match="beta=1.5 vs 2.0"):
        resume(other, tmp_path / "ck.npz")
    e, eargs, ekw = _new("EntropicJKO")
    with pytest.raises(ValueError, match="is of a FokkerPlanckSolver, not of a EntropicJKO"):
        resume(e, tmp_path / "ck.npz")
    with pytest.raises(RuntimeError, match="no state to checkpoint yet"):
        Checkpointer(tmp_path / "none.npz").save(e)


@pytest.mark.mpi
@pytest.mark.parametrize("name", sorted(CASES))
def test_resume_on_two_ranks_from_a_one_rank_checkpoint(name, tmp_path):
    r1 = run_mpi(1, "mpi_protocol.py", name, tmp_path, "save", timeout=300)
    r2 = run_mpi(2, "mpi_protocol.py", name, tmp_path, "resume", timeout=300)
    va, vb = np.array(r1["values"]), np.array(r2["values"])
    np.testing.assert_allclose(np.array(r1["x"]), np.array(r2["x"]), atol=1e-12)
    assert np.abs(va - vb).max() <= max(CASES[name][1], 1e-10) * np.abs(va).max()
    assert r2["steps"] == r1["steps"] and r2["history_t"] == pytest.approx(r1["history_t"])


WARN_SCRIPT = """
import numpy as np
from mpi4py import MPI
import dolfinx, dolfinx.fem
from fpjko import meshes
from fpjko.solvers import EntropicJKO
msh = meshes.interval(MPI.COMM_WORLD, -3, 3, 0.1)
j = EntropicJKO(msh, tau=0.1, gamma=0.05, potential=lambda x: 0.5 * x[0] ** 2, max_iter=2)
j.set_initial(lambda x: np.exp(-(x[0] - 1.0) ** 2 / 0.4), normalize=True)
j.step()
assert j.history["converged"][-1] is False
"""


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_non_convergence_warning_reaches_stderr_once(ranks, tmp_path):
    """After `import dolfinx` (whose form compiler captures warnings into a logger that prints nothing) the
    package's non-convergence warning is still printed, on rank 0 only."""
    import os
    import subprocess
    import sys

    script = tmp_path / "warn.py"
    script.write_text(WARN_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = ([sys.executable] if ranks == 1 else ["mpirun", "-n", str(ranks), sys.executable]) + [str(script)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.count("EntropicJKO step 1 (t=0.1) did not converge: relative change") == 1, p.stderr[-2000:]
    assert "after max_iter=2 Sinkhorn iterations" in p.stderr


@pytest.mark.parametrize("kind", ["FokkerPlanckSolver", "NewtonJKO", "ContinuityEquation"])
def test_resume_refuses_another_interaction(kind, tmp_path):
    """The fingerprint holds the interaction's numbers, not only its kind: a k = 1 checkpoint does not resume into
    k = 5, nor a Gaussian kernel's into a wider one (issue 29, point 5); the same interaction resumes."""
    from fpjko import meshes
    from fpjko.solvers import ContinuityEquation, FokkerPlanckSolver, NewtonJKO

    msh = meshes.interval(COMM, -3, 3, 0.2)

    def build(W):
        if kind == "FokkerPlanckSolver":
            s = FokkerPlanckSolver(msh, lambda x: 0.5 * x[0] ** 2, beta=1.0, dt=0.05, interaction=W)
        elif kind == "NewtonJKO":
            s = NewtonJKO(msh, 0.1, potential=lambda x: 0.5 * x[0] ** 2, beta=1.0, interaction=W)
        else:
            s = ContinuityEquation(msh, lambda x: 0.5 * x[0] ** 2, interaction=W, dt=0.01)
        s.set_initial(lambda x: np.exp(-x[0] ** 2 / 0.5), normalize=True)
        return s

    def gauss(width):
        return lambda z: np.exp(-np.sum(z * z, axis=-1) / width)

    for saved, other, what in [(1.0, 5.0, "interaction="), (gauss(1.0), gauss(2.0), "interaction=")]:
        a = build(saved)
        a.step()
        Checkpointer(tmp_path / "ck.npz").save(a)
        with pytest.raises(ValueError, match=what):
            resume(build(other), tmp_path / "ck.npz")
        same = build(saved)
        resume(same, tmp_path / "ck.npz")
        assert same.steps == 1
