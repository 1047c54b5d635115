"""Build the literate demos (jupytext percent scripts) into executed notebooks with their figures.

    python3 -m fpjko.demos.notebooks [--out results/notebooks] [NAME ...]      (make notebooks)

Each demos/NAME.py is read by jupytext (markdown cells with the equations, then code), run top to bottom in a
fresh Python kernel from the repository root (so it runs with its default parameters and writes its usual
outputs), and saved as OUT/NAME.ipynb with the cells' outputs, figures included.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LITERATE = ("mantel", "jko_vs_pde", "double_well", "particles_vs_fe", "sgd_not_gibbs", "phase_transition",
            "mean_field_network", "wide_minima")


def build(name: str, out: str, timeout: int = 1200) -> str:
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    import jupytext
    from nbclient import NotebookClient

    src = os.path.join(ROOT, "demos", f"{name}.py")
    nb = jupytext.read(src, fmt="py:percent")
    if not any(c.cell_type == "markdown" for c in nb.cells):
        raise SystemExit(f"error: demos/{name}.py has no markdown cells: not a literate (jupytext percent) script")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.ipynb")
    jupytext.write(nb, path, fmt="ipynb")
    return path


def page_png(notebook: str, filename: str, cells: int = 3) -> str:
    """A picture of the notebook's first page: its first markdown cell (math by matplotlib's mathtext), the next
    code cells in monospace and the last cell's first figure, drawn with matplotlib (there is no browser here
    to take a screenshot)."""
    import base64
    import io
    import json
    import re
    import textwrap

    from fpjko.demos import figures

    plt = figures.pyplot()
    nb = json.load(open(notebook))
    subs = [(r"\\operatorname\{(\w+)\}", r"\\mathrm{\1}"), (r"\\tfrac", r"\\frac"), (r"\\big", ""),
            (r"\\textstyle", ""), (r"\\;", " "), (r"\\,", " "), (r"\\frac(\d)(\d)", r"\\frac{\1}{\2}"),
            (r"\\iiint", r"\\int\\int\\int"), (r"\\frac(\d)\\", r"\\frac{\1}\\"), (r"\\frac(\d)\{", r"\\frac{\1}{"),
            (r"\\frac\{([^}]*)\}(\w)", r"\\frac{\1}{\2}"), (r"\\ge\b", r"\\geq"), (r"\\le\b", r"\\leq")]
    lines = []                                               # (kind, text)
    md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    for raw in "".join(md["source"]).split("\n"):
        t = raw.replace("$$", "$")
        for a, b in subs:
            t = re.sub(a, b, t)
        if t.startswith("# "):
            lines += [("h1", w) for w in textwrap.wrap(t[2:], 80)]
        elif t.startswith("    "):
            lines.append(("code", t))
        else:
            lines += [("md", w) for w in (textwrap.wrap(t, 110) if "$" not in t else [t])] or [("md", "")]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for c in code[:cells - 1]:
        lines.append(("md", ""))
        lines += [("code", ln) for ln in "".join(c["source"]).split("\n")[:8]]
    img = None
    for o in code[-1].get("outputs", []):
        if "image/png" in o.get("data", {}):
            img = plt.imread(io.BytesIO(base64.b64decode(o["data"]["image/png"])), format="png")
            break
    h_text = 0.22 * len(lines) + 0.6
    h_img = 4.0 if img is not None else 0.0
    fig = plt.figure(figsize=(12, h_text + h_img))
    y = 1.0 - 0.3 / (h_text + h_img)
    step = 0.22 / (h_text + h_img)
    for kind, t in lines:
        kw = {"h1": dict(fontsize=15, weight="bold"), "md": dict(fontsize=10.5),
              "code": dict(fontsize=9.5, family="monospace", color="#1a4d8f")}[kind]
        try:
            fig.text(0.02, y, t, va="top", **kw)
            fig.canvas.draw()
        except Exception:                                    # math mathtext cannot draw: plain text
            fig.texts[-1].remove()
            fig.text(0.02, y, t.replace("$", ""), va="top", **kw)
        y -= step * (1.4 if kind == "h1" else 1.0)
    if img is not None:
        ax = fig.add_axes([0.02, 0.01, 0.96, h_img / (h_text + h_img) - 0.02])
        ax.imshow(img)
        ax.axis("off")
    return figures.save(fig, filename, dpi=90)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/notebooks")
    p.add_argument("--page", metavar="PNG", help="also draw the first built notebook's first page into PNG")
    p.add_argument("names", nargs="*", default=list(LITERATE), help=f"demos (default: {' '.join(LITERATE)})")
    a = p.parse_args(argv)
    for name in a.names:
        t0 = time.perf_counter()
        path = build(name, a.out)
        print(f"{path}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        if a.page and name == a.names[0]:
            print(page_png(path, a.page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
