"""Operator-learning problems on grids, read from the HDF5 datasets of :mod:`fem_ms.data`.

A :class:`GridProblem` holds standardised inputs a ``(N, C, *grid)`` and outputs y (N, d) at the d
output points (the whole grid, or the grid points inside the domain), their coordinates, and
the constants that undo the standardisation.

- ``burgers``, ``wave_advection``: u_0 → u(·, T) on the periodic grid (C = 1); the unit
  interval is periodic, so the spatial kernels see the points on a circle
  (:attr:`GridProblem.kernel_points`).
- ``darcy_notch``: boundary data → pressure on the 51 × 51 grid, outputs at the points inside
  the notched triangle. The input function on the grid is the boundary value at the nearest
  boundary node (a function of g alone), with the domain mask as a second channel (C = 2).
- ``multilevel``: log κ (n × n cells, extended by its edge values to the (n+1)² vertices) → u
  at the vertices (C = 1).
- ``navier_stokes_forcing``: the forcing f → the vorticity w(·, T) on the n × n grid of one
  stored level of the periodic square (C = 1); both axes periodic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from fem_ms.data.schema import DatasetFile

from ..normalisation import Normaliser

__all__ = ["GridProblem", "load_problem"]


@dataclass
class GridProblem:
    """A split of a grid dataset as the GP operators see it: standardised input functions on the
    grid, standardised outputs at the output points, and the geometry of those points
    (:func:`load_problem` makes one)."""

    a: torch.Tensor  # (N, C, *grid), standardised
    y: torch.Tensor  # (N, d), standardised
    grid: tuple
    output_index: torch.Tensor  # (d,) flat grid indices of the outputs
    points: np.ndarray  # (d, dim) output coordinates
    axes: list  # per-axis grid coordinates
    structured: bool  # outputs = the whole tensor grid (Kronecker K_x possible)
    normalisation: Normaliser  # per-channel input and output statistics of the training split
    kind: str
    periods: tuple = ()  # per axis: the period of a periodic axis, None otherwise (() = none periodic)

    def period(self, axis: int):
        """The period of grid axis ``axis``, or None if it is not periodic."""
        return self.periods[axis] if self.periods else None

    @property
    def kernel_points(self) -> np.ndarray:
        """Output coordinates as the spatial kernels should see them: a periodic axis of period
        P becomes the circle of circumference P in the plane, x ↦ (P/2π)(cos 2πx/P, sin 2πx/P).
        Euclidean distance is then the chord, which equals ``|x − x'|`` to ``O(|x − x'|³/P²)`` and
        wraps around; a kernel that is positive definite in the plane (RBF, Matérn, the Wendland
        taper) stays positive definite on these points, which a kernel of the wrapped distance
        ``|x − x'| mod P`` in general is not."""
        return np.concatenate([_kernel_coordinates(self.points[:, k], self.period(k))
                               for k in range(self.points.shape[1])], 1)

    def axis_kernel_points(self, axis: int) -> np.ndarray:
        """:attr:`kernel_points` of one grid axis alone (the per-axis Kronecker factors)."""
        return _kernel_coordinates(np.asarray(self.axes[axis], dtype=float), self.period(axis))

    @property
    def y_mean(self) -> float:
        """The mean of the training outputs (standardisation offset)."""
        return self.normalisation.output_mean

    @property
    def y_std(self) -> float:
        """The scale of the training outputs (standardisation factor)."""
        return self.normalisation.output_scale

    def raw_outputs(self, y: torch.Tensor) -> torch.Tensor:
        """Outputs in the dataset's units from standardised ones ``y``."""
        return self.normalisation.denormalise_outputs(y)

    def to_grid(self, values: torch.Tensor) -> torch.Tensor:
        """Output-point values (…, d) on the grid ``(…, *grid)``, NaN where there is no output point."""
        out = torch.full((*values.shape[:-1], int(np.prod(self.grid))), float("nan"), dtype=values.dtype)
        out[..., self.output_index] = values
        return out.reshape(*values.shape[:-1], *self.grid)


def _kernel_coordinates(x: np.ndarray, period) -> np.ndarray:
    if period is None:
        return x[:, None]
    t = 2 * np.pi * x / period
    return period / (2 * np.pi) * np.stack([np.cos(t), np.sin(t)], 1)


def _read(path: Path, split: str, resolution: int | None, stride: int):
    with DatasetFile(path) as data:
        kind = data.kind
        idx = data.split(split)

        def read(field, **where):  # computed on in float64 whatever the storage dtype
            return np.asarray(data.read(field, **where), dtype=np.float64)

        if kind in ("burgers", "wave_advection"):
            a = read("u0")[idx][:, None, ::stride]
            y = read("u")[idx][:, ::stride]
            x = read("x")[::stride]
            return kind, a, y.reshape(len(idx), -1), np.ones(y.shape[1:], bool), [x], (1.0,)
        if kind == "darcy_notch":
            inside = data.read("grid_inside")
            gx = read("grid_x")
            xy, bnodes = read("coordinates"), data.read("boundary_nodes")
            bvals = read("boundary_values")[idx]
            pressure = read("pressure_grid")[idx]
            G = len(gx)
            pts = np.stack(np.meshgrid(gx, gx, indexing="ij"), -1).reshape(-1, 2)
            nearest = cKDTree(xy[bnodes]).query(pts)[1]
            a = np.stack([np.where(inside, bvals[:, nearest].reshape(-1, G, G), 0.0),
                          np.broadcast_to(inside, (len(idx), G, G)).astype(float)], 1)
            a, pressure, inside, gx = a[..., ::stride, ::stride], pressure[:, ::stride, ::stride], \
                inside[::stride, ::stride], gx[::stride]
            return kind, a, pressure.reshape(len(idx), -1), inside, [gx, gx], ()
        if kind == "multilevel":
            levels = data.members()
            if resolution not in levels:
                raise ValueError(f"{path}: give resolution= one of {levels}, got {resolution!r}")
            k = np.log(read("kappa", level=resolution)[idx])
            k = np.pad(k, ((0, 0), (0, 1), (0, 1)), mode="edge")[:, None, ::stride, ::stride]
            u = read("u", level=resolution)[idx][:, ::stride, ::stride]
            x = read("x", level=resolution)[::stride]
            return kind, k, u.reshape(len(idx), -1), np.ones(u.shape[1:], bool), [x, x], ()
        if kind == "navier_stokes_forcing":
            levels = data.members()
            if resolution not in levels:
                raise ValueError(f"{path}: give resolution= one of {levels}, got {resolution!r}")
            f = read("f", level=resolution)[idx][:, None, ::stride, ::stride]
            w = read("w", level=resolution)[idx][:, ::stride, ::stride]
            x = read("x", level=resolution)
            period = float(x[1] - x[0]) * len(x)  # the side of the square: n grid spacings
            return kind, f, w.reshape(len(idx), -1), np.ones(w.shape[1:], bool), [x[::stride], x[::stride]], \
                (period, period)
        raise ValueError(f"{path}: GPO problems exist for burgers, wave_advection, darcy_notch, multilevel and "
                         f"navier_stokes_forcing datasets, not {kind!r}")


def load_problem(path, split: str = "train", resolution: int | None = None, stride: int = 1,
                 limit: int | None = None, normalisation: Normaliser | None = None) -> GridProblem:
    """The ``split`` of a dataset as a :class:`GridProblem`.

    Parameters
    ----------
    path : HDF5 file from ``fem-ms generate``
    resolution : int
        Cells per side of the level of a ``multilevel`` dataset to read.
    stride : int
        Keep every ``stride``-th grid point per axis.
    limit : int, optional
        The first ``limit`` samples only.
    normalisation : Normaliser, optional
        The training split's (per input channel, and of the outputs); fitted here if absent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset not found: {path}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"load_problem: stride must be a positive integer, got {stride!r}")
    kind, a, y, inside, axes, periods = _read(path, split, resolution, stride)
    if limit is not None:
        a, y = a[:limit], y[:limit]
    flat_inside = inside.reshape(-1)
    y = y[:, flat_inside]
    if not (np.isfinite(a).all() and np.isfinite(y).all()):
        raise ValueError(f"{path}: non-finite values in the {split} inputs or outputs")
    if normalisation is None:
        normalisation = Normaliser.fit(a, y, per_channel=True)
    dtype = torch.get_default_dtype()
    a = torch.as_tensor(normalisation.normalise_inputs(a), dtype=dtype)
    y = torch.as_tensor(normalisation.normalise_outputs(y), dtype=dtype)
    grid = tuple(inside.shape)
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    return GridProblem(a, y, grid, torch.as_tensor(np.flatnonzero(flat_inside)), mesh[flat_inside], axes,
                       bool(flat_inside.all()), normalisation, kind, periods)

