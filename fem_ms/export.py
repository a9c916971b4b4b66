"""Write fields to VTU/XDMF through meshio, for ParaView.

Point data are P1/Q1 functions (one value per vertex), cell data are DG0 functions. Files are
written to a temporary name and renamed, so an interrupted write never leaves a broken file.
"""

from __future__ import annotations

import os
from pathlib import Path

import meshio
import numpy as np

import firedrake as fd

__all__ = ["write_fields", "to_meshio"]

_MESHIO_CELL = {"triangle": "triangle", "tetrahedron": "tetra",
                "quadrilateral": "quad", "hexahedron": "hexahedron"}
# Firedrake orders quad/hex vertices lexicographically (tensor product); VTK goes round the face.
_VTK_ORDER = {"quadrilateral": [0, 1, 3, 2], "hexahedron": [0, 1, 3, 2, 4, 5, 7, 6]}


def to_meshio(mesh, **fields) -> meshio.Mesh:
    """A :class:`meshio.Mesh` of a serial Firedrake P1/Q1 mesh with the given fields attached."""
    if mesh.comm.size != 1:
        raise ValueError("meshio export works on serial meshes; use firedrake.VTKFile in parallel")
    cellname = mesh.ufl_cell().cellname
    if cellname not in _MESHIO_CELL:
        raise ValueError(f"cannot export {cellname} cells")
    coords = mesh.coordinates
    cell_nodes = coords.function_space().cell_node_map().values
    if cell_nodes.shape[1] != 2 ** mesh.topological_dimension and cellname in _VTK_ORDER:
        raise ValueError("only affine/multilinear (degree 1) meshes can be exported")
    points = coords.dat.data_ro.reshape(len(coords.dat.data_ro), -1)
    if points.shape[1] == 2:
        points = np.column_stack([points, np.zeros(len(points))])
    order = _VTK_ORDER.get(cellname, slice(None))
    cells = cell_nodes[:, order]
    point_data, cell_data = {}, {}
    for name, f in fields.items():
        if not isinstance(f, fd.Function) or f.function_space().mesh() is not mesh:
            raise ValueError(f"field {name!r} is not a Function on this mesh")
        V = f.function_space()
        element = V.ufl_element()
        if element.degree() == 0:
            dg0 = V.cell_node_map().values[:, 0]
            cell_data[name] = [np.asarray(f.dat.data_ro)[dg0]]
        elif element.degree() == 1 and element.family() in ("Lagrange", "Q"):
            values = np.empty(len(points))
            values[cell_nodes.ravel()] = np.asarray(f.dat.data_ro)[V.cell_node_map().values.ravel()]
            point_data[name] = values
        else:
            raise ValueError(f"field {name!r}: only P1/Q1 and DG0 fields can be exported")
    return meshio.Mesh(points, [(_MESHIO_CELL[cellname], cells)],
                       point_data=point_data, cell_data=cell_data)


def write_fields(path: str | os.PathLike, mesh, **fields) -> Path:
    """Write ``fields`` (name=Function) on ``mesh`` to ``path`` (``.vtu`` or ``.xdmf``)."""
    path = Path(path)
    if path.suffix not in (".vtu", ".xdmf"):
        raise ValueError(f"unsupported file type {path.suffix!r}: use .vtu or .xdmf")
    m = to_meshio(mesh, **fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    meshio.write(tmp, m)
    if path.suffix == ".xdmf":
        # the XDMF's heavy data sits in a sibling .h5 named after the file it was written as
        h5 = tmp.with_suffix(".h5")
        os.replace(h5, path.with_suffix(".h5"))
        text = tmp.read_text().replace(h5.name, path.with_suffix(".h5").name)
        tmp.write_text(text)
    os.replace(tmp, path)
    return path
