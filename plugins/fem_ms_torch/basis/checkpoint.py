"""GMsFEM-NO checkpoints: one model per neighbourhood kind, saved atomically, loaded with
``weights_only=True`` (plain tensors and Python containers only)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ..operators import ARCHITECTURES

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "build_model"]

FORMAT = "fem-ms/gmsfem-no/1"


def save_checkpoint(path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    torch.save({"format": FORMAT, **payload}, tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the checkpoint from other users
    os.replace(tmp, path)


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a GMsFEM-NO checkpoint (format {FORMAT!r})")
    return data


def build_model(entry: dict) -> torch.nn.Module:
    """The model of one kind from its checkpoint entry (architecture, constructor arguments, weights)."""
    name = entry.get("architecture", "ffno")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} in checkpoint; known: {sorted(ARCHITECTURES)}")
    model = ARCHITECTURES[name](**entry["model"])
    model.load_state_dict(entry["state_dict"])
    return model.eval()
