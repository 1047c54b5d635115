"""numpydoc validation of the public names: every public class, function and method documents its parameters
(Parameters) and what it returns (Returns), in the order of its signature (numpydoc's PR01, PR02, PR03, RT01 and
GL08 checks; python3-numpydoc)."""

import importlib
import inspect

import pytest
from numpydoc.validate import validate  # python3-numpydoc is in the environment: without it this file errors, not skips

# the packages whose __all__ is the public API, and public parts that no __all__ lists
PACKAGES = ("fpjko.solvers", "fpjko.meshes", "fpjko.samplers", "fpjko.references", "fpjko.metrics", "fpjko.model", "fpjko.kernels")
EXTRA = ("fpjko.solvers.core.linear.StepSolver", "fpjko.solvers.core.protocol.Solver",
         "fpjko.solvers.core.protocol.DensitySolver", "fpjko.solvers.jko.newton.graph.EdgeGraph",
         "fpjko.solvers.jko.newton.energies.Energy", "fpjko.solvers.jko.newton.schur.SchurSystem",
         "fpjko.solvers.jko.newton.dual.StepData", "fpjko.solvers.jko.newton.dual.DualNewton",
         "fpjko.solvers.jko.newton.interior.InteriorPoint")
CHECKS = {"PR01", "PR02", "PR03", "RT01", "GL08"}


def _resolve(path: str):
    mod, _, name = path.rpartition(".")
    return getattr(importlib.import_module(mod), name)


def public_names() -> list[str]:
    """Dotted paths of the public functions and classes, and of the classes' public methods and properties
    (inherited ones from the package's own bases too)."""
    objs = [getattr(importlib.import_module(p), n) for p in PACKAGES for n in importlib.import_module(p).__all__]
    objs += [_resolve(p) for p in EXTRA]
    names = set()
    for obj in objs:
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        path = f"{obj.__module__}.{obj.__qualname__}"
        names.add(path)
        if inspect.isclass(obj):
            for cls in obj.__mro__:
                if not cls.__module__.startswith("fpjko"):
                    continue
                for k, v in vars(cls).items():
                    if not k.startswith("_") and (inspect.isfunction(v) or isinstance(v, property)):
                        names.add(f"{cls.__module__}.{cls.__qualname__}.{k}")
    return sorted(names)


NAMES = public_names()


def test_the_public_api_is_large():
    """The walk finds the whole API (it would pass vacuously on an empty list): measured 239 names."""
    assert len(NAMES) > 200, len(NAMES)


@pytest.mark.parametrize("path", NAMES)
def test_numpydoc_parameters_and_returns(path):
    errors = [f"{code}: {msg}" for code, msg in validate(path)["errors"] if code in CHECKS]
    assert not errors, "\n".join(errors)
