"""Time series for ParaView (VTX .bp or XDMF .xdmf) and PNG snapshots through pyvista off screen."""

from __future__ import annotations

import ctypes
import json
import os
import re

import dolfinx.fem
import dolfinx.io
import dolfinx.plot
import numpy as np

from fpjko.common.collective import collectively, on_root
from fpjko.common.files import write_json
from fpjko.solvers.io import render


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean(e: BaseException) -> str:
    """An ADIOS2/HDF5 message without its colour codes and line breaks."""
    return " ".join(_ANSI.sub("", str(e)).split())


def _abandon(writer) -> None:
    """Keep a writer whose file failed alive for good: its C++ destructor would close the file
    again, throw, and abort the process (std::terminate) instead of reporting the error."""
    obj = getattr(writer, "_cpp_object", writer)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    _ABANDONED.append(obj)


_ABANDONED: list = []


def read_index(path: str) -> dict:
    """The series index written next to a series: {'format', 'segments': [{'file', 'times'}]}.
    A resumed run continues in a new segment file; `times` lists each segment's valid frames
    (frames a killed run wrote after its last checkpoint are left out)."""
    with open(series_index_path(path)) as fh:
        return json.load(fh)


def series_index_path(path: str) -> str:
    root, ext = os.path.splitext(os.fspath(path))
    return (root if ext in (".bp", ".xdmf") else os.fspath(path)) + ".series.json"


class SeriesWriter:
    """Writes Functions at given times.

    An index `<path>.series.json` lists the segment files and their frame times. A failed write (read-only or full
    disk) raises OSError on every rank, naming the file.

    Parameters
    ----------
    path : str
    functions : list of dolfinx.fem.Function
    fmt : {'auto', 'vtx', 'xdmf'}
        'vtx' (any Lagrange degree; needs ADIOS2) or 'xdmf' (interpolated to P1, the mesh's geometry degree);
        'auto' picks VTX where dolfinx has ADIOS2.
    resume_at : float, optional
        Continue a series after a restart from a checkpoint at this time: earlier frames are kept (the index drops
        those after it, which a killed run may have written) and new frames go to the next segment file
        `<path>.<k>.bp` (dolfinx 0.9's VTXWriter cannot append to a file).
    """

    def __init__(self, path: str, functions: list, fmt: str = "auto", resume_at: float | None = None):
        self.functions = list(functions)
        msh = self.functions[0].function_space.mesh
        self.comm = msh.comm
        if fmt == "auto":
            fmt = "vtx" if dolfinx.common.has_adios2 else "xdmf"
        if fmt not in ("vtx", "xdmf"):
            raise ValueError(f"fmt must be 'vtx', 'xdmf' or 'auto', got fmt={fmt!r}")
        self.fmt, self._state = fmt, "open"         # then "closed", or "failed" after an I/O error
        root, _ = os.path.splitext(os.fspath(path))
        ext = ".bp" if fmt == "vtx" else ".xdmf"
        self.index_path = root + ".series.json"
        self.index = on_root(self.comm, self._start_index, root, ext, resume_at)
        self.path = os.path.join(os.path.dirname(root), self.index["segments"][-1]["file"])
        self.times = self.index["segments"][-1]["times"]
        try:
            if fmt == "vtx":
                self._w = collectively(self.comm, dolfinx.io.VTXWriter, self.comm, self.path, self.functions,
                                       engine="BP4")
            else:
                V1 = dolfinx.fem.functionspace(msh, ("Lagrange", 1))
                self._p1 = [dolfinx.fem.Function(V1, name=f.name) for f in self.functions]
                self._w = collectively(self.comm, dolfinx.io.XDMFFile, self.comm, self.path, "w")
                collectively(self.comm, self._w.write_mesh, msh)
        except Exception as e:
            self._state = "failed"
            raise OSError(f"cannot write the series {self.path!r}: {_clean(e)}") from None

    def _start_index(self, root: str, ext: str, resume_at) -> dict:
        os.makedirs(os.path.dirname(root) or ".", exist_ok=True)
        base = os.path.basename(root)
        index = {"format": self.fmt, "segments": []}
        if resume_at is not None and os.path.exists(self.index_path):
            with open(self.index_path) as fh:
                index = json.load(fh)
            if index.get("format") != self.fmt:
                raise ValueError(f"series {self.index_path!r} is {index.get('format')!r}, not {self.fmt!r}")
            for seg in index["segments"]:
                seg["times"] = [t for t in seg["times"] if t <= resume_at + 1e-12 * max(1.0, abs(resume_at))]
            index["segments"] = [g for g in index["segments"] if g["times"]]
        k = len(index["segments"])
        index["segments"].append({"file": base + (f".{k}" if k else "") + ext, "times": []})
        write_json(self.index_path, index)
        return index

    def write(self, t: float) -> None:
        """Add a frame (skipped if the series already has a frame at t or later).

        Parameters
        ----------
        t : float
        """
        if self._state != "open":
            raise OSError(f"the series {self.path!r} is {self._state}; no more frames are written")
        last = [t0 for g in self.index["segments"] for t0 in g["times"]]
        if last and t <= last[-1]:
            return                              # a resumed run's first frame is already in the series
        try:
            if self.fmt == "vtx":
                collectively(self.comm, self._w.write, float(t))
            else:
                for g, f in zip(self._p1, self.functions):
                    g.interpolate(f)
                    collectively(self.comm, self._w.write_function, g, float(t))
        except Exception as e:
            self._fail()
            kept = (f"frames up to t={last[-1]:g} are listed in {self.index_path!r}" if last else
                    "no frame was written")
            raise OSError(f"writing the series {self.path!r} at t={t:g} failed: {_clean(e)}; {kept}") from None
        self.times.append(float(t))
        on_root(self.comm, write_json, self.index_path, self.index, broadcast=False)

    def close(self) -> None:
        """Close the writer (collective)."""
        if self._state != "open":
            return
        try:
            collectively(self.comm, self._w.close)
        except Exception as e:
            self._fail()
            raise OSError(f"closing the series {self.path!r} failed: {_clean(e)}") from None
        self._state = "closed"
        if not self.times and len(self.index["segments"]) > 1:    # a resumed run that added nothing
            on_root(self.comm, self._drop_empty_segment, broadcast=False)

    def _fail(self) -> None:
        self._state = "failed"
        _abandon(self._w)

    def _drop_empty_segment(self) -> None:
        import shutil

        self.index["segments"].pop()
        write_json(self.index_path, self.index)
        shutil.rmtree(self.path, ignore_errors=True) if os.path.isdir(self.path) else os.remove(self.path)
        h5 = os.path.splitext(self.path)[0] + ".h5"
        if self.fmt == "xdmf" and os.path.exists(h5):
            os.remove(h5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            try:
                self.close()
            except OSError:         # the error already on its way out is the one to report
                pass


def gather_grid(u: dolfinx.fem.Function):
    """(cells, cell_types, points, values) of u's Lagrange space gathered on rank 0 (None elsewhere)."""
    V = u.function_space
    comm = V.mesh.comm
    cells, types, x = dolfinx.plot.vtk_mesh(V)
    parts = comm.gather((cells, types, x, u.x.array.real.copy()), root=0)
    if comm.rank != 0:
        return None
    out_cells, offset = [], 0
    for c, t, p, _ in parts:
        c = c.reshape(len(t), -1).copy()
        c[:, 1:] += offset
        out_cells.append(c.ravel())
        offset += len(p)
    return (np.concatenate(out_cells), np.concatenate([p[1] for p in parts]),
            np.vstack([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))


def plot_png(u: dolfinx.fem.Function, filename: str, title: str = "", clim=None, warp: float = 0.0,
             cmap: str = "viridis", window=(900, 750), labels=("x", "y")) -> str | None:
    """A PNG of a 2D (or 1D/3D) Lagrange function, rendered off screen on rank 0.

    The mesh outline, axes with `labels`, and a colour bar. Pass the same clim to every snapshot of one run so that
    frames compare.

    Parameters
    ----------
    u : dolfinx.fem.Function
    filename : str
    title : str
    clim : (float, float), optional
        The colour range.
    warp : float
        Warp a 2D plot by u times this.
    cmap : str
    window : (int, int)
        Pixels.
    labels : (str, str)
        Axis labels.

    Returns
    -------
    str or None
        The file written, on rank 0 (None on the other ranks, or where nothing could be drawn).
    """
    g = gather_grid(u)
    if g is None:
        return None
    cells, types, x, vals = g
    if clim is None:                        # round-off negatives of a density would own the colour bar
        lo, hi = float(vals.min()), float(vals.max())
        clim = [0.0 if -1e-8 * abs(hi) < lo < 0 else lo, hi]
    ok, why = render.can_render()
    if not ok:
        render.warn_fallback(why)
        return render.matplotlib_png(cells, types, x, vals, filename, title, clim, u.name or "u")
    import pyvista

    pyvista.OFF_SCREEN = True
    grid = pyvista.UnstructuredGrid(cells, types, x)
    grid.point_data[u.name or "u"] = vals
    grid.set_active_scalars(u.name or "u")
    pl = pyvista.Plotter(off_screen=True, window_size=list(window))
    shown = grid.warp_by_scalar(factor=warp) if warp else grid
    pl.add_mesh(shown, cmap=cmap, clim=clim, show_edges=False,
                scalar_bar_args={"title": u.name or "u", "vertical": True, "fmt": "%.3g"})
    if _is_planar(x) and not warp:
        outline = grid.extract_feature_edges(boundary_edges=True, feature_edges=False, manifold_edges=False,
                                             non_manifold_edges=False)
        pl.add_mesh(outline, color="black", line_width=2)
        pl.show_bounds(xtitle=labels[0], ytitle=labels[1], ztitle="", grid=False, location="outer",
                       font_size=10, fmt="%.2g")
    return _finish(pl, filename, title, top_view=not warp and _is_planar(x))


def _finish(pl, filename: str, title: str, top_view: bool) -> str:
    """Title, camera from above (2D), screenshot to filename, close."""
    if title:
        pl.add_text(title, font_size=12)
    if top_view:
        pl.view_xy()
        pl.camera.zoom(1.25)
    os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    pl.screenshot(filename)
    pl.close()
    return filename


def _is_planar(x: np.ndarray) -> bool:
    return bool(np.allclose(x[:, 2], 0.0))


def plot_current_png(J: dolfinx.fem.Function, filename: str, title: str = "", background=None,
                     window=(900, 750)) -> str | None:
    """Streamlines of a 2D vector field J over a colour map of |J| (or of `background`), off screen."""
    g = gather_grid(J)
    bg = gather_grid(background) if background is not None else None
    if g is None:
        return None
    cells, types, x, vals = g
    ok, why = render.can_render()
    if not ok:
        render.warn_fallback(why)
        return render.matplotlib_png(cells, types, x, vals, filename, title, None, J.name or "J")
    import pyvista

    pyvista.OFF_SCREEN = True
    vec = np.zeros((len(x), 3))
    vec[:, :2] = vals.reshape(len(x), -1)[:, :2]
    grid = pyvista.UnstructuredGrid(cells, types, x)
    grid.point_data["J"] = vec
    grid.point_data["|J|"] = np.linalg.norm(vec, axis=1)
    pl = pyvista.Plotter(off_screen=True, window_size=list(window))
    if bg is not None:
        bgrid = pyvista.UnstructuredGrid(bg[0], bg[1], bg[2])
        bgrid.point_data[background.name] = bg[3]
        pl.add_mesh(bgrid, scalars=background.name, cmap="viridis",
                    scalar_bar_args={"title": background.name, "vertical": True, "fmt": "%.3g"})
    else:
        pl.add_mesh(grid, scalars="|J|", cmap="viridis", scalar_bar_args={"title": "|J|", "vertical": True, "fmt": "%.3g"})
    c = grid.center
    size = max(grid.bounds[1] - grid.bounds[0], grid.bounds[3] - grid.bounds[2])
    # streamlines from a small seed grid (the evenly-spaced 2D filter takes minutes on P2 grids)
    b = grid.bounds
    sx, sy = np.meshgrid(np.linspace(b[0], b[1], 14)[1:-1], np.linspace(b[2], b[3], 14)[1:-1])
    seeds = pyvista.PolyData(np.column_stack([sx.ravel(), sy.ravel(), np.zeros(sx.size)]))
    lines = grid.streamlines_from_source(seeds, vectors="J", integration_direction="both",
                                         max_steps=800, initial_step_length=0.2, max_step_length=0.5,
                                         terminal_speed=1e-12)
    if lines.n_points:
        pl.add_mesh(lines, color="white", line_width=1.2)
    arrows = grid.sample(pyvista.ImageData(dimensions=(16, 16, 1), origin=(b[0], b[2], 0),
                                           spacing=((b[1] - b[0]) / 15, (b[3] - b[2]) / 15, 1)))
    arrows.set_active_vectors("J")
    jmax = float(np.max(np.linalg.norm(vec, axis=1))) or 1.0
    pl.add_mesh(arrows.glyph(orient="J", scale="|J|", factor=size / 16 / jmax), color="orange")
    return _finish(pl, filename, title, top_view=True)
