"""Write fields to VTU/XDMF through meshio, for ParaView: one state, or a time series.

Point data are P1/Q1 functions (one value per vertex), cell data are DG0 functions. Files are
written to a temporary name and renamed, so an interrupted write never leaves a broken file.
A mesh distributed over several MPI ranks is gathered to rank 0, which writes the one file: the
mesh once (:class:`MeshGather`), then the fields of each call. Firedrake's parallel ``VTKFile``
would write one piece per rank instead, but needs the VTK package, which the fem-ms environment
does not install; meshio has no parallel writer.

* :func:`write_fields` — one state to ``.vtu`` or ``.xdmf``.
* :class:`TimeSeriesWriter` — states at successive times to one XDMF time series (meshio's
  ``TimeSeriesWriter``: an ``.xdmf`` file and its ``.h5`` heavy data), e.g. every step of
  :func:`fem_ms.solvers.solve_heat` through its ``callback``.
* :func:`write_time_series` — the same from arrays already on one rank (the cylinder-flow
  snapshots of :meth:`fem_ms.navier_stokes.CylinderFlow.run`).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import meshio
import numpy as np

import firedrake as fd

__all__ = ["MeshGather", "TimeSeriesWriter", "to_meshio", "write_fields", "write_time_series"]

_MESHIO_CELL = {"triangle": "triangle", "tetrahedron": "tetra",
                "quadrilateral": "quad", "hexahedron": "hexahedron"}
# Firedrake orders quad/hex vertices lexicographically (tensor product); VTK goes round the face.
_VTK_ORDER = {"quadrilateral": [0, 1, 3, 2], "hexahedron": [0, 1, 3, 2, 4, 5, 7, 6]}


class MeshGather:
    """A Firedrake P1/Q1 mesh in the global numbering of its scalar P1/Q1 DOFs, gathered to rank 0.

    Construction is collective on the mesh's ranks. Rank 0 gets ``points`` (padded to three
    coordinates) and ``cells`` (``(meshio cell type, vertex array)`` in VTK's vertex order);
    the other ranks get None for both.
    """

    def __init__(self, mesh):
        cellname = mesh.ufl_cell().cellname
        if cellname not in _MESHIO_CELL:
            raise ValueError(f"cannot export {cellname} cells")
        if mesh.coordinates.function_space().ufl_element().degree() != 1:
            raise ValueError("only affine/multilinear (degree 1) meshes can be exported")
        self.mesh = mesh
        # the vertices in the global numbering of the scalar P1/Q1 space (that of the fields)
        V = fd.FunctionSpace(mesh, "Q" if cellname in _VTK_ORDER else "CG", 1)
        X = fd.Function(fd.VectorFunctionSpace(mesh, V.ufl_element())).interpolate(fd.SpatialCoordinate(mesh))
        self._n_cells = mesh.cell_set.size  # owned cells come first in Firedrake's local numbering
        self._n_owned = V.dof_dset.size
        lgmap = V.dof_dset.lgmap
        self._owned = lgmap.apply(np.arange(self._n_owned, dtype=np.int32))
        cell_nodes = V.cell_node_map().values[:self._n_cells]
        cells = lgmap.apply(cell_nodes.ravel().astype(np.int32)).reshape(cell_nodes.shape)
        coords = np.asarray(X.dat.data_ro)[:self._n_owned]
        self.n_points = V.dim()
        gathered = mesh.comm.gather((self._owned, coords, cells), root=0)
        self._owned_by_rank = None
        self.points = self.cells = None
        if gathered is not None:
            self._owned_by_rank = [ids for ids, _, _ in gathered]
            points = np.empty((self.n_points, mesh.geometric_dimension))
            for ids, xy, _ in gathered:
                points[ids] = xy
            if points.shape[1] == 2:
                points = np.column_stack([points, np.zeros(self.n_points)])
            self.points = points
            order = _VTK_ORDER.get(cellname, slice(None))
            self.cells = [(_MESHIO_CELL[cellname], np.concatenate([c for _, _, c in gathered])[:, order])]

    def gather(self, fields: dict) -> tuple[dict, dict] | None:
        """``fields`` (name → Function on this mesh: scalar P1/Q1 or DG0) as meshio's point data and
        cell data on rank 0 (collective); None on the other ranks."""
        point_data, cell_data = {}, {}
        for name, f in fields.items():
            if not isinstance(f, fd.Function) or f.function_space().mesh() is not self.mesh:
                raise ValueError(f"field {name!r} is not a Function on this mesh")
            W = f.function_space()
            element = W.ufl_element()
            if element.degree() == 0:
                cell_data[name] = np.asarray(f.dat.data_ro_with_halos)[W.cell_node_map().values[:self._n_cells, 0]]
            elif element.degree() == 1 and element.family() in ("Lagrange", "Q") and W.value_shape == ():
                # one DOF per vertex: the same numbering as the mesh's P1/Q1 space
                point_data[name] = np.asarray(f.dat.data_ro)[:self._n_owned]
            else:
                raise ValueError(f"field {name!r}: only scalar P1/Q1 and DG0 fields can be exported")
        gathered = self.mesh.comm.gather((point_data, cell_data), root=0)
        if gathered is None:
            return None
        values = {name: np.empty(self.n_points) for name in point_data}
        for ids, (pdata, _) in zip(self._owned_by_rank, gathered):
            for name, v in pdata.items():
                values[name][ids] = v
        cdata = {name: [np.concatenate([d[name] for _, d in gathered])] for name in cell_data}
        return values, cdata


def to_meshio(mesh, **fields) -> meshio.Mesh | None:
    """A :class:`meshio.Mesh` of a Firedrake P1/Q1 mesh with the given fields attached.

    On several ranks the mesh and the fields are gathered to rank 0 (collective), which gets the
    whole mesh in the global numbering of the fields' DOFs; the other ranks get ``None``.
    """
    layout = MeshGather(mesh)
    data = layout.gather(fields)
    if data is None:
        return None
    return meshio.Mesh(layout.points, layout.cells, point_data=data[0], cell_data=data[1])


def _part(path: Path) -> Path:
    """The temporary name ``path`` is written under before the rename."""
    return path.with_name(f".{path.stem}.part{path.suffix}")


def _publish_xdmf(tmp: Path, path: Path) -> None:
    """Rename an XDMF file written as ``tmp`` and the ``.h5`` beside it to ``path`` (and its
    ``.h5``), the XDMF's references to the heavy data renamed with it; the XDMF comes last, so
    that it never names a missing file."""
    h5 = tmp.with_suffix(".h5")
    os.replace(h5, path.with_suffix(".h5"))
    tmp.write_text(tmp.read_text().replace(f"{h5.name}:", f"{path.with_suffix('.h5').name}:"))
    os.replace(tmp, path)


def write_fields(path: str | os.PathLike, mesh, **fields) -> Path:
    """Write ``fields`` (name=Function) on ``mesh`` to ``path`` (``.vtu`` or ``.xdmf``); collective
    on the mesh's ranks, rank 0 writes."""
    path = Path(path)
    if path.suffix not in (".vtu", ".xdmf"):
        raise ValueError(f"unsupported file type {path.suffix!r}: use .vtu or .xdmf")
    m = to_meshio(mesh, **fields)
    if mesh.comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _part(path)
        meshio.write(tmp, m)
        if path.suffix == ".xdmf":
            _publish_xdmf(tmp, path)
        else:
            os.replace(tmp, path)
    mesh.comm.barrier()
    return path


class _MeshioSeries(meshio.xdmf.TimeSeriesWriter):
    """meshio's XDMF time-series writer with its HDF5 file beside the XDMF file (meshio 5.3.5
    creates it in the working directory, where the XDMF's reference does not find it)."""

    def __enter__(self):
        self.h5_filename = str(self.filename.with_suffix(".h5"))
        self.h5_file = h5py.File(self.h5_filename, "w")
        return self


class _SeriesFile:
    """Rank 0's side of a time series: meshio's writer on temporary names, published on close."""

    def __init__(self, path: Path, points: np.ndarray, cells: list):
        self.path, self.tmp = path, _part(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = _MeshioSeries(self.tmp).__enter__()
        self.writer.write_points_cells(points, cells)
        self.last_time = None

    def write(self, t: float, point_data: dict, cell_data: dict) -> None:
        if self.last_time is not None and not t > self.last_time:
            raise ValueError(f"time series {self.path}: times must increase, got {t!r} after {self.last_time!r}")
        self.writer.write_data(t, point_data=point_data, cell_data=cell_data)
        self.last_time = t

    def close(self, publish: bool) -> None:
        self.writer.__exit__(None, None, None)
        if publish:
            _publish_xdmf(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
            self.tmp.with_suffix(".h5").unlink(missing_ok=True)


class TimeSeriesWriter:
    """Fields on a Firedrake mesh at successive times, to one XDMF time series for ParaView.

    Use as a context manager; every call is collective on the mesh's ranks (rank 0 writes).
    The files appear under their names (``path`` and the ``.h5`` beside it) when the block ends
    without an error; until then they are written under temporary names, removed if it fails.

    Parameters
    ----------
    path : path
        The ``.xdmf`` file.
    mesh : firedrake.MeshGeometry
        A P1/Q1 mesh (gathered to rank 0 once).

    Examples
    --------
    >>> with TimeSeriesWriter("heat.xdmf", V.mesh()) as series:          # doctest: +SKIP
    ...     solve_heat(problem, callback=lambda step, t, u: series.write(t, u=u, kappa=kappa))
    """

    def __init__(self, path: str | os.PathLike, mesh):
        self.path = Path(path)
        if self.path.suffix != ".xdmf":
            raise ValueError(f"a time series is written to an .xdmf file, got {self.path.name!r}")
        self.mesh = mesh
        self._layout = None
        self._file = None
        self._times = []

    def __enter__(self) -> TimeSeriesWriter:
        self._layout = MeshGather(self.mesh)
        if self.mesh.comm.rank == 0:
            self._file = _SeriesFile(self.path, self._layout.points, self._layout.cells)
        return self

    def write(self, t: float, **fields) -> None:
        """Add the state at time ``t`` (larger than the last): name=Function, scalar P1/Q1 or DG0."""
        if self._layout is None:
            raise RuntimeError("TimeSeriesWriter.write outside its `with` block")
        t = float(t)
        if self._times and not t > self._times[-1]:  # checked on every rank: the writes are collective
            raise ValueError(f"time series {self.path}: times must increase, got {t!r} after {self._times[-1]!r}")
        data = self._layout.gather(fields)
        if self._file is not None:
            self._file.write(t, *data)
        self._times.append(t)

    def __exit__(self, exc_type, exc, tb) -> None:
        ok = exc_type is None and bool(self._times)
        if self._file is not None:
            self._file.close(publish=ok)
        self.mesh.comm.barrier()
        if exc_type is None and not ok:
            raise ValueError(f"time series {self.path}: no state was written")


def write_time_series(path: str | os.PathLike, points, cells, times, point_data: dict | None = None) -> Path:
    """Write arrays on one mesh at several times to an XDMF time series (one process).

    Parameters
    ----------
    path : path
        The ``.xdmf`` file (its heavy data go to the ``.h5`` beside it).
    points : array (N, 2) or (N, 3)
    cells : array (cells, 3) of triangles, or (cells, 4) of tetrahedra
    times : array (T,), increasing
    point_data : dict of name → array (T, N) or (T, N, components)
    """
    path = Path(path)
    if path.suffix != ".xdmf":
        raise ValueError(f"a time series is written to an .xdmf file, got {path.name!r}")
    points, cells, times = np.asarray(points, dtype=float), np.asarray(cells), np.asarray(times, dtype=float)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"points must be (N, 2) or (N, 3), got shape {points.shape}")
    cell_type = {3: "triangle", 4: "tetra"}.get(cells.shape[1] if cells.ndim == 2 else 0)
    if cell_type is None:
        raise ValueError(f"cells must be (cells, 3) triangles or (cells, 4) tetrahedra, got shape {cells.shape}")
    if times.ndim != 1 or not len(times):
        raise ValueError(f"times must be a non-empty 1D array, got shape {times.shape}")
    point_data = dict(point_data or {})
    for name, values in point_data.items():
        if np.shape(values)[:2] != (len(times), len(points)):
            raise ValueError(f"point data {name!r} has shape {np.shape(values)}, expected ({len(times)}, "
                             f"{len(points)}, ...)")
    if points.shape[1] == 2:
        points = np.column_stack([points, np.zeros(len(points))])
    series = _SeriesFile(path, points, [(cell_type, cells)])
    ok = False
    try:
        for k, t in enumerate(times):
            series.write(float(t), {name: np.asarray(v[k]) for name, v in point_data.items()}, {})
        ok = True
    finally:
        series.close(publish=ok)
    return path
