"""Argument checks shared by the Fourier operators: spatial dimension, modes per axis, input shape."""

from __future__ import annotations

import torch

__all__ = ["modes_per_axis", "check_input"]


def modes_per_axis(modes, dim: int) -> tuple[int, ...]:
    """``modes`` (one int for every axis, or one per axis) as a tuple of ``dim`` ints."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    modes = (modes,) * dim if isinstance(modes, int) else tuple(int(m) for m in modes)
    if len(modes) != dim:
        raise ValueError(f"{len(modes)} mode counts for {dim} axes")
    return modes


def check_input(x: torch.Tensor, width: int, dim: int) -> None:
    """Raise unless ``x`` is ``(batch, width, *dim spatial axes)``."""
    if x.dim() != dim + 2 or x.shape[1] != width:
        raise ValueError(f"expected (batch, {width}, {dim} spatial axes), got {tuple(x.shape)}")
