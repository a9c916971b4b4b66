"""Training data per level, held in memory, served as model arguments for a set of samples.

A level is one resolution of the same samples: sample j of level l and sample j of level l−1
are the same random input at two resolutions, which is what an MLMC correction term pairs.
``batch(indices, device)`` returns ``(args, target)``; the trainer calls ``model(*args)``. With
nested sampling the trainer also takes the first ``count`` samples of a batch's output and
target, by ``head(output, target, count)`` where a level defines it and along the first axis
otherwise.

* :class:`GridLevel` — fields on a regular grid (FNO/F-FNO): args ``(x,)``.
* :class:`SpaceTimeLevel` — vorticity snapshots on a periodic grid, served on a space × time
  grid for a space-time operator (the FNO-3d): args ``(x,)``.
* :class:`GraphLevel` — fields at mesh nodes (MP-PDE): a sample is a torch_geometric ``Data``,
  the batch their disjoint union (``Batch``), args ``(x, pos, edge_index, batch)``.

:func:`darcy_levels` and :func:`cylinder_levels` build them from the ``multilevel`` and
``cylinder_flow`` datasets (docs/datasets.md), :func:`vorticity_levels` from trajectories
(samples, times, n, n) at several resolutions.
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

__all__ = ["GridLevel", "SpaceTimeLevel", "GraphLevel", "darcy_levels", "cylinder_levels", "vorticity_levels",
           "CYLINDER_SOURCES"]

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


class SpaceTimeLevel(GridLevel):
    """The first snapshots of a flow → the next ones, on a space × time grid (Li et al.'s FNO-3d).

    ``inputs`` (S, T_in, n, n) are the snapshots a model sees, ``targets`` (S, T_out, n, n) the
    ones it predicts. A batch gives the model ``x`` (B, T_in, n, n, T_out): the T_in input
    snapshots as channels, repeated at each of the T_out output times, so that a 3-d operator
    convolving in (x, y, t) maps them to ``y`` (B, 1, n, n, T_out). The repetition is made per
    batch, so the level holds each snapshot once.
    """

    @property
    def output_times(self) -> int:
        """T_out, the length of the predicted time axis."""
        return int(self.targets.shape[1])

    def batch(self, indices: torch.Tensor, device) -> tuple[tuple, torch.Tensor]:
        """(``(x,)``, ``y``) of samples ``indices`` on ``device``, shaped as the class docstring says."""
        x = self.inputs[indices].to(device)
        x = x[..., None].expand(*x.shape, self.output_times)
        return (x,), self.targets[indices].to(device).permute(0, 2, 3, 1)[:, None]


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


def vorticity_levels(fields: Sequence, input_times: int, stats: Normaliser | None = None, names=None,
                     dtype=torch.float32) -> tuple[list[SpaceTimeLevel], Normaliser]:
    """Space-time levels from vorticity trajectories of the same samples at several resolutions.

    Parameters
    ----------
    fields : sequence of arrays
        One (S, T, n, n) array per resolution, coarsest first: the same S trajectories at the
        same T times, n increasing.
    input_times : int
        T_in: the first T_in snapshots are the input, the remaining T − T_in the target.
    stats : Normaliser, optional
        Its output scale divides inputs and targets alike (the vorticity is one field): by
        default the root mean square of the coarsest level's snapshots (pass the training
        split's to a test split). No mean is subtracted, so that a relative L2 error of the
        scaled fields is that of the vorticity.
    names : sequence of str, optional
        Default ``"{n}x{n}"``.

    Returns
    -------
    levels : list of SpaceTimeLevel
        Coarsest first.
    stats : Normaliser
        The scaling applied (``stats`` if given).
    """
    arrays = [torch.as_tensor(np.asarray(f), dtype=torch.float64) for f in fields]
    if not arrays:
        raise ValueError("vorticity_levels: no resolutions given")
    for i, a in enumerate(arrays):
        if a.ndim != 4 or a.shape[2] != a.shape[3]:
            raise ValueError(f"vorticity_levels: fields[{i}] must be (samples, times, n, n), got {tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise ValueError(f"vorticity_levels: fields[{i}] holds non-finite values")
    if len({a.shape[:2] for a in arrays}) != 1:
        raise ValueError(f"vorticity_levels: every resolution needs the same samples and times, got shapes "
                         f"{[tuple(a.shape) for a in arrays]}")
    sizes = [a.shape[2] for a in arrays]
    if sizes != sorted(set(sizes)):
        raise ValueError(f"vorticity_levels: resolutions must increase strictly (coarsest first), got {sizes}")
    times = arrays[0].shape[1]
    if isinstance(input_times, bool) or not isinstance(input_times, int) or not 0 < input_times < times:
        raise ValueError(f"vorticity_levels: input_times must be an integer in [1, {times - 1}] for {times} "
                         f"snapshots, got {input_times!r}")
    if names is not None and len(names) != len(arrays):
        raise ValueError(f"vorticity_levels: {len(names)} names for {len(arrays)} resolutions")
    if stats is None:
        stats = Normaliser(output_scale=float(arrays[0].square().mean().sqrt().clamp_min(1e-12)))
    levels = []
    for i, a in enumerate(arrays):
        w = stats.normalise_outputs(a).to(dtype)
        name = names[i] if names is not None else f"{a.shape[2]}x{a.shape[2]}"
        levels.append(SpaceTimeLevel(w[:, :input_times].contiguous(), w[:, input_times:].contiguous(), name=name))
    return levels, stats
