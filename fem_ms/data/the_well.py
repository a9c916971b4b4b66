"""Export the grid datasets to The Well's HDF5 layout (PolymathicAI/the_well, docs/data_format.md),
which The Well's ``WellDataset`` and neuraloperator's ``TheWellDataset`` read.

One file per split, ``OUT/train/NAME.hdf5``, ``OUT/valid/NAME.hdf5``, ``OUT/test/NAME.hdf5``
(The Well's directory layout, with ``valid`` for our ``validation``; an empty split gets no
file), each with

* root attributes ``dataset_name``, ``grid_type`` (``"cartesian"``), ``n_spatial_dims``,
  ``n_trajectories`` (the samples of the split), ``simulation_parameters`` and one attribute per
  parameter, and the generating ``config`` and source file (provenance);
* ``dimensions``: ``time`` and one coordinate array per spatial axis (``spatial_dims``);
* ``boundary_conditions``: one group per boundary (``bc_type``, ``associated_dims``,
  ``associated_fields``, ``mask`` marking the boundary's grid points, ``values``);
* ``scalars``: the simulation parameters, constant;
* ``t0_fields`` (scalar fields), ``t1_fields`` and ``t2_fields`` (empty here): arrays
  ``(n_trajectories, [n_time,] *grid)`` with ``dim_varying``, ``sample_varying`` and
  ``time_varying``.

What is mapped, by kind:

``burgers``
    1D, ``x`` the n grid points; a trajectory of two times, 0 and ``t_end``: ``u`` (time-varying)
    is u0 then the solution; the boundary is periodic.
``multilevel`` (one resolution, ``level=n``)
    2D, ``x`` = ``y`` the n cell centres (i + ½)/n; ``kappa``, ``u`` and (when stored) ``f``, all
    constant in time, are the finite element functions' values at the cell centres, exact: κ is
    constant on a cell, u and f are Q1, whose value at a cell's centre is the mean of its four
    vertices (the dataset's (n+1)² vertex values themselves do not share κ's grid, and The Well
    puts every field on one grid). ``time`` is the single time 0 (a steady problem). The
    Dirichlet boundary is ``wall`` on both axes.
``navier_stokes_torus`` (one resolution, ``level=n``)
    2D, ``x`` = ``y`` the n grid points i/n; ``w`` (time-varying) at the snapshot times; the
    boundary is periodic; the parameter ``viscosity``.
``navier_stokes_forcing`` (one resolution, ``level=n``)
    2D, ``x`` = ``y`` the n grid points 2πi/n; a trajectory of two times, 0 and ``t_end``: ``w``
    (time-varying) is the shared w_0 then the solution, ``f`` is constant in time; periodic;
    the parameter ``viscosity``.

``darcy_notch`` (its input, the boundary data, is on the mesh's boundary, not a grid),
``cylinder_flow`` (an unstructured mesh) and ``gmsfem_basis`` (patches) are not grid datasets
and are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import yaml

from ..atomic import atomic_path, write_text_atomically
from .schema import DatasetFile

__all__ = ["WELL_KINDS", "WELL_SPLITS", "export_the_well"]

WELL_KINDS = ("burgers", "multilevel", "navier_stokes_torus", "navier_stokes_forcing")
WELL_SPLITS = {"train": "train", "validation": "valid", "test": "test"}  # ours → The Well's directories
_STRINGS = h5py.string_dtype()


def _strings(values) -> np.ndarray:
    return np.array(list(values), dtype=_STRINGS)


def _described(dset: h5py.Dataset, sample_varying: bool, time_varying: bool) -> h5py.Dataset:
    dset.attrs["sample_varying"] = sample_varying
    dset.attrs["time_varying"] = time_varying
    return dset


class _Layout:
    """What one kind's export writes: axes, times, boundaries, parameters and how to read a block
    of samples' fields (name → (samples, [time,] *grid))."""

    def __init__(self, data: DatasetFile, level: int | None):
        config = data.config
        if data.kind == "burgers":
            if level is not None:
                raise ValueError(f"{data.path}: burgers datasets have no levels (level={level!r})")
            self.name = config["name"]
            self.axes = {"x": data.read("x")}
            self.times = np.array([0.0, float(config["t_end"])])
            self.bc = ("periodic", np.empty(0))
            self.parameters = {"viscosity": float(config["viscosity"])}
            self.fields = {"u": True}  # name → time-varying

            def read(samples):
                return {"u": np.stack([data.read("u0", samples), data.read("u", samples)], axis=1)}
        elif data.kind in ("navier_stokes_torus", "navier_stokes_forcing"):
            self._vorticity(data, level)
            return
        else:  # multilevel
            if level is None:
                raise ValueError(f"{data.path}: give the level to export (level=n; levels: {data.members()})")
            data.require(level)
            self.name = f"{config['name']}_level_{level}"
            self.axes = {"x": (np.arange(level) + 0.5) / level, "y": (np.arange(level) + 0.5) / level}
            self.times = np.array([0.0])
            self.bc = ("wall", np.zeros(2))  # u = 0 at both ends of each axis
            if config.get("convention", "default") == "paper":  # one fixed a in kappa = exp(a Y), no contrast
                from ..coefficients import PAPER_CONVENTION_KAPPA_SCALE

                self.parameters = {"kappa_scale": PAPER_CONVENTION_KAPPA_SCALE, "energy": float(config["energy"])}
            else:
                self.parameters = {"contrast": float(config["contrast"]), "energy": float(config["energy"])}
            names = ["kappa", "u"] + (["f"] if data.has("f", level=level) else [])
            self.fields = dict.fromkeys(names, False)

            def centres(v):  # a Q1 function's values at the cell centres: the mean of the four corners
                return 0.25 * (v[:, :-1, :-1] + v[:, 1:, :-1] + v[:, :-1, 1:] + v[:, 1:, 1:])

            def read(samples):
                out = {name: data.read(name, samples, level=level) for name in names}
                return {name: value if name == "kappa" else centres(value) for name, value in out.items()}
        self.read = read

    def _vorticity(self, data: DatasetFile, level: int | None) -> None:
        config = data.config
        if level is None:
            raise ValueError(f"{data.path}: give the level to export (level=n; levels: {data.members()})")
        data.require(level)
        self.name = f"{config['name']}_level_{level}"
        x = data.read("x", level=level)
        self.axes = {"x": x, "y": x.copy()}
        self.bc = ("periodic", np.empty(0))
        self.parameters = {"viscosity": float(config["viscosity"])}
        if data.kind == "navier_stokes_torus":
            self.times = data.read("times")
            self.fields = {"w": True}

            def read(samples):
                return {"w": data.read("w", samples, level=level)}
        else:
            self.times = np.array([0.0, float(config["t_end"])])
            self.fields = {"w": True, "f": False}
            w0 = data.read("w0", level=level)

            def read(samples):
                w = data.read("w", samples, level=level)
                return {"w": np.stack([np.broadcast_to(w0, w.shape).astype(w.dtype), w], axis=1),
                        "f": data.read("f", samples, level=level)}
        self.read = read


def _write_split(layout: _Layout, data: DatasetFile, samples: np.ndarray, path: Path, block: int,
                 moments: _Moments | None = None) -> None:
    """One split's file, written to a temporary name beside ``path`` and renamed; ``moments``
    accumulates the statistics of the blocks written."""
    with atomic_path(path, suffix=".hdf5") as tmp, h5py.File(tmp, "w") as fh:
        _write(fh, layout, data, samples, block, moments)


def _write(fh: h5py.File, layout: _Layout, data: DatasetFile, samples: np.ndarray, block: int,
           moments: _Moments | None) -> None:
    axes = list(layout.axes)
    fh.attrs["dataset_name"] = layout.name
    fh.attrs["grid_type"] = "cartesian"
    fh.attrs["n_spatial_dims"] = len(axes)
    fh.attrs["n_trajectories"] = len(samples)
    fh.attrs["simulation_parameters"] = _strings(layout.parameters)
    for key, value in layout.parameters.items():
        fh.attrs[key] = value
    fh.attrs["config"] = json.dumps(data.config)  # provenance: what generated the samples, and where from
    fh.attrs["source"] = data.path.name  # the split's samples are its splits/NAME, in order

    dims = fh.create_group("dimensions")
    dims.attrs["spatial_dims"] = _strings(axes)
    _described(dims.create_dataset("time", data=layout.times), False, True)
    for axis, coords in layout.axes.items():
        _described(dims.create_dataset(axis, data=coords), False, False)

    bcs = fh.create_group("boundary_conditions")
    bc_type, values = layout.bc
    for axis, coords in layout.axes.items():
        group = bcs.create_group(f"{axis}_{bc_type}")
        group.attrs["associated_dims"] = _strings([axis])
        group.attrs["associated_fields"] = _strings([])
        group.attrs["bc_type"] = bc_type
        group.attrs["sample_varying"] = False
        group.attrs["time_varying"] = False
        mask = np.zeros(len(coords), dtype=bool)
        mask[[0, -1]] = True  # the boundary at both ends of the axis
        group.create_dataset("mask", data=mask)
        group.create_dataset("values", data=values)

    scalars = fh.create_group("scalars")
    scalars.attrs["field_names"] = _strings(layout.parameters)
    for key, value in layout.parameters.items():
        _described(scalars.create_dataset(key, data=value), False, False)

    grid = tuple(len(c) for c in layout.axes.values())
    t0 = fh.create_group("t0_fields")
    t0.attrs["field_names"] = _strings(layout.fields)
    for order in (1, 2):
        fh.create_group(f"t{order}_fields").attrs["field_names"] = _strings([])
    first = layout.read(samples[:1])
    dsets = {}
    for name, time_varying in layout.fields.items():
        shape = (len(samples),) + ((len(layout.times),) if time_varying else ()) + grid
        dset = t0.create_dataset(name, shape=shape, dtype=first[name].dtype,
                                 chunks=(1,) + shape[1:], compression="gzip", compression_opts=4, shuffle=True)
        dset.attrs["dim_varying"] = np.ones(len(axes), dtype=bool)
        dsets[name] = _described(dset, True, time_varying)
    for start in range(0, len(samples), block):
        values = layout.read(samples[start:start + block])
        for name, dset in dsets.items():
            dset[start:start + len(values[name])] = values[name]
        if moments is not None:
            moments.add(values)


def export_the_well(path, out_dir, level: int | None = None, block: int = 64) -> dict[str, Path]:
    """Write the dataset ``path`` in The Well's layout, one file per split (see the module
    docstring for the layout and what is mapped).

    Parameters
    ----------
    path : path
        A dataset of one of :data:`WELL_KINDS` (:func:`fem_ms.data.generate`).
    out_dir : path
        Receives ``train/``, ``valid/`` and ``test/`` (The Well's ``datasets/NAME/data``).
    level : int, optional
        The resolution of a ``multilevel`` or Navier–Stokes dataset to export (each level is its
        own dataset).
    block : int
        Samples read and written at a time (the memory used).

    Returns
    -------
    dict
        Our split name → the file written (splits without samples are left out). The training
        split's statistics go to ``stats.yaml`` beside ``out_dir`` (The Well's
        ``datasets/NAME/stats.yaml``, which neuraloperator's ``TheWellDataset`` reads as
        ``data/../stats.yaml``).
    """
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block must be a positive integer, got {block!r}")
    out_dir = Path(out_dir)
    with DatasetFile(path) as data:
        if data.kind not in WELL_KINDS:
            raise ValueError(f"{data.path} holds a {data.kind!r} dataset; The Well's layout is for grid datasets: "
                             f"{', '.join(WELL_KINDS)}")
        layout = _Layout(data, level)
        written = {}
        for split in data.split_names:
            samples = data.split(split)
            if len(samples):
                target = out_dir / WELL_SPLITS[split] / f"{layout.name}.hdf5"
                moments = _Moments(layout.fields) if split == "train" else None
                _write_split(layout, data, samples, target, block, moments)
                written[split] = target
                if moments is not None:
                    write_text_atomically(out_dir.parent / "stats.yaml", moments.yaml())
    return written


class _Moments:
    """The Well's ``stats.yaml`` of the blocks of samples :meth:`add` sees: per field ``mean``,
    ``std``, ``rms`` over samples, times and grid points, and ``mean_delta``, ``std_delta``,
    ``rms_delta`` of the differences between consecutive times (time-varying fields only).
    Accumulated in float64 as sums (the values are O(1)-scaled fields, far from cancellation)."""

    def __init__(self, fields: dict[str, bool]):
        self.sums = {name: np.zeros(3) for name in fields}  # count, sum, sum of squares
        self.deltas = {name: np.zeros(3) for name, varying in fields.items() if varying}

    def add(self, values: dict[str, np.ndarray]) -> None:
        for name, acc in self.sums.items():
            v = np.asarray(values[name], dtype=np.float64)
            acc += (v.size, v.sum(), np.square(v).sum())
            if name in self.deltas:
                d = np.diff(v, axis=1)
                self.deltas[name] += (d.size, d.sum(), np.square(d).sum())

    def yaml(self) -> str:
        stats = {key: {} for key in ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")}
        for suffix, table in (("", self.sums), ("_delta", self.deltas)):
            for name, (count, total, squares) in table.items():
                mean = total / count
                stats[f"mean{suffix}"][name] = float(mean)
                stats[f"std{suffix}"][name] = float(np.sqrt(max(squares / count - mean ** 2, 0.0)))
                stats[f"rms{suffix}"][name] = float(np.sqrt(squares / count))
        return yaml.safe_dump(stats, sort_keys=False)
