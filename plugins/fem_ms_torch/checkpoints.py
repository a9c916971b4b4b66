"""Checkpoint files of every trainer in the plugin (GMsFEM-NO, MLMC, GP operators).

Written atomically (a temporary file in the same directory, then ``os.replace``: an interrupted
write leaves the previous checkpoint intact), readable under the user's umask, tagged with a
format string, and loaded with ``torch.load(weights_only=True)``: plain tensors and Python
containers only, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

__all__ = ["save_checkpoint_file", "load_checkpoint_file"]


def save_checkpoint_file(path, payload: dict, format: str) -> None:
    """Write ``{"format": format, **payload}`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save({"format": format, **payload}, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the checkpoint from other users
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_checkpoint_file(path, format: str, what: str) -> dict:
    """The checkpoint at ``path``; ``ValueError`` naming ``what`` (e.g. "a GPO") if it is not
    a dictionary tagged ``format``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != format:
        found = data.get("format") if isinstance(data, dict) else None
        hint = f"; it has format {found!r}: retrain it with this version" if found else ""
        raise ValueError(f"{path} is not {what} checkpoint (format {format!r}){hint}")
    return data
