"""Write fields to VTU/XDMF through meshio, for ParaView.

Point data are P1/Q1 functions (one value per vertex), cell data are DG0 functions. Files are
written to a temporary name and renamed, so an interrupted write never leaves a broken file.
A mesh distributed over several MPI ranks is gathered to rank 0, which writes the one file
(meshio has no parallel writer; Firedrake's ``VTKFile`` would need the VTK package).
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


def to_meshio(mesh, **fields) -> meshio.Mesh | None:
    """A :class:`meshio.Mesh` of a Firedrake P1/Q1 mesh with the given fields attached.

    On several ranks the mesh and the fields are gathered to rank 0 (collective), which gets the
    whole mesh in the global numbering of the fields' DOFs; the other ranks get ``None``.
    """
    comm = mesh.comm
    cellname = mesh.ufl_cell().cellname
    if cellname not in _MESHIO_CELL:
        raise ValueError(f"cannot export {cellname} cells")
    if mesh.coordinates.function_space().ufl_element().degree() != 1:
        raise ValueError("only affine/multilinear (degree 1) meshes can be exported")
    # the vertices in the global numbering of the scalar P1/Q1 space (that of the fields)
    V = fd.FunctionSpace(mesh, "Q" if cellname in _VTK_ORDER else "CG", 1)
    X = fd.Function(fd.VectorFunctionSpace(mesh, V.ufl_element())).interpolate(fd.SpatialCoordinate(mesh))
    n_cells = mesh.cell_set.size  # owned cells come first in Firedrake's local numbering
    lgmap = V.dof_dset.lgmap
    n_owned = V.dof_dset.size
    owned = lgmap.apply(np.arange(n_owned, dtype=np.int32))
    coords = np.asarray(X.dat.data_ro)[:n_owned]
    cell_nodes = V.cell_node_map().values[:n_cells]
    cells = lgmap.apply(cell_nodes.ravel().astype(np.int32)).reshape(cell_nodes.shape)
    point_data, cell_data = {}, {}
    for name, f in fields.items():
        if not isinstance(f, fd.Function) or f.function_space().mesh() is not mesh:
            raise ValueError(f"field {name!r} is not a Function on this mesh")
        W = f.function_space()
        element = W.ufl_element()
        if element.degree() == 0:
            cell_data[name] = np.asarray(f.dat.data_ro_with_halos)[W.cell_node_map().values[:n_cells, 0]]
        elif element.degree() == 1 and element.family() in ("Lagrange", "Q") and W.value_shape == ():
            # one DOF per vertex: the same numbering as V's
            point_data[name] = np.asarray(f.dat.data_ro)[:n_owned]
        else:
            raise ValueError(f"field {name!r}: only scalar P1/Q1 and DG0 fields can be exported")
    gathered = comm.gather((owned, coords, cells, point_data, cell_data), root=0)
    if comm.rank != 0:
        return None
    n_points = V.dim()
    points = np.empty((n_points, mesh.geometric_dimension))
    values = {name: np.empty(n_points) for name in point_data}
    for ids, xy, _, pdata, _ in gathered:
        points[ids] = xy
        for name, v in pdata.items():
            values[name][ids] = v
    if points.shape[1] == 2:
        points = np.column_stack([points, np.zeros(n_points)])
    order = _VTK_ORDER.get(cellname, slice(None))
    all_cells = np.concatenate([c for _, _, c, _, _ in gathered])[:, order]
    cdata = {name: [np.concatenate([d[name] for *_, d in gathered])] for name in cell_data}
    return meshio.Mesh(points, [(_MESHIO_CELL[cellname], all_cells)], point_data=values, cell_data=cdata)


def write_fields(path: str | os.PathLike, mesh, **fields) -> Path:
    """Write ``fields`` (name=Function) on ``mesh`` to ``path`` (``.vtu`` or ``.xdmf``); collective
    on the mesh's ranks, rank 0 writes."""
    path = Path(path)
    if path.suffix not in (".vtu", ".xdmf"):
        raise ValueError(f"unsupported file type {path.suffix!r}: use .vtu or .xdmf")
    m = to_meshio(mesh, **fields)
    if mesh.comm.rank == 0:
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
    mesh.comm.barrier()
    return path
