"""The literate demos as pages: demos/NAME.py (jupytext percent) -> docs/demos/NAME.py with a download-and-run cell.

At config-inited, for every demo of fpjko.cli.DEMOS (or those named in FPJKO_DOCS_DEMOS=name,name, the quick build),
this writes docs/demos/pages/NAME.py (the page myst-nb executes and renders: the script with one markdown cell added after
its title, linking the downloads and giving the commands), docs/demos/_files/NAME.py (the script as it is) and
docs/demos/_files/NAME.ipynb (the same as a notebook, by jupytext). Files are rewritten only when their content
changes, so Sphinx and the execution cache see an unchanged demo as unchanged. Pages of demos left out are removed.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))       # docs/
ROOT = os.path.dirname(HERE)


def selected() -> list[str]:
    """The demos of this build: FPJKO_DOCS_DEMOS (comma-separated) or all of fpjko.cli.DEMOS."""
    from fpjko.cli import DEMOS

    want = os.environ.get("FPJKO_DOCS_DEMOS", "").strip()
    if not want:
        return list(DEMOS)
    names = [w.strip() for w in want.split(",") if w.strip()]
    bad = [n for n in names if n not in DEMOS]
    if bad:
        raise ValueError(f"FPJKO_DOCS_DEMOS names unknown demos {bad}; the demos are {list(DEMOS)}")
    return names


def _write(path: str, text: str) -> None:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def page_source(name: str, script: str) -> str:
    """The script with a markdown cell after its first markdown cell: the downloads and the two commands."""
    cell = (f"\n# %% [markdown]\n"
            f"# Download: {{download}}`{name}.py <../_files/{name}.py>` (the script) and "
            f"{{download}}`{name}.ipynb <../_files/{name}.ipynb>` (the notebook). Run it serially or under MPI:\n"
            f"#\n"
            f"#     python3 -m fpjko.demos.{name}\n"
            f"#     mpirun -n 2 python3 -m fpjko.demos.{name}\n"
            f"#\n"
            f"# (inside the project's environment: `docker/run python3 -m fpjko.demos.{name}`). This page was run with "
            f"the demo's defaults.\n")
    lines = script.splitlines(keepends=True)
    # the end of the first markdown cell: the first '# %%' line after the first '# %% [markdown]'
    first = next(i for i, ln in enumerate(lines) if ln.startswith("# %% [markdown]"))
    end = next((i for i in range(first + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    return "".join(lines[:end]) + cell + "\n" + "".join(lines[end:])


def prepare(app, config) -> None:
    import jupytext

    names = selected()
    out = os.path.join(HERE, "demos")
    for name in names:
        with open(os.path.join(ROOT, "demos", f"{name}.py"), encoding="utf-8") as fh:
            script = fh.read()
        _write(os.path.join(out, "_files", f"{name}.py"), script)
        nb = jupytext.reads(script, fmt="py:percent")
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        _write(os.path.join(out, "_files", f"{name}.ipynb"), jupytext.writes(nb, fmt="ipynb"))
        _write(os.path.join(out, "pages", f"{name}.py"), page_source(name, script))
    for f in os.listdir(os.path.join(out, "pages")):
        if f.endswith(".py") and f[:-3] not in names:
            os.remove(os.path.join(out, "pages", f))


def setup(app):
    app.connect("config-inited", prepare)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
