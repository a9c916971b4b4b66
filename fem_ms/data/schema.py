"""The layout of every dataset file, in one place: names, shapes, dtypes, meanings, and a reader.

Each dataset kind (``gmsfem_basis``, ``multilevel``, ``cylinder_flow``, ``darcy_notch``,
``burgers``, ``navier_stokes_torus``, ``navier_stokes_forcing``, ``shallow_water_sphere``) is a
:class:`Schema`: the fields of the file (``Field``: name, symbolic shape, axis names, where the
values live, units, meaning, dtype), and at most one family of groups (``Group``: the patch
kinds, the levels, the meshes) holding the same fields once per member.
The writer (:mod:`fem_ms.data.store`) creates every dataset through :func:`create_dataset`,
so a file cannot hold a dataset the schema does not declare, and every dataset carries its
description; the plugin's torch Datasets and loaders read through :class:`DatasetFile`.

Files describe themselves, after The Well's conventions (``PolymathicAI/the_well``,
docs/data_format.md): the root has ``format_version``, ``kind``, ``dataset_name``,
``n_samples`` and the generating ``config``; every dataset has its axis names as HDF5
dimension labels and the attributes ``location`` (what the values are attached to, one of
:data:`LOCATIONS`), ``units``, ``description``, ``sample_varying`` and ``time_varying``.
Every dataset is stored with HDF5's fletcher32 checksum, so that a damaged file raises
:class:`CorruptDatasetError` naming the file and the dataset instead of returning changed
numbers.

Format versions: 1 — files written before the version was recorded (same layout, splits
``train`` and ``test`` only, no descriptions, no checksums); they are still read. 2 — this
layout.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

__all__ = ["FORMAT_VERSION", "LOCATIONS", "SPLITS", "SCHEMAS", "CorruptDatasetError", "DatasetFile", "Field",
           "Group", "Schema", "create_dataset", "schema_of", "split_rows", "write_header"]

FORMAT_VERSION = 2
OLDEST_READABLE = 1
LOCATIONS = ("cells", "vertices", "edges", "points", "times", "global")
SPLITS = ("train", "validation", "test")
_REGENERATE = "regenerate it with `fem-ms generate CONFIG --overwrite` (its config is the file's `config` attribute)"


class CorruptDatasetError(OSError):
    """A dataset of a file fails its checksum or cannot be read."""


@dataclass(frozen=True)
class Field:
    """One dataset of a kind.

    Parameters
    ----------
    name : str
        Its name (inside its group, if the kind has groups).
    shape : str
        The shape in the symbols of docs/datasets.md, e.g. ``"(S, n+1, n+1)"``.
    axes : tuple of str
        One name per array axis; ``"*grid"`` stands for the spatial axes of a patch grid
        (two or three, from the array's number of dimensions).
    location : str
        What one value is attached to: one of :data:`LOCATIONS`.
    units : str
    description : str
    dtype : str
        ``"float"`` (the config's ``storage_dtype``), ``"float64"``, ``"int"`` (any integer
        type) or ``"bool"``.
    sample_varying : bool
        The first axis is the sample (The Well's ``sample_varying``).
    time_varying : bool
        An axis is the snapshot time (The Well's ``time_varying``).
    condition : str
        When the dataset is present only under a condition, the condition; else ``""``.
    """

    name: str
    shape: str
    axes: tuple
    location: str
    units: str
    description: str
    dtype: str = "float"
    sample_varying: bool = True
    time_varying: bool = False
    condition: str = ""

    def __post_init__(self):
        if self.location not in LOCATIONS:
            raise ValueError(f"field {self.name!r}: location must be one of {LOCATIONS}, got {self.location!r}")
        if self.dtype not in ("float", "float64", "int", "bool"):
            raise ValueError(f"field {self.name!r}: unknown dtype {self.dtype!r}")

    def axis_names(self, ndim: int) -> tuple[str, ...]:
        """The axis names of an array of ``ndim`` dimensions, ``*grid`` expanded."""
        names = self.axes
        if "*grid" in self.axes:
            k = self.axes.index("*grid")
            spatial = ndim - len(self.axes) + 1
            names = self.axes[:k] + ("i", "j", "k")[:spatial] + self.axes[k + 1:] if spatial in (2, 3) else ()
        if len(names) != ndim:
            raise ValueError(f"field {self.name!r} has axes {self.axes}, not {ndim} dimensions")
        return names

    def stored_dtype(self, array_dtype: np.dtype, storage: str) -> np.dtype:
        """The dtype this field is stored with, given the array's dtype and the config's
        ``storage_dtype``; an array of another kind of type is refused."""
        kinds = {"float": "f", "float64": "f", "int": "iu", "bool": "b"}[self.dtype]
        if np.dtype(array_dtype).kind not in kinds:
            raise TypeError(f"field {self.name!r} is declared {self.dtype}, got an array of {np.dtype(array_dtype)}")
        if self.dtype == "float":
            return np.dtype(storage)
        if self.dtype == "float64":
            return np.dtype(np.float64)
        return np.dtype(array_dtype)


@dataclass(frozen=True)
class Group:
    """A family of HDF5 groups holding the same fields once per member.

    Parameters
    ----------
    key : str
        The keyword that selects a member in :meth:`DatasetFile.read` (``level=64``).
    template : str
        The group name of a member, e.g. ``"level_{}"``.
    symbol : str
        The member in docs/datasets.md (``level_n``).
    label, plural : str
        How error messages name a member and the members.
    members : tuple, optional
        The possible members when they are a fixed set of names (patch kinds); otherwise the
        members are integers parsed from the group names.
    """

    key: str
    template: str
    symbol: str
    label: str
    plural: str
    members: tuple = ()

    def name(self, member) -> str:
        """The HDF5 group name of ``member`` (the template filled in)."""
        return self.template.format(member)

    def member(self, group_name: str):
        """The member a group name stands for, or None when it is not one of this family."""
        if self.members:
            return group_name if group_name in self.members else None
        prefix = self.template.split("{}")[0]
        rest = group_name[len(prefix):]
        return int(rest) if group_name.startswith(prefix) and rest.isdigit() else None


@dataclass(frozen=True)
class Schema:
    """The layout of one dataset kind: ``fields`` at the root, ``group_fields`` once per member
    of ``group``; every kind also has the splits (:data:`SPLITS`)."""

    kind: str
    fields: tuple
    group: Group | None = None
    group_fields: tuple = ()

    def __post_init__(self):
        names = [f.name for f in self.fields + self.group_fields]
        if len(set(names)) != len(names):  # a field is found by its name alone
            raise ValueError(f"schema {self.kind!r}: field names repeat: {names}")

    def field(self, name: str) -> Field:
        """The field called ``name``; KeyError naming the schema's fields if there is none."""
        for f in self.fields + self.group_fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.kind!r} datasets have no field {name!r}; fields: "
                       f"{[f.name for f in self.fields + self.group_fields]}")

    def in_group(self, name: str) -> bool:
        """Whether ``name`` is stored once per group member (e.g. per level) rather than once per file."""
        return any(f.name == name for f in self.group_fields)

    def path(self, name: str, member=None) -> str:
        """The HDF5 path of field ``name`` (of group ``member`` for a group field)."""
        if not self.in_group(name):
            self.field(name)
            return name
        if member is None:
            raise ValueError(f"{self.kind!r} field {name!r} lives in one group per {self.group.label}: "
                             f"give {self.group.key}=")
        return f"{self.group.name(member)}/{name}"

    def resolve(self, path: str) -> Field:
        """The field an HDF5 path stands for; a path the schema does not declare is refused."""
        if path.startswith("splits/") and path.split("/", 1)[1] in SPLITS:
            return _SPLIT_FIELD
        head, _, tail = path.rpartition("/")
        if not head and any(f.name == tail for f in self.fields):
            return self.field(tail)
        if head and self.group is not None and self.group.member(head) is not None and self.in_group(tail):
            return self.field(tail)
        raise KeyError(f"{path!r} is not a dataset of the {self.kind!r} schema (fem_ms.data.schema)")

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """One (dataset, shape, axes, location, units, description) row per field, as the
        tables of docs/datasets.md show them."""
        return [_row(f"{self.group.name(self.group.symbol)}/{f.name}" if f in self.group_fields else f.name, f)
                for f in self.fields + self.group_fields]


def _row(path: str, field: Field) -> tuple[str, str, str, str, str, str]:
    description = field.description + (f" ({field.condition} only)" if field.condition else "")
    return f"`{path}`", field.shape, ", ".join(field.axes), field.location, field.units, description


def split_rows() -> list[tuple[str, str, str, str, str, str]]:
    """The rows of the splits, which every kind has (see :meth:`Schema.rows`)."""
    return [_row(f"splits/{name}", _SPLIT_FIELD) for name in SPLITS]


_SPLIT_FIELD = Field("splits", "(count,)", ("sample",), "global", "index",
                     "the indices of the split's samples, increasing", dtype="int", sample_varying=False)

SCHEMAS = {s.kind: s for s in (
    Schema("gmsfem_basis",
           fields=(Field("kappa_seed", "(S,)", ("sample",), "global", "index",
                         "the seed κ of the sample was drawn from", dtype="int"),),
           group=Group("patch_kind", "{}", "K", "patch kind", "patch kinds",
                       members=("full", "half", "quarter", "corner")),
           group_fields=(
               Field("kappa", "(S, P_K, *C)", ("sample", "patch", "*grid"), "cells", "dimensionless",
                     "κ on the patch's fine cells"),
               Field("basis", "(S, P_K, N_bf, *(C+1))", ("sample", "patch", "basis", "*grid"), "vertices",
                     "dimensionless", "the SLEPc eigenvectors φ_j of A_i φ = λ S_i φ at the patch vertices, "
                     "S_i-orthonormal, largest entry positive"),
               Field("eigenvalues", "(S, P_K, N_bf)", ("sample", "patch", "basis"), "global", "dimensionless",
                     "λ_j, ascending (λ_1 = 0)"),
               Field("chi", "(P_K, *(C+1))", ("patch", "*grid"), "vertices", "dimensionless",
                     "the partition-of-unity function χ_i on the patch", dtype="float64", sample_varying=False),
               Field("vertex_index", "(P_K,)", ("patch",), "global", "index",
                     "the coarse vertex x_i of the patch (its coarse P1/Q1 DOF)", dtype="int", sample_varying=False),
               Field("vertex", "(P_K, dim)", ("patch", "component"), "global", "dimensionless",
                     "the coordinates of x_i", dtype="float64", sample_varying=False),
               Field("perm", "(P_K, dim)", ("patch", "component"), "global", "index",
                     "the canonical transform's axis order: physical patch array `a` → "
                     "`transpose(flip(a, axes where flips), perm)`", dtype="int", sample_varying=False),
               Field("flips", "(P_K, dim)", ("patch", "component"), "global", "boolean",
                     "the canonical transform's flipped axes", dtype="bool", sample_varying=False),
           )),
    Schema("multilevel",
           fields=(Field("kappa_seed", "(S,)", ("sample",), "global", "index",
                         "the seed κ of the sample was drawn from", dtype="int"),),
           group=Group("level", "level_{}", "n", "level", "levels"),
           group_fields=(
               Field("kappa", "(S, n, n)", ("sample", "x", "y"), "cells", "dimensionless",
                     "κ on the level's cells, [i, j] = cell i along x, j along y"),
               Field("u", "(S, n+1, n+1)", ("sample", "x", "y"), "vertices", "dimensionless",
                     "the Q1 solution at the vertices (i/n, j/n)"),
               Field("f", "(S, n+1, n+1)", ("sample", "x", "y"), "vertices", "dimensionless",
                     "the forcing at the vertices", condition='`forcing = "random"`'),
               Field("x", "(n+1,)", ("x",), "vertices", "dimensionless", "vertex coordinates along each axis",
                     dtype="float64", sample_varying=False),
           )),
    Schema("cylinder_flow",
           fields=(
               Field("inflow_coefficients", "(S, modes)", ("sample", "mode"), "global", "dimensionless",
                     "the c_k of each trajectory (drawn from seed + 2s + 1)"),
               Field("times", "(T,)", ("time",), "times", "dimensionless", "snapshot times", dtype="float64",
                     sample_varying=False, time_varying=True),
           ),
           group=Group("mesh", "mesh_{}", "k", "mesh", "meshes"),
           group_fields=(
               Field("coordinates", "(N_k, 2)", ("vertex", "component"), "vertices", "dimensionless",
                     "vertex coordinates of mesh M_k", dtype="float64", sample_varying=False),
               Field("cells", "(cells, 3)", ("cell", "corner"), "cells", "index", "triangles (vertex indices)",
                     dtype="int", sample_varying=False),
               Field("edges", "(E_k, 2)", ("edge", "end"), "edges", "index",
                     "unique mesh edges i < j (graph connectivity)", dtype="int", sample_varying=False),
               Field("velocity", "(S, T, N_k, 2)", ("sample", "time", "vertex", "component"), "vertices",
                     "dimensionless", "velocity at the vertices (the P2 field's nodal values)", time_varying=True),
               Field("pressure", "(S, T, N_k)", ("sample", "time", "vertex"), "vertices", "dimensionless",
                     "pressure at the vertices", time_varying=True),
           )),
    Schema("darcy_notch", fields=(
        Field("coordinates", "(N, 2)", ("vertex", "component"), "vertices", "dimensionless", "the mesh's vertices",
              dtype="float64", sample_varying=False),
        Field("cells", "(cells, 3)", ("cell", "corner"), "cells", "index", "the mesh's triangles (vertex indices)",
              dtype="int", sample_varying=False),
        Field("boundary_nodes", "(B,)", ("boundary_vertex",), "vertices", "index",
              "indices of the vertices on the boundary", dtype="int", sample_varying=False),
        Field("boundary_values", "(S, B)", ("sample", "boundary_vertex"), "vertices", "dimensionless",
              "g at those vertices (the input)"),
        Field("pressure", "(S, N)", ("sample", "vertex"), "vertices", "dimensionless", "u at the vertices"),
        Field("pressure_grid", "(S, G, G)", ("sample", "x", "y"), "points", "dimensionless",
              "u at the grid points (grid_x[i], grid_x[j]); NaN outside the domain"),
        Field("grid_inside", "(G, G)", ("x", "y"), "points", "boolean", "the grid points inside the domain",
              dtype="bool", sample_varying=False),
        Field("grid_x", "(G,)", ("x",), "points", "dimensionless", "the grid coordinates along each axis",
              dtype="float64", sample_varying=False),
    )),
    Schema("burgers", fields=(
        Field("u0", "(S, n)", ("sample", "x"), "points", "dimensionless", "initial condition at x_j = j/n (the input)"),
        Field("u", "(S, n)", ("sample", "x"), "points", "dimensionless", "solution at t_end (the output)"),
        Field("x", "(n,)", ("x",), "points", "dimensionless", "grid points", dtype="float64", sample_varying=False),
    )),
    Schema("wave_advection", fields=(
        Field("u0", "(S, n)", ("sample", "x"), "points", "dimensionless", "initial condition at x_j = j/n (the input)"),
        Field("u", "(S, n)", ("sample", "x"), "points", "dimensionless",
              "exact solution u0(x - speed t_end) (the output)"),
        Field("parameters", "(S, 3)", ("sample", "parameter"), "global", "dimensionless",
              "the centre c, width w and height h of u0"),
        Field("x", "(n,)", ("x",), "points", "dimensionless", "grid points", dtype="float64", sample_varying=False),
    )),
    Schema("navier_stokes_torus",
           fields=(
               Field("initial_seed", "(S,)", ("sample",), "global", "index", "the seed w_0 was drawn from",
                     dtype="int"),
               Field("times", "(T,)", ("time",), "times", "dimensionless", "snapshot times 0, snapshot_dt, …, t_end",
                     dtype="float64", sample_varying=False, time_varying=True),
           ),
           group=Group("level", "level_{}", "n", "level", "levels"),
           group_fields=(
               Field("w", "(S, T, n, n)", ("sample", "time", "x", "y"), "points", "dimensionless",
                     "vorticity at the grid points (i/n, j/n) at each snapshot time (w[:, 0] = w_0)",
                     time_varying=True),
               Field("f", "(n, n)", ("x", "y"), "points", "dimensionless", "the forcing at the grid points",
                     dtype="float64", sample_varying=False),
               Field("x", "(n,)", ("x",), "points", "dimensionless", "grid coordinates i/n along each axis",
                     dtype="float64", sample_varying=False),
           )),
    Schema("navier_stokes_forcing",
           fields=(Field("forcing_seed", "(S,)", ("sample",), "global", "index", "the seed f was drawn from",
                         dtype="int"),),
           group=Group("level", "level_{}", "n", "level", "levels"),
           group_fields=(
               Field("f", "(S, n, n)", ("sample", "x", "y"), "points", "dimensionless",
                     "the forcing at the grid points (2πi/n, 2πj/n) (the input)"),
               Field("w", "(S, n, n)", ("sample", "x", "y"), "points", "dimensionless",
                     "the vorticity at t_end at the grid points (the output)"),
               Field("w0", "(n, n)", ("x", "y"), "points", "dimensionless",
                     "the initial vorticity, the same for every sample", dtype="float64", sample_varying=False),
               Field("x", "(n,)", ("x",), "points", "dimensionless", "grid coordinates 2πi/n along each axis",
                     dtype="float64", sample_varying=False),
           )),
    Schema("shallow_water_sphere",
           fields=(Field("ic_seed", "(S,)", ("sample",), "global", "index",
                         "the seed the initial state of the sample was drawn from", dtype="int"),),
           group=Group("grid", "nlat_{}", "n", "grid", "grids"),
           group_fields=(
               Field("state0", "(S, 3, n, 2n)", ("sample", "variable", "lat", "lon"), "points", "dimensionless",
                     "the initial state (the input): geopotential anomaly (φ − g H)/(g h_amp), vorticity and "
                     "divergence × R/sqrt(g H), at the points (lat[i], lon[j])"),
               Field("state", "(S, 3, n, 2n)", ("sample", "variable", "lat", "lon"), "points", "dimensionless",
                     "the state lead_time later (the output), same variables and units"),
               Field("lat", "(n,)", ("lat",), "points", "radian", "latitudes of the equiangular grid, north to "
                     "south (the poles included)", dtype="float64", sample_varying=False),
               Field("lon", "(2n,)", ("lon",), "points", "radian", "longitudes 2πj/(2n)", dtype="float64",
                     sample_varying=False),
               Field("quadrature_weights", "(n,)", ("lat",), "points", "dimensionless",
                     "Clenshaw–Curtis weights in cos(colatitude): ∫f dΩ = Σ_ij w_i f_ij 2π/(2n)", dtype="float64",
                     sample_varying=False),
           )),
)}


def schema_of(kind: str) -> Schema:
    """The schema of the dataset kind ``kind``; ValueError naming the kinds if it is not one."""
    if kind not in SCHEMAS:
        raise ValueError(f"unknown dataset kind {kind!r}; kinds: {sorted(SCHEMAS)}")
    return SCHEMAS[kind]


def write_header(fh: h5py.File, config, attrs: dict) -> None:
    """The root attributes: ``attrs`` (versions, mesh, ...) and what the schema requires."""
    for key, value in attrs.items():
        fh.attrs[key] = value
    fh.attrs["format_version"] = FORMAT_VERSION
    fh.attrs["kind"] = config.kind
    fh.attrs["dataset_name"] = config.name
    fh.attrs["n_samples"] = config.samples
    fh.attrs["storage_dtype"] = config.storage_dtype
    fh.attrs["config"] = config.to_json()


def create_dataset(fh: h5py.File, kind: str, path: str, storage_dtype: str, *, data=None, shape=None,
                   dtype=None) -> h5py.Dataset:
    """Create the dataset ``path`` of a ``kind`` file, described and checksummed.

    Give ``data`` (written at once) or ``shape`` and ``dtype`` (a per-sample dataset filled
    sample by sample: chunked one sample per chunk, gzip level 4 with shuffle). The stored dtype
    is the field's (:meth:`Field.stored_dtype`); a path the schema does not declare is refused.
    """
    field = schema_of(kind).resolve(path)
    if data is not None:
        data = np.asarray(data)
        shape, dtype = data.shape, data.dtype
    stored = field.stored_dtype(dtype, storage_dtype)
    axes = field.axis_names(len(shape))
    options = {"fletcher32": True}
    if data is None:
        options.update(chunks=(1,) + tuple(shape[1:]), compression="gzip", compression_opts=4, shuffle=True)
    dset = fh.create_dataset(path, shape=shape, dtype=stored, **options)
    if data is not None:
        dset[...] = data
    for dim, name in zip(dset.dims, axes):
        dim.label = name
    dset.attrs["location"] = field.location
    dset.attrs["units"] = field.units
    dset.attrs["description"] = field.description
    dset.attrs["sample_varying"] = field.sample_varying
    dset.attrs["time_varying"] = field.time_varying
    return dset


class DatasetFile:
    """Read access to one dataset file through its kind's schema.

    The HDF5 file is opened on the first read in each process (an h5py handle must not cross
    a fork, e.g. into DataLoader workers) and the object pickles without it.

    Parameters
    ----------
    path : path
        A file written by :func:`fem_ms.data.generate`.
    kind : str, optional
        The kind the caller expects; a file of another kind is refused.

    Attributes
    ----------
    path : pathlib.Path
    kind : str
    schema : Schema
    format_version : int
    config : dict
        The generating config (the ``config`` attribute), ``kind`` included.
    n_samples : int
    """

    def __init__(self, path, kind: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"dataset not found: {self.path}")
        self._fh = None
        self._pid = None
        try:
            with h5py.File(self.path, "r") as fh:
                attrs = dict(fh.attrs)
                self._splits = {name: self._read(fh, f"splits/{name}") for name in SPLITS if f"splits/{name}" in fh}
                self._groups = list(fh)
        except OSError as exc:
            if isinstance(exc, CorruptDatasetError):
                raise
            raise OSError(f"{self.path} is not a readable HDF5 dataset file: {exc}") from exc
        found = attrs.get("kind")
        if found is None:
            raise ValueError(f"{self.path} is not a fem-ms dataset (it has no 'kind' attribute)")
        if kind is not None and found != kind:
            raise ValueError(f"{self.path} holds a {found!r} dataset, not {kind!r}")
        self.kind = str(found)
        self.schema = schema_of(self.kind)
        self.format_version = int(attrs.get("format_version", 1))
        if not OLDEST_READABLE <= self.format_version <= FORMAT_VERSION:
            raise ValueError(f"{self.path} has dataset format version {self.format_version}; this fem-ms reads "
                             f"versions {OLDEST_READABLE} to {FORMAT_VERSION}: update fem-ms, or {_REGENERATE}")
        if self.format_version < FORMAT_VERSION:
            warnings.warn(f"{self.path} has dataset format version {self.format_version} (no checksums, no "
                          f"validation split); it is read as it is: to upgrade it to version {FORMAT_VERSION}, "
                          f"{_REGENERATE}", stacklevel=2)
            # format 1 predates the validation split: its configs had none
            self._splits.setdefault("validation", np.zeros(0, dtype=np.int64))
        self.config = json.loads(attrs["config"])
        self.n_samples = int(self.config["samples"])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fh"] = state["_pid"] = None
        return state

    @property
    def file(self) -> h5py.File:
        """The open HDF5 file of this process."""
        if self._fh is None or self._pid != os.getpid():
            try:
                self._fh = h5py.File(self.path, "r")
            except OSError as exc:
                raise OSError(f"{self.path} is not a readable HDF5 dataset file: {exc}") from exc
            self._pid = os.getpid()
        return self._fh

    def close(self) -> None:
        """Close the HDF5 file (in the process that opened it; a forked worker leaves it alone)."""
        if self._fh is not None and self._pid == os.getpid():
            self._fh.close()
        self._fh = None

    def __enter__(self) -> DatasetFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- splits and groups -------------------------------------------------------------------

    @property
    def split_names(self) -> list[str]:
        """The names of the splits the file holds, in the order of :data:`SPLITS`."""
        return [name for name in SPLITS if name in self._splits]

    def split(self, name: str) -> np.ndarray:
        """The sample indices of split ``name`` (increasing)."""
        if name not in self._splits:
            raise ValueError(f"{self.path} has no split {name!r}; it has {self.split_names}")
        return self._splits[name].copy()

    def members(self) -> list:
        """The members of the kind's group family in this file (patch kinds, levels, meshes)."""
        group = self.schema.group
        if group is None:
            return []
        found = [m for m in (group.member(name) for name in self._groups) if m is not None]
        if group.members:
            return [m for m in group.members if m in found]
        return sorted(found)

    def require(self, member) -> None:
        """Raise naming what the file has when ``member`` is not one of :meth:`members`."""
        group = self.schema.group
        if group is None:
            raise ValueError(f"{self.kind!r} datasets have no groups")
        if member not in self.members():
            raise ValueError(f"{self.path} has no {group.label} {member!r}; {group.plural}: {self.members()}")

    # --- fields ------------------------------------------------------------------------------

    def _path(self, field: str, where: dict) -> str:
        group = self.schema.group
        unknown = set(where) - ({group.key} if group else set())
        if unknown:
            raise TypeError(f"{self.kind!r} fields are selected by {group.key if group else 'nothing'}=, "
                            f"not {sorted(unknown)}")
        member = where.get(group.key) if group else None
        path = self.schema.path(field, member)
        if self.schema.in_group(field):
            self.require(member)
        return path

    def has(self, field: str, **where) -> bool:
        """Whether the file holds ``field`` (a conditional field may be absent)."""
        return self._path(field, where) in self.file

    def dataset(self, field: str, **where) -> h5py.Dataset:
        """The h5py dataset of ``field`` (reads of it bypass the corruption report: prefer
        :meth:`read`)."""
        path = self._path(field, where)
        if path not in self.file:
            condition = self.schema.field(field).condition
            raise ValueError(f"{self.path} has no dataset {path!r}" + (f" (present for {condition} only)"
                                                                         if condition else ""))
        return self.file[path]

    def shape(self, field: str, **where) -> tuple[int, ...]:
        """The stored shape of ``field`` (of group member ``where``, e.g. ``level=64``)."""
        return self.dataset(field, **where).shape

    def read(self, field: str, index=(), **where) -> np.ndarray:
        """Values of ``field`` (of group member ``where``, e.g. ``level=64``) at ``index``
        (h5py indexing: an int, a slice, increasing indices; all by default), as stored."""
        dset = self.dataset(field, **where)
        return self._read(dset.file, dset.name.lstrip("/"), index)

    def _read(self, fh: h5py.File, path: str, index=()) -> np.ndarray:
        try:
            return np.asarray(fh[path][index])
        except OSError as exc:
            raise CorruptDatasetError(f"{self.path}: dataset {path!r} cannot be read ({exc}): the file is "
                                      f"damaged; {_REGENERATE}") from exc

    def verify(self) -> None:
        """Check the whole file against the schema, reading every chunk (so every checksum).

        Every dataset must be one the schema declares; every field must be present (in every
        group member, conditional fields aside); a per-sample dataset must have ``n_samples``
        rows; from format 2 on, each dataset must carry the schema's axis names, attributes,
        checksum and dtype. Raises ``ValueError`` naming the first problem, or
        :class:`CorruptDatasetError`.
        """
        fh = self.file
        paths = []
        fh.visititems(lambda name, obj: paths.append(name) if isinstance(obj, h5py.Dataset) else None)
        for path in paths:
            try:
                field = self.schema.resolve(path)
            except KeyError as exc:
                raise ValueError(f"{self.path}: {exc.args[0]}") from None
            dset = fh[path]
            if field.sample_varying and dset.shape[0] != self.n_samples:
                raise ValueError(f"{self.path}: dataset {path!r} has {dset.shape[0]} samples, not {self.n_samples}")
            if self.format_version >= 2:
                self._verify_description(path, dset, field)
            for chunk in dset.iter_chunks() if dset.chunks and dset.size else [()]:
                self._read(fh, path, chunk)
        members = self.members() if self.schema.group else [None]
        required = [f.name for f in self.schema.fields if not f.condition]
        required += [self.schema.path(f.name, m) for f in self.schema.group_fields if not f.condition for m in members]
        required += [f"splits/{name}" for name in (SPLITS if self.format_version >= 2 else ("train", "test"))]
        missing = [p for p in required if p not in fh]
        if missing:
            raise ValueError(f"{self.path}: datasets {missing} are missing")

    def _verify_description(self, path: str, dset: h5py.Dataset, field: Field) -> None:
        expected = {"location": field.location, "units": field.units, "description": field.description,
                    "sample_varying": field.sample_varying, "time_varying": field.time_varying}
        found = {key: dset.attrs.get(key) for key in expected}
        found.update({key: bool(found[key]) for key in ("sample_varying", "time_varying") if found[key] is not None})
        if found != expected:
            raise ValueError(f"{self.path}: dataset {path!r} is described as {found}, the schema says {expected}")
        axes = tuple(d.label for d in dset.dims)
        if axes != field.axis_names(dset.ndim):
            raise ValueError(f"{self.path}: dataset {path!r} has axes {axes}, the schema says "
                             f"{field.axis_names(dset.ndim)}")
        if not dset.fletcher32:
            raise ValueError(f"{self.path}: dataset {path!r} has no checksum")
        if dset.dtype != field.stored_dtype(dset.dtype, self.config.get("storage_dtype", "float64")):
            raise ValueError(f"{self.path}: dataset {path!r} is stored as {dset.dtype}, the schema says "
                             f"{field.dtype} with storage_dtype {self.config.get('storage_dtype')}")

    def describe(self, field: str, **where) -> dict:
        """What the file says of ``field``: axes, location, units, description (format 2)."""
        dset = self.dataset(field, **where)
        out = {"axes": tuple(d.label for d in dset.dims), "shape": dset.shape, "dtype": dset.dtype}
        out.update({key: str(dset.attrs[key]) for key in ("location", "units", "description") if key in dset.attrs})
        out.update({key: bool(dset.attrs[key]) for key in ("sample_varying", "time_varying") if key in dset.attrs})
        return out
