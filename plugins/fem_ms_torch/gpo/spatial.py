"""Spatial covariance factors K_x of the separable GP operator kernel K_a ⊗ K_x.

:class:`KNNKernel` is the paper's nearest-neighbour sparse kernel (Algorithm 1) on any point
set: each point keeps its K nearest neighbours, zero elsewhere, stored as index/value lists and
applied by gather/scatter (O(dK) memory and time). :class:`KroneckerKNNKernel` splits a
structured grid per axis, K_x = K_1 ⊗ K_2 ⊗ …, each factor a 1D :class:`KNNKernel`.
Both are exposed to gpytorch/linear_operator as linear operators
(:class:`SparseSymmetricLinearOperator`, ``KroneckerProductLinearOperator``), never as dense
d × d matrices.

A kernel matrix truncated to nearest neighbours is in general not positive definite (it is
the Schur product with a 0/1 mask, which is not a PD kernel). With ``taper=True`` (default)
the kept values are multiplied by the compactly supported Wendland function
ψ(t) = (1 − t)⁴₊(4t + 1), which is PD in up to three dimensions, with its support radius at the
K-th neighbour distance: every pair inside the radius is kept, nothing outside, and by the Schur
product theorem the matrix stays PD (covariance tapering, Furrer, Genton & Nychka 2006). On a
regular grid the kept pairs are exactly the K nearest neighbours up to ties. ``taper=False``
gives the paper's plain truncation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gpytorch.constraints import Positive
from linear_operator.operators import KroneckerProductLinearOperator, LinearOperator
from scipy.spatial import cKDTree
from torch import nn

__all__ = ["SparseSymmetricLinearOperator", "KNNKernel", "KroneckerKNNKernel", "BASE_KERNELS"]


def _rbf(r):
    return torch.exp(-0.5 * r**2)


def _matern52(r):
    s = math.sqrt(5.0) * r
    return (1 + s + s**2 / 3) * torch.exp(-s)


BASE_KERNELS = {"rbf": _rbf, "matern52": _matern52}


def _wendland(t):
    return torch.clamp(1 - t, min=0) ** 4 * (4 * t + 1)


class SparseSymmetricLinearOperator(LinearOperator):
    """A symmetric n × n matrix given by (value, row, column) triplets, both triangles listed.

    Products are a gather and an ``index_add`` (differentiable in the values).
    """

    def __init__(self, values: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: int):
        super().__init__(values, rows, cols, size=size)  # values first: linear_operator takes dtype/device from it
        self.rows, self.cols, self.values, self.n = rows, cols, values, int(size)

    def _matmul(self, rhs: torch.Tensor) -> torch.Tensor:
        vector = rhs.dim() == 1
        if vector:
            rhs = rhs[:, None]
        contrib = self.values[:, None] * rhs[..., self.cols, :]
        out = torch.zeros(*rhs.shape[:-2], self.n, rhs.shape[-1], dtype=contrib.dtype, device=rhs.device)
        out = out.index_add(-2, self.rows, contrib)
        return out[..., 0] if vector else out

    def _size(self) -> torch.Size:
        return torch.Size([self.n, self.n])

    def to(self, *args, **kwargs) -> SparseSymmetricLinearOperator:
        # linear_operator's ``to`` casts every tensor argument; the indices must stay integers
        values = self.values.to(*args, **kwargs)
        return self.__class__(values, self.rows.to(values.device), self.cols.to(values.device), self.n)

    def _transpose_nonbatch(self) -> LinearOperator:
        return self

    def _diagonal(self) -> torch.Tensor:
        on = self.rows == self.cols
        return torch.zeros(self.n, dtype=self.values.dtype, device=self.values.device).index_add(
            0, self.rows[on], self.values[on])

    def to_dense(self) -> torch.Tensor:
        """The matrix as a dense (n, n) tensor."""
        out = torch.zeros(self.n, self.n, dtype=self.values.dtype, device=self.values.device)
        return out.index_put((self.rows, self.cols), self.values, accumulate=True)

    @property
    def nnz(self) -> int:
        """The number of stored entries."""
        return len(self.values)


class KNNKernel(nn.Module):
    """``k(|x − x'| / ℓ)`` kept for each point's ``neighbours`` nearest neighbours (itself included).

    Parameters
    ----------
    points : array (d, dim) or (d,)
    neighbours : int
        K ≥ 1; K = 1 gives k(0)·I. With the taper, the support radius is the median K-th
        neighbour distance, so points near a boundary keep fewer than K.
    base : {"rbf", "matern52"}
    taper : bool
        Wendland taper with support at the K-th neighbour distance (positive definite; see the
        module docstring); False: plain symmetrised truncation.
    lengthscale : float
        Initial ℓ (learned, positive).
    """

    def __init__(self, points, neighbours: int = 16, base: str = "rbf", taper: bool = True,
                 lengthscale: float = 0.05):
        super().__init__()
        pts = np.asarray(points, dtype=float)
        if pts.ndim == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or len(pts) < 1 or not np.all(np.isfinite(pts)):
            raise ValueError(f"KNNKernel: points must be a finite (d, dim) array, got shape {pts.shape}")
        if base not in BASE_KERNELS:
            raise ValueError(f"KNNKernel: base must be one of {sorted(BASE_KERNELS)}, got {base!r}")
        if isinstance(neighbours, bool) or not isinstance(neighbours, int) or not 1 <= neighbours <= len(pts):
            raise ValueError(f"KNNKernel: neighbours must be an integer in [1, {len(pts)}], got {neighbours!r}")
        if not lengthscale > 0:
            raise ValueError(f"KNNKernel: lengthscale must be positive, got {lengthscale!r}")
        self.d, self.neighbours, self.base, self.taper = len(pts), neighbours, base, taper
        tree = cKDTree(pts)
        dist, idx = tree.query(pts, k=neighbours)
        dist, idx = dist.reshape(len(pts), -1), idx.reshape(len(pts), -1)
        if taper:
            # every pair within the K-th neighbour distance of a typical (median) point, enlarged a
            # little so that the K-th neighbour keeps a non-zero weight (ψ(1) = 0)
            self.radius = float(np.median(dist[:, -1])) * (1 + 1e-6) + 1e-12
            pairs = tree.sparse_distance_matrix(tree, self.radius * (1 + 1e-9), output_type="coo_matrix")
            off = pairs.row != pairs.col  # the diagonal is added once below (scipy may list it or not)
            diag = np.arange(len(pts))
            rows, cols = np.r_[pairs.row[off], diag], np.r_[pairs.col[off], diag]
            dists = np.r_[pairs.data[off], np.zeros(len(pts))]
        else:
            self.radius = None
            rows = np.repeat(np.arange(len(pts)), idx.shape[1])
            cols = idx.ravel()
            keys = np.unique(np.r_[rows * len(pts) + cols, cols * len(pts) + rows])  # symmetrised
            rows, cols = keys // len(pts), keys % len(pts)
            dists = np.linalg.norm(pts[rows] - pts[cols], axis=1)
        self.register_buffer("rows", torch.as_tensor(rows, dtype=torch.long))
        self.register_buffer("cols", torch.as_tensor(cols, dtype=torch.long))
        self.register_buffer("dists", torch.as_tensor(dists, dtype=torch.get_default_dtype()))
        self.constraint = Positive()
        self.raw_lengthscale = nn.Parameter(self.constraint.inverse_transform(torch.tensor(float(lengthscale))))

    @property
    def lengthscale(self) -> torch.Tensor:
        """The length scale ℓ (positive; the raw parameter is unconstrained)."""
        return self.constraint.transform(self.raw_lengthscale)

    def values(self) -> torch.Tensor:
        """The kernel's stored entries k(dist / ℓ) (times the taper), one per (row, col) pair."""
        v = BASE_KERNELS[self.base](self.dists / self.lengthscale)
        if self.taper:
            v = v * _wendland(self.dists / self.radius)
        return v

    def operator(self) -> SparseSymmetricLinearOperator:
        """K_x as a sparse symmetric linear operator (d, d)."""
        return SparseSymmetricLinearOperator(self.values(), self.rows, self.cols, self.d)


class KroneckerKNNKernel(nn.Module):
    """K_x = K_1 ⊗ K_2 ⊗ … on a tensor grid (row-major flattening), one :class:`KNNKernel` per axis."""

    def __init__(self, axes, neighbours: int = 8, base: str = "rbf", taper: bool = True,
                 lengthscale: float = 0.05):
        super().__init__()
        if not axes:
            raise ValueError("KroneckerKNNKernel: give at least one axis")
        self.factors = nn.ModuleList(KNNKernel(np.asarray(a, dtype=float), min(neighbours, len(a)), base, taper,
                                               lengthscale) for a in axes)
        self.d = int(np.prod([f.d for f in self.factors]))

    def operator(self) -> LinearOperator:
        """K_x as a Kronecker product of the per-axis sparse operators (the one factor itself for one axis)."""
        ops = [f.operator() for f in self.factors]
        return ops[0] if len(ops) == 1 else KroneckerProductLinearOperator(*ops)
