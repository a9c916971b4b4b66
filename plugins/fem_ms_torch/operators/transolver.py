"""Transolver++ (Luo et al., 2025), the physics-attention transformer of Transolver (Wu et al.,
2024) with adaptive slicing, compact, on grid point clouds.

Physics-attention (Transolver's central layer; equations quoted by content, the papers' text
was not at hand to check their numbering), per head, on point features x_i (N points):

1. **Slice**: soft assignment of each point to M slices, w_i = softmax(W x_i / τ) (N × M);
2. **Slice tokens**: s_j = Σ_i w_ij x_i / Σ_i w_ij — a weighted mean, so the tokens do not
   depend on the number of points (resolution);
3. **Attention among the M tokens**: s' = softmax(q kᵀ / √d) v, with q, k, v linear in s;
4. **Deslice**: x'_i = Σ_j w_ij s'_j.

Transolver++ changes the slicing ("eidetic states"): one projection of x serves both as the
features that are sliced and as the input of the slice weights (Transolver had two), and

* **Ada-Temp**, a local adaptive temperature τ_i = τ₀ + Linear(x_i) per point and head (τ₀
  learnt per head), so that points choose how sharply they belong to a slice;
* **Rep-Slice**, the Gumbel-softmax reparameterisation w_i = softmax((W x_i + g_i) / τ_i),
  g_i = −log(−log u_i), u_i ~ U(0, 1), which keeps the slice distribution from collapsing to
  uniform weights. The noise is drawn in training only: evaluation takes its expectation's
  mode (g = 0), so that predictions are deterministic (reference code: thuml/Transolver_plus).

The temperature is kept ≥ 0.05 (a floor that is not in the paper) so that a learnt τ cannot
reach zero or a negative value. Blocks are pre-norm x ← x + PhysicsAttention(LN x),
x ← x + MLP(LN x). The papers' distributed (million-point) parallelism is left out. No
maintained package provides Transolver++ here, hence this compact version, registered as
``"transolver++"``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .point_cloud import PointCloudOperator, check_dim, check_positive_int, mlp

__all__ = ["PhysicsAttention", "TransolverBlock", "TransolverPlusPlus"]

MIN_TEMPERATURE = 0.05


class PhysicsAttention(nn.Module):
    """Transolver++'s physics-attention: slice (Ada-Temp, Rep-Slice), attend among slices, deslice."""

    def __init__(self, width: int, heads: int, slices: int):
        super().__init__()
        self.heads, head_width = heads, width // heads
        self.project = nn.Linear(width, width)  # the eidetic states: sliced and slicing alike
        self.slice_logits = nn.Linear(head_width, slices)
        self.temperature_offset = nn.Sequential(nn.Linear(head_width, slices), nn.GELU(), nn.Linear(slices, 1))
        self.base_temperature = nn.Parameter(torch.full((1, heads, 1, 1), 0.5))
        self.query, self.key, self.value = (nn.Linear(head_width, head_width, bias=False) for _ in range(3))
        self.out = nn.Linear(width, width)

    def slice_weights(self, states: torch.Tensor) -> torch.Tensor:
        """``(batch, heads, N, slices)`` weights of each point's slices (rows sum to one)."""
        temperature = (self.base_temperature + self.temperature_offset(states)).clamp_min(MIN_TEMPERATURE)
        logits = self.slice_logits(states)
        if self.training:
            uniform = torch.rand_like(logits)
            logits = logits - torch.log(-torch.log(uniform + 1e-8) + 1e-8)
        return torch.softmax(logits / temperature, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, N, width)`` → ``(batch, N, width)``."""
        states = self.project(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (batch, heads, N, d)
        weights = self.slice_weights(states)
        tokens = weights.transpose(-2, -1) @ states / (weights.sum(dim=-2).unsqueeze(-1) + 1e-5)
        q, k, v = self.query(tokens), self.key(tokens), self.value(tokens)
        tokens = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v
        return self.out((weights @ tokens).transpose(1, 2).flatten(2))


class TransolverBlock(nn.Module):
    """x ← x + PhysicsAttention(LN x); x ← x + MLP(LN x)."""

    def __init__(self, width: int, heads: int, slices: int, mlp_ratio: int):
        super().__init__()
        self.norm_attention, self.norm_mlp = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = PhysicsAttention(width, heads, slices)
        self.mlp = mlp([width, mlp_ratio * width, width])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm_attention(x))
        return x + self.mlp(self.norm_mlp(x))


class TransolverPlusPlus(PointCloudOperator, name="transolver++"):
    """Transolver++ on the points of a grid: ``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {2, 3}
        Axes of the grid (coordinates per point).
    width : int
        Features per point; a multiple of ``heads``.
    depth : int
        Transolver blocks.
    heads : int
        Attention heads (each slices on its own features).
    slices : int
        Slice tokens M per head.
    mlp_ratio : int
        Hidden width of the blocks' MLPs, in multiples of ``width``.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 64, depth: int = 2,
                 heads: int = 4, slices: int = 16, mlp_ratio: int = 2):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                            ("depth", depth), ("heads", heads), ("slices", slices), ("mlp_ratio", mlp_ratio)):
            check_positive_int(value, name, "transolver++")
        if width % heads:
            raise ValueError(f"transolver++: width {width} is not a multiple of heads {heads}")
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, check_dim(dim, "transolver++")
        self.embed = mlp([in_channels + dim, 2 * width, width])
        self.blocks = nn.ModuleList([TransolverBlock(width, heads, slices, mlp_ratio) for _ in range(depth)])
        self.decode = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, out_channels))

    def forward_points(self, values: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        """``(batch, N, in_channels)`` at ``(batch, N, dim)`` → ``(batch, N, out_channels)``."""
        self.check_points(values, coordinates)
        x = self.embed(torch.cat([values, coordinates], dim=-1))
        for block in self.blocks:
            x = block(x)
        return self.decode(x)
