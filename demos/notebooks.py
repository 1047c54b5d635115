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
LITERATE = ("mantel", "jko_vs_pde", "jko_geodesic", "double_well", "particles_vs_fe", "sgd_not_gibbs", "phase_transition",
            "mean_field_network", "wide_minima", "aggregation")


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/notebooks")
    p.add_argument("names", nargs="*", default=list(LITERATE), help=f"demos (default: {' '.join(LITERATE)})")
    a = p.parse_args(argv)
    for name in a.names:
        t0 = time.perf_counter()
        path = build(name, a.out)
        print(f"{path}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
