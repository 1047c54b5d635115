"""Sphinx configuration of the fpjko documentation site (make docs).

The site is built offline: MathJax comes from Debian's libjs-mathjax and is copied into the build, no page loads
anything from the network. The literate demos (demos/*.py, jupytext percent scripts) are copied to demos/ here by
docs/_ext/demo_pages.py before the build, executed by myst-nb with a cache (an unchanged demo is not run again) and
rendered with their figures; FPJKO_DOCS_DEMOS=name,name limits the build to some demos (the CI test's quick build).
Warnings are errors (make docs passes -W) and cross-references are checked (nitpicky).
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, ROOT)
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

project = "fpjko"
author = "the fpjko developers"
copyright = "2026, the fpjko developers"
try:
    from fpjko import __version__ as release
except Exception:                       # noqa: BLE001  (the version is cosmetic)
    release = "unknown"
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "api_pages",
    "demo_pages",
    "benchtables",
    "offline_assets",
]

# ---- sources
exclude_patterns = ["_build", "_ext", "_templates", "conf.py", "check_site.py", "demos/_files", "**/results", "Thumbs.db",
                    ".DS_Store"]     # the only .py sources are the demo pages, demos/pages/*.py
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".py": "myst-nb"}   # autosummary writes .rst
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_update_mathjax = False       # its window.MathJax is MathJax 3 configuration; Debian's MathJax is 2

# ---- executing the demos: cached by jupyter-cache (a demo runs again only when its source changed)
nb_execution_mode = os.environ.get("FPJKO_DOCS_EXECUTE", "cache")
nb_execution_cache_path = os.path.join(ROOT, "results", "docs_cache")     # kept between builds
nb_execution_timeout = 1800
nb_execution_in_temp = True
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# ---- API reference
templates_path = ["_templates"]
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(numpy|np|dolfinx|ufl|petsc4py|PETSc|mpi4py|MPI|scipy|sympy|matplotlib)\..*")]

# ---- HTML: the default theme, MathJax 2 from Debian, served from _static
html_theme = "alabaster"
html_title = f"fpjko {release}"
html_static_path = ["_static"]
html_theme_options = {"description": "Fokker-Planck equations and JKO schemes on finite elements",
                      "fixed_sidebar": True, "page_width": "1180px", "sidebar_width": "240px"}
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_CHTML"
mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                               "processEscapes": True}, "messageStyle": "none"}
html_show_sourcelink = False
html_favicon = "_static/favicon.png"     # a browser asks for one; a 404 is a console error


_REF = re.compile(r"(?<![`\w-])(-?[A-Za-z][\w-]*_)(?=[\s,.;:)'\"]|$)")     # fp_, -njko_: RST would read a reference
_STAR = re.compile(r"(?<=[\s(\[,])(\*{1,2})(?=[^\s*])")                       # *shape, **kw: emphasis
_PARAM = re.compile(r"^\s*\*{1,2}\w+\s*(:|$)")                                     # numpydoc's own "**kw :" lines


def _plain_text(app, what, name, obj, options, lines):
    """The docstrings are plain text with numpydoc sections: |z| is a modulus, 'fp_' a prefix, *shape a star,
    never reStructuredText substitutions, references or emphasis."""
    for i, line in enumerate(lines):
        line = line.replace("\\|", "|").replace("|", "\\|")
        line = _REF.sub(lambda m: f"``{m.group(1)}``", line).replace("'``", "``").replace("``'", "``")
        if not _PARAM.match(line):
            line = _STAR.sub(lambda m: "\\" + "\\".join(m.group(1)), line)
        lines[i] = line


def setup(app):
    app.connect("autodoc-process-docstring", _plain_text, priority=400)   # before numpydoc (500) parses
