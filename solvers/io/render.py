"""Off-screen rendering that never aborts the process.

VTK built for X (Debian's) aborts the whole process (SIGABRT in vtkXOpenGLRenderWindow) when no X
server answers. `can_render()` therefore tries a tiny render in a child process first; without a
display it starts a private virtual X server (Xvfb, from the package list) for this process and
tries again. If nothing renders, the PNG writers fall back to matplotlib with one warning
(`matplotlib_png`), so a run never dies for want of a display. Rank 0 alone renders.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys

import numpy as np
from fpjko.common.warn import warn

_PROBE = ("import pyvista; pl = pyvista.Plotter(off_screen=True, window_size=[16, 16]); "
          "pl.add_mesh(pyvista.Sphere()); pl.screenshot(return_img=True); pl.close()")
_state: dict = {}


def _probe(env) -> tuple[bool, str]:
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{type(e).__name__}: {e}"
    if r.returncode == 0:
        return True, ""
    lines = [ln for ln in (r.stderr or "").splitlines() if "ERR" in ln or "rror" in ln]
    why = lines[-1].strip() if lines else f"exit status {r.returncode}"
    return False, f"a test render died ({why})"


def _start_xvfb() -> str | None:
    """Start Xvfb on a free display for this process; its DISPLAY string, or None."""
    exe = shutil.which("Xvfb")
    if exe is None:
        return None
    rfd, wfd = os.pipe()
    try:
        proc = subprocess.Popen([exe, "-displayfd", str(wfd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                                pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        os.close(rfd), os.close(wfd)
        return None
    os.close(wfd)
    with os.fdopen(rfd) as fh:
        num = fh.readline().strip()
    if not num.isdigit():
        proc.kill()
        return None
    atexit.register(_stop, proc)
    _state["xvfb"] = proc
    return f":{num}"


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def can_render() -> tuple[bool, str]:
    """(True, '') if pyvista can render off screen here (starting Xvfb if needed), else (False, why).
    Cached; costs one child process (about a second) on the first call."""
    if "ok" in _state:
        return _state["ok"], _state["why"]
    if os.environ.get("FPJKO_NO_RENDER"):
        ok, why = False, "FPJKO_NO_RENDER is set"
    else:
        ok, why = _probe(dict(os.environ))
        if not ok and not os.environ.get("DISPLAY"):
            display = _start_xvfb()
            if display is not None:
                ok, why2 = _probe({**os.environ, "DISPLAY": display})
                if ok:
                    os.environ["DISPLAY"] = display
                    why = ""
                else:
                    why += f"; also with a private Xvfb on {display}: {why2}"
            else:
                why += "; no DISPLAY and no Xvfb to start"
    _state["ok"], _state["why"] = ok, why
    return ok, why


def warn_fallback(why: str) -> None:
    if not _state.get("warned"):
        _state["warned"] = True
        warn(None, f"pyvista cannot render off screen here ({why}); PNGs are drawn with matplotlib "
                      "instead (install xvfb or run under xvfb-run for the pyvista figures)", RuntimeWarning,
                      stacklevel=3)


def matplotlib_png(cells, types, x, vals, filename: str, title: str, clim=None, name: str = "u") -> str | None:
    """A flat colour map (2D), a line (1D) or a quiver plot (vector values) of gathered grid data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.tri as mtri

    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    vals = np.asarray(vals)
    planar = np.allclose(x[:, 2], 0.0)
    flat = np.allclose(x[:, 1], 0.0) and planar
    if flat:
        order = np.argsort(x[:, 0])
        ax.plot(x[order, 0], vals.reshape(len(x), -1)[order, 0])
        ax.set_xlabel("x"), ax.set_ylabel(name)
    elif planar:
        tri = _triangles(cells, types)
        if vals.size == len(x):
            tpc = ax.tripcolor(mtri.Triangulation(x[:, 0], x[:, 1], tri), vals, shading="gouraud",
                               vmin=None if clim is None else clim[0], vmax=None if clim is None else clim[1])
            fig.colorbar(tpc, ax=ax, label=name)
        else:
            v = vals.reshape(len(x), -1)
            step = max(1, len(x) // 600)
            ax.quiver(x[::step, 0], x[::step, 1], v[::step, 0], v[::step, 1], np.hypot(v[::step, 0], v[::step, 1]))
        ax.set_aspect("equal"), ax.set_xlabel("x"), ax.set_ylabel("y")
    else:
        plt.close(fig)
        warn(None, f"no matplotlib fallback for 3D data; {filename} not written", RuntimeWarning, stacklevel=2)
        return None
    ax.set_title(title)
    os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    fig.savefig(filename, dpi=110)
    plt.close(fig)
    return filename


def _triangles(cells, types) -> np.ndarray:
    """Corner triangles of a flat VTK cell array (triangles of any order, quadrilaterals split)."""
    out, i = [], 0
    for t in types:
        k = cells[i]
        c = cells[i + 1:i + 1 + k]
        if t in (5, 22, 69):                    # (Lagrange) triangles: the corners come first
            out.append(c[:3])
        elif t in (9, 28, 70):                  # quadrilaterals
            out += [c[[0, 1, 2]], c[[0, 2, 3]]]
        i += k + 1
    return np.array(out, dtype=np.int64).reshape(-1, 3)
