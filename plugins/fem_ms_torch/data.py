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

__all__ = ["GMsFEMBasisDataset", "MultilevelDataset"]


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
