"""Mesh builders: interval, rectangle, box and disk meshes with a target cell size h, on any
communicator. All return a dolfinx Mesh of affine simplices (P1 geometry)."""

from fpjko.meshes.builders import box, cell_size, create_mesh, disk, interval, rectangle, space_time

__all__ = ["interval", "rectangle", "box", "disk", "space_time", "cell_size", "create_mesh"]
