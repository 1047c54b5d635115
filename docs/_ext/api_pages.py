"""The API reference pages, one per package, written from the packages' public names at config-inited.

docs/api/<package>.md lists every name of the package's __all__ in an autosummary (one generated page per name,
numpydoc sections with array shapes), grouped as the package is: fpjko.solvers by the subpackage that defines each
name (fokker_planck, jko, ...), the other packages as one group. A name added to an __all__ appears without editing
the docs.
"""

from __future__ import annotations

import importlib
import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))       # docs/
PACKAGES = ("fpjko.solvers", "fpjko.model", "fpjko.kernels", "fpjko.samplers", "fpjko.meshes", "fpjko.references",
            "fpjko.metrics")


def groups(package: str) -> dict[str, list[str]]:
    """{group title: names} for a package."""
    mod = importlib.import_module(package)
    if package == "fpjko.solvers":
        out: dict[str, list[str]] = {}
        for name, where in sorted(mod._PUBLIC.items(), key=lambda kv: (kv[1], kv[0])):
            sub = where.split(".")[2]
            out.setdefault(f"fpjko.solvers.{sub}", []).append(name)
        return out
    return {package: sorted(mod.__all__)}


BASES = {"fpjko.solvers": {  # the protocol and the base classes the public ones derive from
    "fpjko.solvers.core.protocol": ["Solver", "DensitySolver"],
    "fpjko.solvers.core.diagnostics": ["DensityDiagnostics"],
    "fpjko.solvers.fokker_planck.interaction": ["Interaction"],
    "fpjko.solvers.hamilton_jacobi.marching": ["TimeMarching"]}}


def page(package: str) -> str:
    mod = importlib.import_module(package)
    doc = (mod.__doc__ or "").strip().splitlines()
    lines = [f"# {package}", "", doc[0] if doc else "", ""]
    if package in BASES:
        lines += ["## The protocol and base classes", ""]
        for module, names in BASES[package].items():
            lines += ["```{eval-rst}", f".. currentmodule:: {module}", "", ".. autosummary::",
                      "   :toctree: generated", "   :nosignatures:", ""] + [f"   {n}" for n in names] + ["```", ""]
    for title, names in groups(package).items():
        if title != package:
            lines += [f"## {title}", ""]
        lines += ["```{eval-rst}", f".. currentmodule:: {package}", "", ".. autosummary::", "   :toctree: generated",
                  "   :nosignatures:", ""] + [f"   {n}" for n in names] + ["```", ""]
    return "\n".join(lines)


def write(app, config) -> None:
    os.makedirs(os.path.join(HERE, "api"), exist_ok=True)
    for package in PACKAGES:
        path = os.path.join(HERE, "api", package.split(".")[1] + ".md")
        text = page(package)
        if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)


def setup(app):
    app.connect("config-inited", write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
