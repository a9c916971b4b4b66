"""GNOT, the general neural operator transformer (Hao et al., 2023), compact, on grid point clouds.

Follows the paper's model section, part by part (equations quoted by content: the text of the
paper was not at hand to check its numbering):

* **Encoders**: the input function — the values of every input channel at a point with the
  point's coordinates — and the query points are embedded by MLPs. Input and output share the
  grid here, so a query carries its coordinates and the input values at it.
* **Heterogeneous normalised attention** (the "normalized linear attention" and its sum over
  input functions): q̃ = softmax(q), k̃ = softmax(k) over each head's features and
  z_t = q̃_t + Σ_i (q̃_t · k̃_i) v_i / Σ_j (q̃_t · k̃_j) — linear in the number of points, and a
  mean over points, so independent of the resolution (the added q̃_t is the reference code's).
  The grid's channels form one input function, so the sum over input functions has a single
  term. A block is cross-attention (queries → input function), then self-attention among the
  queries, each followed by the feed-forward experts, pre-norm residual branches.
* **Geometric gating**: each feed-forward layer is a mixture Σ_e p_e(x) E_e(h) of expert MLPs,
  p(x) = softmax(G(x)) with G an MLP of the point's coordinates alone (a soft domain
  decomposition).

No maintained package provides GNOT in this environment (the reference code needs DGL), hence
this compact version; it is registered as ``"gnot"``.
"""

from __future__ import annotations

import torch
from torch import nn

from .point_cloud import PointCloudOperator, check_dim, check_positive_int, mlp

__all__ = ["NormalisedAttention", "GatedExperts", "GNOTBlock", "GNOT"]


class NormalisedAttention(nn.Module):
    """GNOT's multi-head normalised linear attention of queries on a set of keys/values."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.out = nn.Linear(width, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (batch, heads, points, features)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``(batch, N, width)`` queries attend to ``(batch, M, width)`` keys → ``(batch, N, width)``."""
        q = self._split(self.query(queries)).softmax(dim=-1)
        k = self._split(self.key(keys)).softmax(dim=-1)
        v = self._split(self.value(keys))
        # means over the keys, not sums: the ratio is the same, its parts stay O(1) at any resolution
        context = k.transpose(-2, -1) @ v / k.shape[-2]
        normaliser = q @ k.mean(dim=-2, keepdim=True).transpose(-2, -1)
        z = q + (q @ context) / normaliser
        return self.out(z.transpose(1, 2).flatten(2))


class GatedExperts(nn.Module):
    """Σ_e p_e(x) E_e(h): expert MLPs mixed by a softmax gate of the coordinates x."""

    def __init__(self, width: int, dim: int, experts: int, hidden: int, layers: int):
        super().__init__()
        self.gate = mlp([dim, hidden, experts])
        self.experts = nn.ModuleList([mlp([width] + [hidden] * layers + [width]) for _ in range(experts)])

    def forward(self, h: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        weights = self.gate(coordinates).softmax(dim=-1)  # (batch, N, experts)
        return (torch.stack([expert(h) for expert in self.experts], dim=-1) * weights.unsqueeze(-2)).sum(dim=-1)


class GNOTBlock(nn.Module):
    """Cross-attention to the input function, gated experts, self-attention, gated experts
    (pre-norm residual branches)."""

    def __init__(self, width: int, dim: int, heads: int, experts: int, hidden: int, layers: int):
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(5)])
        self.cross, self.self_attention = NormalisedAttention(width, heads), NormalisedAttention(width, heads)
        self.ff_cross = GatedExperts(width, dim, experts, hidden, layers)
        self.ff_self = GatedExperts(width, dim, experts, hidden, layers)

    def forward(self, h: torch.Tensor, inputs: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        n_query, n_input, n_ff, n_self, n_ff2 = self.norms
        h = h + self.cross(n_query(h), n_input(inputs))
        h = h + self.ff_cross(n_ff(h), coordinates)
        z = n_self(h)
        h = h + self.self_attention(z, z)
        return h + self.ff_self(n_ff2(h), coordinates)


class GNOT(PointCloudOperator, name="gnot"):
    """GNOT on the points of a grid: ``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {2, 3}
        Axes of the grid (coordinates per point).
    width : int
        Embedding and attention width; a multiple of ``heads``.
    depth : int
        GNOT blocks.
    heads : int
        Attention heads.
    experts : int
        Expert MLPs of each geometric-gating layer.
    mlp_width, mlp_layers : int
        Hidden width (default ``width``) and hidden layers of the experts, encoders and decoder.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 64, depth: int = 2,
                 heads: int = 4, experts: int = 2, mlp_width: int | None = None, mlp_layers: int = 2):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                            ("depth", depth), ("heads", heads), ("experts", experts), ("mlp_layers", mlp_layers)):
            check_positive_int(value, name, "gnot")
        hidden = width if mlp_width is None else check_positive_int(mlp_width, "mlp_width", "gnot")
        if width % heads:
            raise ValueError(f"gnot: width {width} is not a multiple of heads {heads}")
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, check_dim(dim, "gnot")
        point = in_channels + dim
        self.encode_input = mlp([point] + [hidden] * mlp_layers + [width])
        self.encode_query = mlp([point] + [hidden] * mlp_layers + [width])
        self.blocks = nn.ModuleList([GNOTBlock(width, dim, heads, experts, hidden, mlp_layers) for _ in range(depth)])
        self.decode = nn.Sequential(nn.LayerNorm(width), mlp([width] + [hidden] * mlp_layers + [out_channels]))

    def forward_points(self, values: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
        """``(batch, N, in_channels)`` at ``(batch, N, dim)`` → ``(batch, N, out_channels)``."""
        self.check_points(values, coordinates)
        points = torch.cat([values, coordinates], dim=-1)
        inputs, h = self.encode_input(points), self.encode_query(points)
        for block in self.blocks:
            h = block(h, inputs, coordinates)
        return self.decode(h)
