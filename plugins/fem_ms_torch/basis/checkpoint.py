"""GMsFEM-NO checkpoints: one model per neighbourhood kind, saved atomically, loaded with
``weights_only=True`` (plain tensors and Python containers only)."""

from __future__ import annotations

import torch

from ..checkpoints import load_checkpoint_file, save_checkpoint_file
from ..operators import ARCHITECTURES

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "build_model"]

FORMAT = "fem-ms/gmsfem-no/1"


def save_checkpoint(path, payload: dict) -> None:
    save_checkpoint_file(path, payload, FORMAT)


def load_checkpoint(path) -> dict:
    return load_checkpoint_file(path, FORMAT, "a GMsFEM-NO")


def build_model(entry: dict) -> torch.nn.Module:
    """The model of one kind from its checkpoint entry (architecture, constructor arguments, weights)."""
    name = entry.get("architecture", "ffno")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} in checkpoint; known: {sorted(ARCHITECTURES)}")
    model = ARCHITECTURES[name](**entry["model"])
    model.load_state_dict(entry["state_dict"])
    return model.eval()
