"""Mesh builders: interval, rectangle, L-shaped, box and disk meshes with a target cell size h, on any
communicator, and the space-time cylinder of the dynamic JKO step. All return a dolfinx Mesh of affine
simplices (P1 geometry)."""

from fpjko.meshes.builders import (box, cell_size, check_space_time, create_mesh, disk, interval, l_shape,
                                   rectangle, space_time, space_time_of, unit_square, unit_square_cells)

__all__ = ["interval", "rectangle", "l_shape", "box", "disk", "space_time", "space_time_of", "check_space_time",
           "unit_square", "unit_square_cells", "cell_size", "create_mesh"]
