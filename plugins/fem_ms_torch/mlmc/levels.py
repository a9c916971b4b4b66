"""Training data per level, held in memory, served as model arguments for a set of samples.

A level is one resolution of the same samples: sample j of level l and sample j of level l−1
are the same random input at two resolutions, which is what an MLMC correction term pairs.
``batch(indices, device)`` returns ``(args, target)``; the trainer calls ``model(*args)``. With
nested sampling the trainer also takes the first ``count`` samples of a batch's output and
target, by ``head(output, target, count)`` where a level defines it and along the first axis
otherwise.

* :class:`GridLevel` — fields on a regular grid (FNO/F-FNO): args ``(x,)``.
* :class:`GraphLevel` — fields at mesh nodes (MP-PDE): a sample is a torch_geometric ``Data``,
  the batch their disjoint union (``Batch``), args ``(x, pos, edge_index, batch)``.

:func:`darcy_levels` and :func:`cylinder_levels` build them from the ``multilevel`` and
``cylinder_flow`` datasets (docs/datasets.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from fem_ms.data.schema import DatasetFile

from ..basis.features import patch_features
from ..normalisation import Normaliser

__all__ = ["GridLevel", "GraphLevel", "darcy_levels", "cylinder_levels", "CYLINDER_SOURCES"]

CYLINDER_SOURCES = ("solved", "transferred")


class GridLevel:
    """Inputs ``(S, C_in, *grid)`` and targets ``(S, C_out, *grid)`` of one resolution."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, name: str = ""):
        if len(inputs) != len(targets) or inputs.shape[2:] != targets.shape[2:]:
            raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} do not match")
        self.inputs, self.targets, self.name = inputs, targets, name

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def size(self) -> int:
        """Grid points per sample (the cost measure of the level)."""
        return int(np.prod(self.inputs.shape[2:]))

    def batch(self, indices: torch.Tensor, device) -> tuple[tuple, torch.Tensor]:
        """(the model's arguments, targets) of samples ``indices`` on ``device``."""
        return (self.inputs[indices].to(device),), self.targets[indices].to(device)


class GraphLevel:
    """Node inputs (S, N, C_in) and targets (S, N, C_out) on one mesh (positions, edges)."""

    def __init__(self, pos: torch.Tensor, edge_index: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor,
                 name: str = ""):
        n = pos.shape[0]
        if inputs.shape[1] != n or targets.shape[1] != n or len(inputs) != len(targets):
            raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} do not match "
                             f"{n} nodes")
        if edge_index.shape[0] != 2 or int(edge_index.max()) >= n:
            raise ValueError(f"edge_index must be (2, E) indices into the {n} nodes")
        self.pos, self.edge_index, self.inputs, self.targets, self.name = pos, edge_index, inputs, targets, name

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def size(self) -> int:
        """Nodes of the mesh (the cost measure of the level)."""
        return int(self.pos.shape[0])

    def head(self, output: torch.Tensor, target: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of the first ``count`` graphs of a batch (the trainer's nested evaluation)."""
        rows = count * self.pos.shape[0]
        return output[:rows], target[:rows]

    def graph(self, index: int) -> Data:
        """Sample ``index`` as a torch_geometric graph: ``x`` (N, C_in), ``y`` (N, C_out), ``pos``,
        ``edge_index``."""
        return Data(x=self.inputs[index], y=self.targets[index], pos=self.pos, edge_index=self.edge_index)

    def batch(self, indices: torch.Tensor, device) -> tuple[tuple, torch.Tensor]:
        """(the model's arguments ``(x, pos, edge_index, graph)``, targets) of samples ``indices`` on
        ``device``: the disjoint union of their graphs, ``graph`` naming each node's sample."""
        batch = Batch.from_data_list([self.graph(int(i)) for i in indices]).to(device)
        return (batch.x, batch.pos, batch.edge_index, batch.batch), batch.y


def darcy_levels(path, resolutions: Sequence[int], split: str = "train", stats: Normaliser | None = None,
                 dtype=torch.float32) -> tuple[list[GridLevel], Normaliser]:
    """Levels κ → u of a ``multilevel`` dataset, coarsest first.

    Inputs are :func:`~fem_ms_torch.basis.features.patch_features` (standardised log κ at the
    vertices and the coordinates); targets u / max|u|. ``stats``, the
    :class:`~fem_ms_torch.normalisation.Normaliser` of both (log-κ mean and standard deviation,
    the scale of u), is fitted on the coarsest level of this split unless given (pass the
    training split's to a test split). Returns the levels and the normaliser.
    """
    path = Path(path)
    resolutions = [int(n) for n in resolutions]
    if resolutions != sorted(set(resolutions)):
        raise ValueError(f"resolutions must increase strictly, got {resolutions}")
    with DatasetFile(path, "multilevel") as data:
        for n in resolutions:
            data.require(n)
        samples = data.split(split)
        raw = [tuple(torch.as_tensor(data.read(field, samples, level=n), dtype=torch.float64)
                     for field in ("kappa", "u")) for n in resolutions]
    if stats is None:
        stats = Normaliser.fit(raw[0][0], raw[0][1], log_inputs=True, output_scaling="max_abs")
    levels = [GridLevel(patch_features(k, *stats.log_input_stats).to(dtype),
                        stats.normalise_outputs(u)[:, None].to(dtype), name=f"{n}x{n}")
              for n, (k, u) in zip(resolutions, raw)]
    return levels, stats


def _windows(velocity: np.ndarray, history: int, bundle: int) -> tuple[np.ndarray, np.ndarray]:
    """(trajectories, T, N, 2) → inputs (W, N, 2·history), targets (W, N, 2·bundle) increments."""
    s, t, n, c = velocity.shape
    starts = range(history - 1, t - bundle)
    x = np.stack([velocity[:, i - history + 1:i + 1].transpose(0, 2, 1, 3).reshape(s, n, history * c)
                  for i in starts], axis=1)
    y = np.stack([(velocity[:, i + 1:i + 1 + bundle] - velocity[:, i:i + 1]).transpose(0, 2, 1, 3)
                  .reshape(s, n, bundle * c) for i in starts], axis=1)
    return x.reshape(-1, n, history * c), y.reshape(-1, n, bundle * c)


def cylinder_levels(path, meshes: Sequence[int], split: str = "train", history: int = 1, bundle: int = 1,
                    source: str = "solved", dtype=torch.float32) -> list[GraphLevel]:
    """Time-window levels on the cylinder meshes of a ``cylinder_flow`` dataset, coarsest first.

    A sample is (trajectory, start time): input the ``history`` velocity snapshots up to t,
    target the increments u(t+k) − u(t), k = 1 … ``bundle``. Sample j is the same trajectory and
    time on every mesh.

    ``source``: ``"solved"`` — every mesh's own simulation of the trajectory (coarse data
    are coarse solves, as in the MLMC paper's cylinder experiment); ``"transferred"`` — every
    mesh's fields are the finest listed mesh's fields interpolated (P1) onto its vertices
    (:func:`~fem_ms_torch.graph.transfer.p1_interpolation`), a hierarchy built from fine data
    alone. Node positions are scaled by 1/8 (the channel is 16 × 8).
    """
    from ..graph.transfer import p1_interpolation

    path = Path(path)
    meshes = [int(m) for m in meshes]
    if source not in CYLINDER_SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {CYLINDER_SOURCES}")
    if not meshes or meshes != sorted(set(meshes)):
        raise ValueError(f"meshes must increase strictly (coarsest first), got {meshes}")
    for name, value in (("history", history), ("bundle", bundle)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    with DatasetFile(path, "cylinder_flow") as data:
        for m in meshes:
            data.require(m)
        samples = data.split(split)
        snapshots = data.shape("times")[0]
        if snapshots < history + bundle:
            raise ValueError(f"{path} stores {snapshots} snapshots, fewer than history + bundle")
        geometry = {m: tuple(data.read(field, mesh=m) for field in ("coordinates", "cells", "edges")) for m in meshes}
        finest = meshes[-1]
        velocity = {m: data.read("velocity", samples, mesh=m) for m in (meshes if source == "solved" else [finest])}
    if source == "transferred":
        points, cells, _ = geometry[finest]
        for m in meshes[:-1]:
            matrix = p1_interpolation(points, cells, geometry[m][0])
            fine = velocity[finest]                                    # (S, T, N, 2)
            moved = matrix @ np.moveaxis(fine, 2, 0).reshape(fine.shape[2], -1)
            velocity[m] = np.moveaxis(moved.reshape(matrix.shape[0], *fine.shape[:2], fine.shape[3]), 0, 2)
    levels = []
    for m in meshes:
        points, _, edges = geometry[m]
        x, y = _windows(velocity[m], history, bundle)
        edges = torch.as_tensor(edges.T, dtype=torch.long)
        levels.append(GraphLevel(torch.as_tensor(points / 8.0, dtype=dtype), torch.cat([edges, edges.flip(0)], dim=1),
                                 torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=dtype), name=f"M{m}"))
    return levels
