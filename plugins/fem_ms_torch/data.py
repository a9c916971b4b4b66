"""torch Datasets over the files of :mod:`fem_ms.data`, read through its schema
(:class:`fem_ms.data.schema.DatasetFile`; the layout: docs/datasets.md).

Files are opened lazily in each process (h5py handles must not cross a DataLoader fork), and
samples are read on demand, so datasets larger than memory work.

Items are dicts of named fields; ``xy()`` gives the same items as ``{"x": input, "y": output}``,
the form neuraloperator's data processors and trainers take (with the normaliser of a trained
model: :func:`fem_ms_torch.processing.data_processor`). The cylinder-flow items are
torch_geometric ``Data`` graphs with ``x`` and ``y`` already, batched by PyG's ``DataLoader``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_geometric.data import Data

from fem_ms.data.schema import DatasetFile

__all__ = ["BurgersDataset", "CylinderFlowGraphDataset", "DarcyNotchDataset", "GMsFEMBasisDataset",
           "MultilevelDataset", "XYDataset"]


class XYDataset(Dataset):
    """The items of a dataset of dicts as ``{"x": item[x], "y": item[y]}`` (neuraloperator's
    convention); made by the datasets' ``xy()``."""

    def __init__(self, dataset: Dataset, x: str, y: str):
        fields = dataset[0].keys() if len(dataset) else ()
        for role, name in (("x", x), ("y", y)):
            if fields and name not in fields:
                raise ValueError(f"{type(dataset).__name__} items have no field {name!r} (for {role!r}); "
                                 f"fields: {sorted(fields)}")
        self.dataset, self.x, self.y = dataset, x, y

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"x": item[self.x], "y": item[self.y]}


class _H5Dataset(Dataset):
    kind = ""

    def __init__(self, path, split: str = "train", dtype=torch.float32):
        self.path = Path(path)
        self.dtype = dtype
        self.file = DatasetFile(self.path, self.kind)
        self.samples = self.file.split(split)
        self._init()

    def _init(self) -> None:
        pass

    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype)


class _DictDataset(_H5Dataset):
    """A dataset whose items are dicts of named fields."""

    xy_fields = ("", "")  # the input and the output field of ``xy()``

    def xy(self, x: str | None = None, y: str | None = None) -> XYDataset:
        """This dataset with items ``{"x": item[x], "y": item[y]}``; by default the input and
        output fields named in the class's docstring."""
        return XYDataset(self, x or self.xy_fields[0], y or self.xy_fields[1])


class GMsFEMBasisDataset(_DictDataset):
    """Neighbourhood patches of one kind: κ on the canonical patch grid → N_bf SLEPc bases.

    Items are dicts with ``kappa`` ``(1, *cells)``, ``basis`` ``(N_bf, *vertices)``, ``eigenvalues``
    (N_bf,) and ``chi`` ``(*vertices)``, the partition-of-unity function of the patch;
    ``xy()``: x = ``kappa``, y = ``basis``.
    """

    kind = "gmsfem_basis"
    xy_fields = ("kappa", "basis")

    def __init__(self, path, patch_kind: str = "full", split: str = "train", dtype=torch.float32):
        self.patch_kind = patch_kind
        super().__init__(path, split, dtype)

    def _init(self) -> None:
        self.patches_per_sample = self.file.shape("kappa", patch_kind=self.patch_kind)[1]

    def _read(self, field: str, index=()) -> torch.Tensor:
        return self._tensor(self.file.read(field, index, patch_kind=self.patch_kind))

    def __len__(self) -> int:
        return len(self.samples) * self.patches_per_sample

    def __getitem__(self, index: int) -> dict:
        s, p = divmod(int(index), self.patches_per_sample)
        sample = int(self.samples[s])
        return {"kappa": self._read("kappa", (sample, p))[None], "basis": self._read("basis", (sample, p)),
                "eigenvalues": self._read("eigenvalues", (sample, p)), "chi": self._read("chi", p)}

    def tensors(self, fields=("kappa", "basis", "eigenvalues", "chi")) -> dict[str, torch.Tensor]:
        """The whole split in memory: row i of each tensor is ``self[i][field]``.

        Reading item by item decompresses a sample's chunk (all its patches) once per patch,
        which cost more than a training step on full 41² patches; this reads every sample once,
        so that training indexes its batches from memory. The memory is the split's size: about
        90 MB per 100 κ for full 41² patches with N_bf = 8 in float32.
        """
        unknown = sorted(set(fields) - {"kappa", "basis", "eigenvalues", "chi"})
        if unknown:
            raise ValueError(f"unknown fields {unknown}; items have kappa, basis, eigenvalues and chi")
        out = {}
        for field in fields:
            if field == "chi":  # one per patch position, the same for every sample
                chi = self._read("chi")
                out[field] = chi.repeat(len(self.samples), *[1] * (chi.dim() - 1))
                continue
            out[field] = torch.cat([self._read(field, int(s)) for s in self.samples])
        if "kappa" in out:
            out["kappa"] = out["kappa"][:, None]
        return out


class MultilevelDataset(_DictDataset):
    """The level of resolution n of a multilevel dataset: ``kappa`` (1, n, n) [and ``f``
    (1, n+1, n+1)] → ``u`` (1, n+1, n+1); ``xy()``: x = ``kappa``, y = ``u``."""

    kind = "multilevel"
    xy_fields = ("kappa", "u")

    def __init__(self, path, resolution: int, split: str = "train", dtype=torch.float32):
        self.resolution = resolution
        super().__init__(path, split, dtype)

    def _init(self) -> None:
        self.file.require(self.resolution)
        self.has_forcing = self.file.has("f", level=self.resolution)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = int(self.samples[int(index)])
        fields = ("kappa", "u", "f") if self.has_forcing else ("kappa", "u")
        return {field: self._tensor(self.file.read(field, sample, level=self.resolution))[None] for field in fields}


class CylinderFlowGraphDataset(_H5Dataset):
    """Time-forward pairs on one cylinder mesh, as torch_geometric graphs.

    Item ``(trajectory, t)``: a ``Data`` with ``x`` (N, 2) the velocity at snapshot t, ``y``
    (N, 2) the velocity at t + 1, ``pos`` (N, 2) node coordinates, ``edge_index`` (2, 2E) both
    directions of every mesh edge, ``pressure`` (N,) at t. torch_geometric's ``DataLoader``
    batches them into the disjoint union of the graphs (a ``Batch``).
    """

    kind = "cylinder_flow"

    def __init__(self, path, mesh: int = 4, split: str = "train", dtype=torch.float32):
        self.mesh = mesh
        super().__init__(path, split, dtype)

    def _init(self) -> None:
        self.pos = self._tensor(self.file.read("coordinates", mesh=self.mesh))
        edges = torch.as_tensor(self.file.read("edges", mesh=self.mesh).T, dtype=torch.long)
        self.edge_index = torch.cat([edges, edges.flip(0)], dim=1)
        self.steps = self.file.shape("velocity", mesh=self.mesh)[1] - 1
        if self.steps < 1:
            raise ValueError(f"{self.path} stores fewer than two snapshots per trajectory")

    def __len__(self) -> int:
        return len(self.samples) * self.steps

    def __getitem__(self, index: int) -> Data:
        s, t = divmod(int(index), self.steps)
        sample = int(self.samples[s])
        velocity = self.file.read("velocity", (sample, slice(t, t + 2)), mesh=self.mesh)
        return Data(x=self._tensor(velocity[0]), y=self._tensor(velocity[1]), pos=self.pos,
                    edge_index=self.edge_index,
                    pressure=self._tensor(self.file.read("pressure", (sample, t), mesh=self.mesh)))


class DarcyNotchDataset(_DictDataset):
    """Boundary data → pressure on the notched triangle.

    Items: ``boundary_values`` (B,), ``pressure`` (N,) at the mesh nodes, ``pressure_grid``
    (1, G, G) with zeros outside the domain, and ``mask`` (1, G, G), 1 inside; ``xy()``:
    x = ``boundary_values``, y = ``pressure``.
    """

    kind = "darcy_notch"
    xy_fields = ("boundary_values", "pressure")

    def _init(self) -> None:
        self.mask = self._tensor(self.file.read("grid_inside"))[None]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = int(self.samples[int(index)])
        grid = np.nan_to_num(self.file.read("pressure_grid", sample), nan=0.0)
        return {"boundary_values": self._tensor(self.file.read("boundary_values", sample)),
                "pressure": self._tensor(self.file.read("pressure", sample)),
                "pressure_grid": self._tensor(grid)[None], "mask": self.mask}


class BurgersDataset(_DictDataset):
    """1D Burgers: ``u0`` (1, n) → ``u`` (1, n), the solution at the final time; ``xy()``:
    x = ``u0``, y = ``u``."""

    kind = "burgers"
    xy_fields = ("u0", "u")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = int(self.samples[int(index)])
        return {field: self._tensor(self.file.read(field, sample))[None] for field in ("u0", "u")}
