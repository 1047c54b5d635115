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
