"""Matplotlib set-up shared by the demos: the off-screen backend, and save-and-close."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot with the Agg (off-screen) backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, filename: str, dpi: int = 110) -> str:
    fig.savefig(filename, dpi=dpi)
    pyplot().close(fig)
    return filename


def show(*filenames: str) -> None:
    """In a notebook (a Jupyter kernel), display the written figures (PNG or GIF) below the cell; elsewhere
    nothing (the files are the output)."""
    import os
    import sys

    if "ipykernel" not in sys.modules:
        return
    from IPython.display import Image, display

    for f in filenames:
        if os.path.exists(f):
            display(Image(filename=f))


def show_dir(out: str) -> None:
    """In a notebook, display every PNG and GIF a demo wrote to `out` (no-op elsewhere)."""
    import glob
    import os
    import sys

    if "ipykernel" in sys.modules:
        show(*sorted(glob.glob(os.path.join(out, "*.png")) + glob.glob(os.path.join(out, "*.gif"))))
