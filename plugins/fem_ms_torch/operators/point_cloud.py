"""Grid fields as point clouds: the common front of the attention operators (GNOT, Transolver++).

A point-cloud operator maps the values at N points and their coordinates to outputs at the same
points, and is equivariant under any permutation of the points. On a grid it flattens
``(batch, channels, *grid)`` to N = Π grid points with their coordinates in [0, 1]^dim, so
that one trained model evaluates on a grid of another resolution: it sees positions in the
domain, not grid indices.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import RegisteredModel

__all__ = ["PointCloudOperator", "grid_coordinates", "mlp", "check_positive_int", "check_dim"]


def check_positive_int(value, name: str, model: str) -> int:
    """``value`` if it is a positive int, else ``ValueError`` naming ``model``'s ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{model}: {name} must be a positive integer, got {value!r}")
    return value


def check_dim(dim, model: str) -> int:
    """``dim`` if it is 2 or 3, else ``ValueError``."""
    if isinstance(dim, bool) or dim not in (2, 3):
        raise ValueError(f"{model}: dim must be 2 or 3, got {dim!r}")
    return dim


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers of ``sizes`` (in, hidden..., out) with GELU between them (and after the
    last with ``final_activation``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def grid_coordinates(shape: tuple[int, ...], device=None, dtype=None) -> torch.Tensor:
    """``(Π shape, len(shape))`` coordinates in [0, 1] per axis of a grid of ``shape`` points,
    in the order of ``tensor.flatten`` (last axis fastest)."""
    axes = [torch.linspace(0.0, 1.0, n, device=device, dtype=dtype) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))


class PointCloudOperator(RegisteredModel):
    """Base of the operators that act on points: :meth:`forward` flattens a grid and calls
    :meth:`forward_points`, which a subclass defines.

    Subclasses set ``in_channels``, ``out_channels`` and ``dim`` in their constructor.
    """

    in_channels: int
    out_channels: int
    dim: int

    def forward_points(self, values: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        """``(batch, N, in_channels)`` values at ``(batch, N, dim)`` coordinates →
        ``(batch, N, out_channels)``."""
        raise NotImplementedError(f"{type(self).__name__} must define forward_points")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)`` of ``dim`` axes."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected (batch, {self.in_channels}, {self.dim} spatial axes), "
                             f"got {tuple(x.shape)}")
        batch, grid = x.shape[0], x.shape[2:]
        values = x.flatten(2).transpose(1, 2)
        coordinates = grid_coordinates(tuple(grid), x.device, x.dtype).expand(batch, -1, -1)
        out = self.forward_points(values, coordinates)
        return out.transpose(1, 2).reshape(batch, self.out_channels, *grid)

    def check_points(self, values: torch.Tensor, coordinates: torch.Tensor) -> None:
        """``ValueError`` unless ``values`` is ``(batch, N, in_channels)`` and ``coordinates``
        ``(batch, N, dim)``."""
        if values.dim() != 3 or values.shape[-1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: values must be (batch, N, {self.in_channels}), "
                             f"got {tuple(values.shape)}")
        if coordinates.shape != (*values.shape[:2], self.dim):
            raise ValueError(f"{type(self).__name__}: coordinates must be (batch, N, {self.dim}) = "
                             f"{(*values.shape[:2], self.dim)}, got {tuple(coordinates.shape)}")
