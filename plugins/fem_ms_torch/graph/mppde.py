"""Message-passing neural PDE solver (MP-PDE; Brandstetter, Worrall and Welling, 2022).

Encoder–processor–decoder on a mesh graph: the encoder lifts each node's features (the last
``history`` velocity snapshots and the node position) to ``hidden`` channels; each of the
``steps`` processor layers sends messages φ(h_i, h_j, u_i − u_j, x_i − x_j) along the mesh
edges, averages them at the receiving node and updates h_i ← h_i + ψ(h_i, mean_j m_ij)
(instance-normalised per graph, torch_geometric's ``InstanceNorm``); the decoder maps h_i to
``bundle`` future increments at once (temporal bundling): u(t + k) − u(t), k = 1 … bundle, for
every velocity component.

The edges come from the mesh connectivity stored with the data, so the network runs on any of
the meshes M1…M4 with the same weights. Messages use torch_geometric's ``MessagePassing`` (pure
torch scatter operations; no compiled graph extension). A batch is a torch_geometric ``Batch``
(the disjoint union of the samples' graphs, ``Batch.from_data_list`` or PyG's ``DataLoader``),
passed as ``model(batch.x, batch.pos, batch.edge_index, batch.batch)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import InstanceNorm, MessagePassing

from ..registry import RegisteredModel

__all__ = ["MPPDE", "MPPDELayer"]


def _mlp(n_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())


class MPPDELayer(MessagePassing):
    """One processor step: mean of edge messages from relative positions and field differences."""

    def __init__(self, hidden: int, fields: int, dim: int = 2):
        super().__init__(aggr="mean")
        self.message_net = _mlp(2 * hidden + fields + dim, hidden)
        self.update_net = _mlp(2 * hidden, hidden)
        # per graph of a batch, no affine parameters and no running statistics: no state, so the
        # checkpoints of the earlier hand-written norm (the same formula) load unchanged
        self.norm = InstanceNorm(hidden)

    def forward(self, h, u, pos, edge_index, graph):
        update = self.propagate(edge_index, h=h, u=u, pos=pos)
        return self.norm(h + update, graph)

    def message(self, h_i, h_j, u_i, u_j, pos_i, pos_j):
        return self.message_net(torch.cat([h_i, h_j, u_i - u_j, pos_i - pos_j], dim=-1))

    def update(self, aggregated, h):
        return self.update_net(torch.cat([h, aggregated], dim=-1))


class MPPDE(RegisteredModel, name="mppde"):
    """MP-PDE network for vector fields on mesh nodes.

    Forward: ``x`` (nodes, history·channels) — the window, oldest first — ``pos`` (nodes, dim),
    ``edge_index`` (2, edges) both directions, ``graph`` (nodes,) the graph of every node in a
    batch of graphs → (nodes, bundle·channels), the increments u(t+k) − u(t), k = 1 … bundle.

    Parameters
    ----------
    channels : int
        Components of the field (2 for a 2D velocity).
    history : int
        Snapshots in the input window.
    bundle : int
        Future snapshots predicted at once.
    hidden : int
        Channels of the node embeddings.
    steps : int
        Processor layers.
    dim : int
        Spatial dimension of the node positions.
    """

    def __init__(self, channels: int = 2, history: int = 1, bundle: int = 1, hidden: int = 64, steps: int = 6,
                 dim: int = 2):
        super().__init__()
        for name, value in dict(channels=channels, history=history, bundle=bundle, hidden=hidden, steps=steps,
                                dim=dim).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MPPDE: {name} must be a positive integer, got {value!r}")
        self.channels, self.history, self.dim = channels, history, dim
        self.encoder = _mlp(history * channels + dim, hidden)
        self.layers = nn.ModuleList([MPPDELayer(hidden, history * channels, dim) for _ in range(steps)])
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, bundle * channels))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor,
                graph: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.history * self.channels or pos.shape != (x.shape[0], self.dim):
            raise ValueError(f"MPPDE: expected x (nodes, {self.history * self.channels}) and pos (nodes, "
                             f"{self.dim}), got {tuple(x.shape)} and {tuple(pos.shape)}")
        h = self.encoder(torch.cat([x, pos], dim=-1))
        for layer in self.layers:
            h = layer(h, x, pos, edge_index, graph)
        return self.decoder(h)
