"""Time series for ParaView (VTX .bp or XDMF .xdmf) and PNG snapshots through pyvista off screen."""

from __future__ import annotations

import os

import dolfinx.fem
import dolfinx.io
import dolfinx.plot
import numpy as np


class SeriesWriter:
    """Writes Functions at given times. fmt 'vtx' (any Lagrange degree; needs ADIOS2) or 'xdmf'
    (interpolated to P1, the mesh's geometry degree); 'auto' picks VTX where dolfinx has ADIOS2."""

    def __init__(self, path: str, functions: list, fmt: str = "auto"):
        self.functions = list(functions)
        msh = self.functions[0].function_space.mesh
        if fmt == "auto":
            fmt = "vtx" if dolfinx.common.has_adios2 else "xdmf"
        if fmt not in ("vtx", "xdmf"):
            raise ValueError(f"fmt must be 'vtx', 'xdmf' or 'auto', got fmt={fmt!r}")
        self.fmt = fmt
        root, _ = os.path.splitext(os.fspath(path))
        if msh.comm.rank == 0:
            os.makedirs(os.path.dirname(root) or ".", exist_ok=True)
        msh.comm.barrier()
        if fmt == "vtx":
            self.path = root + ".bp"
            self._w = dolfinx.io.VTXWriter(msh.comm, self.path, self.functions, engine="BP4")
        else:
            self.path = root + ".xdmf"
            V1 = dolfinx.fem.functionspace(msh, ("Lagrange", 1))
            self._p1 = [dolfinx.fem.Function(V1, name=f.name) for f in self.functions]
            self._w = dolfinx.io.XDMFFile(msh.comm, self.path, "w")
            self._w.write_mesh(msh)

    def write(self, t: float) -> None:
        if self.fmt == "vtx":
            self._w.write(t)
        else:
            for g, f in zip(self._p1, self.functions):
                g.interpolate(f)
                self._w.write_function(g, t)

    def close(self) -> None:
        self._w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
             cmap: str = "viridis", window=(900, 750)) -> str | None:
    """A PNG of a 2D (or 1D/3D) Lagrange function, rendered off screen on rank 0."""
    g = gather_grid(u)
    if g is None:
        return None
    import pyvista

    pyvista.OFF_SCREEN = True
    cells, types, x, vals = g
    if clim is None:                        # round-off negatives of a density would own the colour bar
        lo, hi = float(vals.min()), float(vals.max())
        clim = [0.0 if -1e-8 * abs(hi) < lo < 0 else lo, hi]
    grid = pyvista.UnstructuredGrid(cells, types, x)
    grid.point_data[u.name or "u"] = vals
    grid.set_active_scalars(u.name or "u")
    pl = pyvista.Plotter(off_screen=True, window_size=list(window))
    shown = grid.warp_by_scalar(factor=warp) if warp else grid
    pl.add_mesh(shown, cmap=cmap, clim=clim, show_edges=False,
                scalar_bar_args={"title": u.name or "u", "vertical": True, "fmt": "%.3g"})
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
    import pyvista

    pyvista.OFF_SCREEN = True
    cells, types, x, vals = g
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
