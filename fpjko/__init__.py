"""fpjko: Fokker-Planck equations and JKO (Wasserstein gradient flow) schemes on finite elements.

    fpjko.solvers     the finite-element solvers (dolfinx, PETSc)
    fpjko.meshes      mesh builders
    fpjko.samplers    the particle dynamics (numpy only, importable without dolfinx)
    fpjko.references  exact laws and numerical reference values (numpy only)
    fpjko.metrics     distances between measures and fitted rates (numpy only)
    fpjko.common      the infrastructure both halves share (checks, MPI verdicts, progress, atomic files)
    fpjko.model       a mean-field model declared once: its particles, its PDEs, the validated comparison
    fpjko.demos       the literate demos (`fpjko demo NAME`)

The subpackages load on first use: `import fpjko` imports neither dolfinx nor PETSc.
"""

import os as _os
from importlib import import_module as _import_module

__version__ = "0.2.0"

# In a source checkout the folders solvers/, meshes/, samplers/ and demos/ stand beside fpjko/ at the repository's
# top level; the wheel installs them under fpjko/ (pyproject.toml's package-dir). Searching the checkout's top
# level for fpjko's subpackages makes `fpjko.solvers` the same module in both.
_here = _os.path.dirname(_os.path.abspath(__file__))
_top = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "solvers")) and _os.path.isfile(_os.path.join(_top, "solvers", "__init__.py")):
    __path__.append(_top)  # noqa: F821 (a package's own __path__)

_SUBPACKAGES = ("solvers", "meshes", "samplers", "references", "metrics", "common", "model", "demos")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    """`fpjko.solvers` and the other subpackages import on first attribute access."""
    if name in _SUBPACKAGES:
        mod = _import_module(f"fpjko.{name}")
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'fpjko' has no attribute {name!r}")
