"""MathJax for an offline site: Debian's libjs-mathjax (MathJax 2) copied into the build's _static/mathjax.

Nothing on a page is loaded from the network. The copy skips MathJax's unpacked sources and tests; it is made once
per build directory.
"""

from __future__ import annotations

import os
import shutil

MATHJAX = "/usr/share/javascript/mathjax"


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dest = os.path.join(app.outdir, "_static", "mathjax")
    if os.path.exists(os.path.join(dest, "MathJax.js")):
        return
    if not os.path.exists(os.path.join(MATHJAX, "MathJax.js")):
        raise RuntimeError(f"MathJax is not installed at {MATHJAX} (Debian's libjs-mathjax, in docker/packages.txt)")
    shutil.copytree(MATHJAX, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("unpacked", "test"))


def setup(app):
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
