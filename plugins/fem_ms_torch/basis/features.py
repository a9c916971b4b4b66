"""Network inputs on a patch's vertex grid: log κ (averaged from the cells) and coordinates."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["patch_features", "n_features", "vertex_mass"]


def n_features(dim: int) -> int:
    return 1 + dim


def patch_features(kappa: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """(batch, *cells) κ → (batch, 1 + dim, *vertices): standardised log κ at the vertices (mean of
    the adjacent cells) and the vertex coordinates scaled to [0, 1] per axis."""
    dim = kappa.dim() - 1
    log_k = ((torch.log(kappa) - mean) / std)[:, None]
    pad = [1, 1] * dim
    padded = F.pad(log_k, pad, mode="replicate")
    pool = F.avg_pool2d if dim == 2 else F.avg_pool3d
    vertex = pool(padded, kernel_size=2, stride=1)
    axes = [torch.linspace(0.0, 1.0, n, dtype=kappa.dtype, device=kappa.device) for n in vertex.shape[2:]]
    coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))[None].expand(kappa.shape[0], -1, *vertex.shape[2:])
    return torch.cat([vertex, coords], dim=1)


def vertex_mass(kappa: torch.Tensor) -> torch.Tensor:
    """(batch, *cells) κ → (batch, *vertices): the lumped κ-weighted mass of every vertex,
    Σ κ_c / 2^dim over its adjacent cells (in units of a cell's volume), the diagonal of GMsFEM's
    S matrix with mass lumping on a Q1 patch grid."""
    dim = kappa.dim() - 1
    padded = F.pad(kappa[:, None], [1, 1] * dim)  # zeros outside: boundary vertices have fewer cells
    pool = F.avg_pool2d if dim == 2 else F.avg_pool3d
    return pool(padded, kernel_size=2, stride=1)[:, 0]
