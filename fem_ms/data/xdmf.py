"""XDMF sidecars: ParaView opens a dataset file through ``NAME.xdmf`` beside ``NAME.h5``.

The sidecar is a small XML file whose heavy data are the dataset's own HDF5 datasets, referenced
by path (``NAME.h5:/level_64/u``) and sliced per sample with XDMF hyperslabs: nothing is copied.
Meshes stored in the file (``coordinates`` and ``cells``) are referenced as they are; structured
grids, which the file stores as axis coordinates only, get their points and cells written into
the XML (quadrilaterals, or line segments in 1D). It is written atomically when a dataset is
completed (:meth:`fem_ms.data.store.ShardStore.merge`, or by :func:`write_xdmf` for a file
made before).

What each kind shows (one temporal collection per grid; ParaView's time is the sample index,
except for the cylinder flow, where every trajectory is a collection over its snapshot times):

============== ================================= ===========================================
kind           grid                              fields
============== ================================= ===========================================
multilevel     ``level_n``: (n+1)² vertices      ``u``, ``f`` (if stored) at the vertices,
                                                 ``kappa`` on the cells
darcy_notch    ``mesh``: the triangle mesh       ``pressure`` at the vertices
               ``grid``: the G × G grid          ``pressure_grid`` (NaN outside the domain)
cylinder_flow  ``mesh_k_sample_s``: mesh M_k     ``velocity`` and ``pressure`` at the vertices
burgers        ``grid``: n points on [0, 1)      ``u0`` and ``u``
============== ================================= ===========================================

``gmsfem_basis`` files hold neighbourhood patches in their canonical orientation, no one mesh:
they get no sidecar. Fields that are not on a whole grid (``boundary_values``) or are boolean
(``grid_inside``) are left out.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..atomic import atomic_path

__all__ = ["SIDECAR_KINDS", "sidecar_path", "write_xdmf"]

SIDECAR_KINDS = ("multilevel", "darcy_notch", "cylinder_flow", "burgers")
_XINCLUDE = "http://www.w3.org/2001/XInclude"


def sidecar_path(path) -> Path:
    """The XDMF sidecar of the dataset ``path`` (``NAME.h5`` → ``NAME.xdmf``)."""
    return Path(path).with_suffix(".xdmf")


@dataclass
class _Grid:
    """One grid of a sidecar: geometry and topology (as ``(xdmf topology type, nodes per cell)``
    and XML elements), the fields on it (name, HDF5 path, center) and the times."""

    name: str
    topology: tuple
    geometry: ET.Element
    cells: ET.Element
    n_cells: int
    fields: list = field(default_factory=list)  # (name, hdf5 path, "Node" | "Cell", "Scalar" | "Vector")
    inline: bool = False  # geometry written into the XML: share it between steps by XInclude


def _number_type(dtype: np.dtype) -> dict:
    kind = {"f": "Float", "i": "Int", "u": "UInt"}.get(dtype.kind)
    if kind is None:
        raise ValueError(f"XDMF cannot describe {dtype} data")
    return {"NumberType": kind, "Precision": str(dtype.itemsize)}


def _xml_item(array: np.ndarray) -> ET.Element:
    """A DataItem holding ``array`` in the XML itself."""
    array = np.asarray(array)
    buffer = io.StringIO()
    np.savetxt(buffer, array.reshape(len(array), -1), fmt="%d" if array.dtype.kind in "iu" else "%.17g")
    item = ET.Element("DataItem", Dimensions=" ".join(map(str, array.shape)), Format="XML",
                      **_number_type(array.dtype))
    item.text = buffer.getvalue()
    return item


def _hdf_item(h5_name: str, dset: h5py.Dataset) -> ET.Element:
    """A DataItem referencing a whole HDF5 dataset by path."""
    item = ET.Element("DataItem", Dimensions=" ".join(map(str, dset.shape)), Format="HDF",
                      **_number_type(dset.dtype))
    item.text = f"{h5_name}:{dset.name}"
    return item


def _slab(h5_name: str, dset: h5py.Dataset, index: tuple) -> ET.Element:
    """A hyperslab of ``dset``: the leading indices ``index`` fixed, all of the other axes."""
    start = list(index) + [0] * (dset.ndim - len(index))
    count = [1] * len(index) + list(dset.shape[len(index):])
    slab = ET.Element("DataItem", ItemType="HyperSlab", Dimensions=" ".join(map(str, count)), Type="HyperSlab")
    selection = np.array([start, [1] * dset.ndim, count], dtype=np.int64)
    slab.append(_xml_item(selection))
    slab.append(_hdf_item(h5_name, dset))
    return slab


def _structured(name: str, axis: np.ndarray) -> _Grid:
    """The square grid axis × axis: points (x_i, y_j) numbered i (n+1) + j, the quadrilateral
    cell (i, j) numbered i n + j, counter-clockwise — the layout of the files' [i, j] arrays."""
    m = len(axis)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    points = np.column_stack([x.ravel(), y.ravel()])
    i, j = np.meshgrid(np.arange(m - 1), np.arange(m - 1), indexing="ij")
    v = (i * m + j).ravel()
    quads = np.column_stack([v, v + m, v + m + 1, v + 1]).astype(np.int64)
    geometry = ET.Element("Geometry", GeometryType="XY")
    geometry.append(_xml_item(points))
    cells = _xml_item(quads)
    return _Grid(name, ("Quadrilateral", 4), geometry, cells, len(quads), inline=True)


def _line(name: str, axis: np.ndarray) -> _Grid:
    points = np.column_stack([axis, np.zeros_like(axis)])
    segments = np.column_stack([np.arange(len(axis) - 1), np.arange(1, len(axis))]).astype(np.int64)
    geometry = ET.Element("Geometry", GeometryType="XY")
    geometry.append(_xml_item(points))
    return _Grid(name, ("Polyline", 2), geometry, _xml_item(segments), len(segments), inline=True)


def _mesh(name: str, h5_name: str, fh: h5py.File, group: str) -> _Grid:
    prefix = f"{group}/" if group else ""
    geometry = ET.Element("Geometry", GeometryType="XY")
    geometry.append(_hdf_item(h5_name, fh[f"{prefix}coordinates"]))
    cells = fh[f"{prefix}cells"]
    return _Grid(name, ("Triangle", 3), geometry, _hdf_item(h5_name, cells), cells.shape[0])


def _step(grid: _Grid, k: int, collection: str) -> ET.Element:
    """Step ``k`` of a temporal collection: the geometry, or an XInclude of the collection's first
    step's geometry when it is written into the XML."""
    step = ET.Element("Grid", Name=f"{collection}_{k}", GridType="Uniform")
    if k == 0 or not grid.inline:
        topology_type, per_cell = grid.topology
        topology = ET.SubElement(step, "Topology", TopologyType=topology_type, NumberOfElements=str(grid.n_cells),
                                 NodesPerElement=str(per_cell))
        topology.append(grid.cells)
        step.append(grid.geometry)
    else:
        pointer = f'xpointer(//Grid[@Name="{collection}"]/Grid[1]/*[self::Topology or self::Geometry])'
        ET.SubElement(step, f"{{{_XINCLUDE}}}include", xpointer=pointer)
    return step


def _collection(domain: ET.Element, name: str, grid: _Grid, h5_name: str, fh: h5py.File, steps) -> None:
    """A temporal collection of ``grid``: per (time value, leading index) of ``steps``, the grid's
    fields at that index."""
    collection = ET.SubElement(domain, "Grid", Name=name, GridType="Collection", CollectionType="Temporal")
    for k, (time, index) in enumerate(steps):
        step = _step(grid, k, name)
        ET.SubElement(step, "Time", Value=repr(float(time)))
        for field_name, path, center, kind in grid.fields:
            attribute = ET.SubElement(step, "Attribute", Name=field_name, AttributeType=kind, Center=center)
            attribute.append(_slab(h5_name, fh[path], index))
        collection.append(step)


def _sample_steps(samples):
    return [(s, (s,)) for s in samples]


def _build(fh: h5py.File, h5_name: str, kind: str, samples) -> ET.Element:
    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain")
    if kind == "multilevel":
        levels = sorted(int(g.split("_")[1]) for g in fh if g.startswith("level_"))
        for n in levels:
            grid = _structured(f"level_{n}", fh[f"level_{n}/x"][()])
            grid.fields = [(name, f"level_{n}/{name}", "Node", "Scalar") for name in ("u", "f")
                           if f"level_{n}/{name}" in fh]
            grid.fields.append(("kappa", f"level_{n}/kappa", "Cell", "Scalar"))
            _collection(domain, grid.name, grid, h5_name, fh, _sample_steps(samples))
    elif kind == "darcy_notch":
        mesh = _mesh("mesh", h5_name, fh, "")
        mesh.fields = [("pressure", "pressure", "Node", "Scalar")]
        _collection(domain, "mesh", mesh, h5_name, fh, _sample_steps(samples))
        grid = _structured("grid", fh["grid_x"][()])
        grid.fields = [("pressure_grid", "pressure_grid", "Node", "Scalar")]
        _collection(domain, "grid", grid, h5_name, fh, _sample_steps(samples))
    elif kind == "cylinder_flow":
        times = fh["times"][()]
        meshes = sorted(int(g.split("_")[1]) for g in fh if g.startswith("mesh_"))
        for k in meshes:
            mesh = _mesh(f"mesh_{k}", h5_name, fh, f"mesh_{k}")
            mesh.fields = [("velocity", f"mesh_{k}/velocity", "Node", "Vector"),
                           ("pressure", f"mesh_{k}/pressure", "Node", "Scalar")]
            for s in samples:
                steps = [(t, (s, i)) for i, t in enumerate(times)]
                _collection(domain, f"mesh_{k}_sample_{s}", mesh, h5_name, fh, steps)
    elif kind == "burgers":
        grid = _line("grid", fh["x"][()])
        grid.fields = [("u0", "u0", "Node", "Scalar"), ("u", "u", "Node", "Scalar")]
        _collection(domain, "grid", grid, h5_name, fh, _sample_steps(samples))
    return root


def write_xdmf(path, samples=None) -> Path | None:
    """Write the XDMF sidecar of the dataset file ``path`` beside it (atomically).

    Parameters
    ----------
    path : path
        A dataset written by :func:`fem_ms.data.generate` (``NAME.h5``).
    samples : iterable of int, optional
        The samples to show (default: all). The XML grows by about a kilobyte per sample and
        grid (per snapshot for the cylinder flow).

    Returns
    -------
    pathlib.Path or None
        ``NAME.xdmf``, or None for a kind without a mesh (``gmsfem_basis``).
    """
    path = Path(path)
    with h5py.File(path, "r") as fh:
        kind = str(fh.attrs.get("kind", ""))
        if not kind:
            raise ValueError(f"{path} is not a fem-ms dataset (it has no 'kind' attribute)")
        if kind not in SIDECAR_KINDS:
            return None
        n_samples = int(json.loads(fh.attrs["config"])["samples"])
        samples = range(n_samples) if samples is None else [int(s) for s in samples]
        bad = [s for s in samples if not 0 <= s < n_samples]
        if bad:
            raise ValueError(f"{path} has samples 0 to {n_samples - 1}, not {bad[:5]}")
        root = _build(fh, path.name, kind, samples)
    ET.register_namespace("xi", _XINCLUDE)  # declared on the root where a step includes another's geometry
    target = sidecar_path(path)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        ET.ElementTree(root).write(fh, xml_declaration=True, encoding="utf-8")
    return target
