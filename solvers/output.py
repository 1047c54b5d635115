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
    if title:
        pl.add_text(title, font_size=12)
    if not warp and _is_planar(x):
        pl.view_xy()
        pl.camera.zoom(1.25)
    os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    pl.screenshot(filename)
    pl.close()
    return filename


def _is_planar(x: np.ndarray) -> bool:
    return bool(np.allclose(x[:, 2], 0.0))
