"""torch Datasets over the HDF5 files of :mod:`fem_ms.data` (schema: docs/datasets.md).

Files are opened lazily in each process (h5py handles must not cross a DataLoader fork), and
samples are read on demand, so datasets larger than memory work.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["BurgersDataset", "CylinderFlowGraphDataset", "DarcyNotchDataset", "GMsFEMBasisDataset",
           "MultilevelDataset"]


class _H5Dataset(Dataset):
    kind = ""

    def __init__(self, path, split: str = "train", dtype=torch.float32):
        self.path = Path(path)
        self.dtype = dtype
        self._fh = None
        with h5py.File(self.path, "r") as fh:
            if fh.attrs.get("kind") != self.kind:
                raise ValueError(f"{self.path} holds a {fh.attrs.get('kind')!r} dataset, not {self.kind!r}")
            if f"splits/{split}" not in fh:
                raise ValueError(f"{self.path} has no split {split!r}; it has {sorted(fh['splits'])}")
            self.samples = fh[f"splits/{split}"][()]
            self._init(fh)

    def _init(self, fh) -> None:
        pass

    @property
    def fh(self) -> h5py.File:
        if self._fh is None:
            self._fh = h5py.File(self.path, "r")
        return self._fh

    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fh"] = None
        return state


class GMsFEMBasisDataset(_H5Dataset):
    """Neighbourhood patches of one kind: κ on the canonical patch grid → N_bf SLEPc bases.

    Items are dicts with ``kappa`` (1, *cells), ``basis`` (N_bf, *vertices), ``eigenvalues``
    (N_bf,) and ``chi`` (*vertices), the partition-of-unity function of the patch.
    """

    kind = "gmsfem_basis"

    def __init__(self, path, patch_kind: str = "full", split: str = "train", dtype=torch.float32):
        self.patch_kind = patch_kind
        super().__init__(path, split, dtype)

    def _init(self, fh) -> None:
        if self.patch_kind not in fh:
            kinds = sorted(k for k in fh if k not in ("splits", "kappa_seed"))
            raise ValueError(f"{self.path} has no {self.patch_kind!r} patches; kinds: {kinds}")
        self.patches_per_sample = fh[f"{self.patch_kind}/kappa"].shape[1]

    def __len__(self) -> int:
        return len(self.samples) * self.patches_per_sample

    def __getitem__(self, index: int) -> dict:
        s, p = divmod(int(index), self.patches_per_sample)
        sample = int(self.samples[s])
        g = self.fh[self.patch_kind]
        return {"kappa": self._tensor(g["kappa"][sample, p])[None],
                "basis": self._tensor(g["basis"][sample, p]),
                "eigenvalues": self._tensor(g["eigenvalues"][sample, p]),
                "chi": self._tensor(g["chi"][p])}

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
        g = self.fh[self.patch_kind]
        out = {}
        for field in fields:
            if field == "chi":  # one per patch position, the same for every sample
                chi = self._tensor(g["chi"][()])
                out[field] = chi.repeat(len(self.samples), *[1] * (chi.dim() - 1))
                continue
            out[field] = torch.cat([self._tensor(g[field][int(s)]) for s in self.samples])
        if "kappa" in out:
            out["kappa"] = out["kappa"][:, None]
        return out


class MultilevelDataset(_H5Dataset):
    """One level of a multilevel dataset: ``kappa`` (1, n, n) [and ``f`` (1, n+1, n+1)] → ``u`` (1, n+1, n+1)."""

    kind = "multilevel"

    def __init__(self, path, level: int, split: str = "train", dtype=torch.float32):
        self.level = level
        super().__init__(path, split, dtype)

    def _init(self, fh) -> None:
        if f"level_{self.level}" not in fh:
            levels = sorted(int(k.split("_")[1]) for k in fh if k.startswith("level_"))
            raise ValueError(f"{self.path} has no level {self.level}; levels: {levels}")
        self.has_forcing = f"level_{self.level}/f" in fh

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = int(self.samples[int(index)])
        g = self.fh[f"level_{self.level}"]
        item = {"kappa": self._tensor(g["kappa"][sample])[None], "u": self._tensor(g["u"][sample])[None]}
        if self.has_forcing:
            item["f"] = self._tensor(g["f"][sample])[None]
        return item


class CylinderFlowGraphDataset(_H5Dataset):
    """Time-forward pairs on one cylinder mesh, as graphs.

    Item ``(trajectory, t)``: ``pos`` (N, 2) node coordinates, ``edge_index`` (2, 2E) both
    directions of every mesh edge, ``velocity`` (N, 2) at snapshot t, ``target`` (N, 2) at t + 1,
    ``pressure`` (N,) at t.
    """

    kind = "cylinder_flow"

    def __init__(self, path, mesh: int = 4, split: str = "train", dtype=torch.float32):
        self.mesh = mesh
        super().__init__(path, split, dtype)

    def _init(self, fh) -> None:
        group = f"mesh_{self.mesh}"
        if group not in fh:
            meshes = sorted(int(k.split("_")[1]) for k in fh if k.startswith("mesh_"))
            raise ValueError(f"{self.path} has no mesh {self.mesh}; meshes: {meshes}")
        self.pos = torch.as_tensor(fh[f"{group}/coordinates"][()], dtype=self.dtype)
        edges = torch.as_tensor(fh[f"{group}/edges"][()].T, dtype=torch.long)
        self.edge_index = torch.cat([edges, edges.flip(0)], dim=1)
        self.steps = fh[f"{group}/velocity"].shape[1] - 1
        if self.steps < 1:
            raise ValueError(f"{self.path} stores fewer than two snapshots per trajectory")

    def __len__(self) -> int:
        return len(self.samples) * self.steps

    def __getitem__(self, index: int) -> dict:
        s, t = divmod(int(index), self.steps)
        g = self.fh[f"mesh_{self.mesh}"]
        sample = int(self.samples[s])
        velocity = g["velocity"][sample, t:t + 2]
        return {"pos": self.pos, "edge_index": self.edge_index, "velocity": self._tensor(velocity[0]),
                "target": self._tensor(velocity[1]), "pressure": self._tensor(g["pressure"][sample, t])}


class DarcyNotchDataset(_H5Dataset):
    """Boundary data → pressure on the notched triangle.

    Items: ``boundary_values`` (B,), ``pressure`` (N,) at the mesh nodes, ``pressure_grid``
    (1, G, G) with zeros outside the domain, and ``mask`` (1, G, G), 1 inside.
    """

    kind = "darcy_notch"

    def _init(self, fh) -> None:
        self.mask = torch.as_tensor(fh["grid_inside"][()], dtype=self.dtype)[None]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = int(self.samples[int(index)])
        grid = np.nan_to_num(self.fh["pressure_grid"][sample], nan=0.0)
        return {"boundary_values": self._tensor(self.fh["boundary_values"][sample]),
                "pressure": self._tensor(self.fh["pressure"][sample]),
                "pressure_grid": self._tensor(grid)[None], "mask": self.mask}


class BurgersDataset(_H5Dataset):
    """1D Burgers: ``u0`` (1, n) → ``u`` (1, n), the solution at the final time."""

    kind = "burgers"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = int(self.samples[int(index)])
        return {"u0": self._tensor(self.fh["u0"][sample])[None], "u": self._tensor(self.fh["u"][sample])[None]}
