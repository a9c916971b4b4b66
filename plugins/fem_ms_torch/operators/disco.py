"""Local integral layers: discrete-continuous (DISCO) convolutions (Ocampo et al., 2023;
Liu-Schiaffini et al., 2024, §3.4).

The kernel is continuous and lives in physical units: κ(z) = Σ_k W_k ψ_k(z) / ∫ψ_k with fixed
basis functions ψ_k supported in a ball of radius ``radius``; the layer is the quadrature
(Ku)(x) = Σ_y q_y κ(y − x) u(y) over the points y of the input. The same weights W therefore
describe the same integral operator at every resolution, and the discrete output converges
to it as the grid is refined (O(h²) for the continuous, piecewise-linear bases here).

Two bases:

* ``"piecewise_linear"`` (2D): torch-harmonics' ``PiecewiseLinearFilterBasis`` — hats in the
  radius times hats in the angle on a disk (the basis of the paper and of neuraloperator);
* ``"tensor_hat"`` (any dimension): products of 1D hats on a ``(2m−1)^dim`` lattice of spacing
  ``radius/m`` — written here because torch-harmonics has planar bases only in 2D; its support is
  the ball of radius ``radius`` in the max-norm, and every function integrates to (radius/m)^dim.

Why not neuraloperator's DISCO classes: ``EquidistantDiscreteContinuousConv2d`` fixes its stencil
for one input shape (at another resolution it is a different operator) and is 2D only;
``DiscreteContinuousConv2d`` builds dense N×N distance tensors and normalizes in a Python loop,
which does not scale to mesh point sets. Here the stencil is rebuilt (and cached) per input
shape, and point sets use a k-d tree neighbour search and a sparse matrix. Each basis function
is normalized by its exact integral (not by its discrete sum, as torch-harmonics does), so the
grid and point-set layers are the same operator, boundaries included.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
from torch import nn

from .differential import grid_spacing

__all__ = ["DiscoFilterBasis", "DiscoConv", "SparseDiscoConv"]

BASES = ("piecewise_linear", "tensor_hat")


class DiscoFilterBasis:
    """Basis functions ψ_k of a local kernel, supported in a ball of radius ``radius``.

    Parameters
    ----------
    dim : int
    radius : float
        Support radius in physical units.
    basis : {"piecewise_linear", "tensor_hat"}, optional
        Default: "piecewise_linear" in 2D, "tensor_hat" otherwise.
    kernel_shape : int or sequence of int, optional
        piecewise_linear: (radial, angular) collocation counts as torch-harmonics takes them
        (default (3, 4): one central hat and four angular hats on one ring, 5 functions);
        tensor_hat: m, the hats per half-axis (default 2: 3^dim functions).
    """

    def __init__(self, dim: int, radius: float, basis: str | None = None, kernel_shape=None):
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        if not radius > 0:
            raise ValueError(f"radius must be positive, got {radius!r}")
        basis = basis or ("piecewise_linear" if dim == 2 else "tensor_hat")
        if basis not in BASES:
            raise ValueError(f"unknown basis {basis!r}; known: {list(BASES)}")
        if basis == "piecewise_linear" and dim != 2:
            raise ValueError(f"the piecewise_linear (radial x angular) basis is 2D; use tensor_hat in {dim}D")
        self.dim, self.radius, self.basis = dim, float(radius), basis
        if basis == "piecewise_linear":
            shape = [3, 4] if kernel_shape is None else \
                ([int(kernel_shape)] if isinstance(kernel_shape, int) else [int(k) for k in kernel_shape])
            if not 1 <= len(shape) <= 2 or any(k < 1 for k in shape):
                raise ValueError(f"piecewise_linear kernel_shape must be 1 or 2 positive ints, got {kernel_shape!r}")
            # imported here: torch-harmonics costs seconds to import, needed by this basis only
            from torch_harmonics.filter_basis import PiecewiseLinearFilterBasis

            self._th = PiecewiseLinearFilterBasis(shape)
            self.kernel_shape = tuple(self._th.kernel_shape)
            self.size = self._th.kernel_size
            self.integrals = _unit_polar_integrals(self.kernel_shape) * self.radius ** 2
        else:
            m = 2 if kernel_shape is None else kernel_shape
            m = m if isinstance(m, int) else (m[0] if len(m) == 1 else -1)
            if m < 1:
                raise ValueError(f"tensor_hat kernel_shape must be one int m >= 1 (hats per half-axis), "
                                 f"got {kernel_shape!r}")
            self.kernel_shape = (m,)
            self._nodes = torch.tensor(list(itertools.product(range(-(m - 1), m), repeat=dim)), dtype=torch.float64)
            self.size = len(self._nodes)
            self.integrals = torch.full((self.size,), (self.radius / m) ** dim, dtype=torch.float64)

    def __call__(self, offsets: torch.Tensor) -> torch.Tensor:
        """Values (K, N) of the basis at ``offsets`` (N, dim) = input point − output point."""
        offsets = offsets.to(torch.float64)
        if self.basis == "tensor_hat":
            a = self.radius / self.kernel_shape[0]
            t = offsets[None, :, :] / a - self._nodes[:, None, :]
            return (1.0 - t.abs()).clamp_min(0.0).prod(dim=-1)
        return _polar_values(self._th, offsets, self.radius)


def _polar_values(basis, offsets: torch.Tensor, radius: float) -> torch.Tensor:
    """Dense (K, N) values of a torch-harmonics ``PiecewiseLinearFilterBasis`` at 2D offsets (N, 2)."""
    r = offsets.norm(dim=-1)[None]
    phi = torch.atan2(offsets[:, 1], offsets[:, 0])[None] + math.pi  # neuraloperator's convention
    idx, vals = basis.compute_support_vals(r, phi, r_cutoff=radius)
    values = torch.zeros(basis.kernel_size, offsets.shape[0], dtype=torch.float64)
    values[idx[:, 0], idx[:, 2]] = vals.to(torch.float64)
    return values


@functools.cache
def _unit_polar_integrals(kernel_shape: tuple, n_r: int = 1200, n_phi: int = 720) -> torch.Tensor:
    """∫ψ_k of the piecewise-linear basis on the unit disk, by the midpoint rule in polar
    coordinates (the functions are piecewise linear in r and φ, so the error is O(n⁻²) from the
    kinks only: about 1e-6 relative). Radius R scales the integrals by R²."""
    dr, dphi = 1.0 / n_r, 2 * math.pi / n_phi
    r = (torch.arange(n_r, dtype=torch.float64) + 0.5) * dr
    phi = (torch.arange(n_phi, dtype=torch.float64) + 0.5) * dphi - math.pi
    rr, pp = torch.meshgrid(r, phi, indexing="ij")
    z = torch.stack([rr * torch.cos(pp), rr * torch.sin(pp)], dim=-1).reshape(-1, 2)
    from torch_harmonics.filter_basis import PiecewiseLinearFilterBasis

    values = _polar_values(PiecewiseLinearFilterBasis(list(kernel_shape)), z, 1.0)
    return (values * (rr.reshape(-1) * dr * dphi)).sum(dim=1)


class _Coefficients(nn.Module):
    """The learned W of κ = Σ_k W_k ψ_k/∫ψ_k, parametrized as W = ``weight`` / sqrt(in·K).

    ``weight`` starts as N(0, 1), so W starts with the variance 1/(in·K) that keeps the output
    variance that of the input (each normalized ψ_k averages the input over the ball). The fixed
    factor is there for the optimizer, like the differential layer's ``reference_spacing``: Adam
    moves every parameter by about lr per step, with its gradient's sign, so a layer's output
    moves by up to lr × its fan-in — in·K for these coefficients, K (5–25) times the fan-in of the
    pointwise linear layer beside it. Through the factor it moves by lr·sqrt(in·K), of the order
    of the linear layer's lr·in. On the GMsFEM basis task the LocalNO reached a lower subspace
    error with the factor than without (docs/local_operators.md).
    """

    def __init__(self, out_channels: int, in_channels: int, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, size))
        self.weight_scale = 1.0 / math.sqrt(in_channels * size)

    @property
    def coefficients(self) -> torch.Tensor:
        """W (out, in, K): the kernel's coefficients on the normalized basis functions."""
        return self.weight * self.weight_scale


class DiscoConv(_Coefficients):
    """DISCO convolution on uniform 1D/2D/3D grids, resolution-independent.

    For an input of shape ``(batch, in, *n)`` the spacing h_d follows from ``domain_length`` and
    ``periodic`` (see ``grid_spacing``), the kernel is sampled at the offsets j·h with
    ``|j_d h_d| ≤ radius`` and weighted by the quadrature weight Π h_d (trapezoid rule: halved at the
    two ends of each non-periodic axis). Outside a non-periodic domain the input counts as zero.

    The convolution is applied by FFT: the spectra of the K basis stencils are cached per input
    shape, the learned kernel's spectrum is their combination with W, and the channel contraction
    is one complex product per frequency. This is the same discrete operator as the direct
    convolution (to rounding) at a cost that does not grow with the stencil: faster than
    ``conv2d`` already at the benchmark's radius, and more so at larger radii
    (docs/local_operators.md), so a DISCO model gets more optimizer steps in a fixed time.
    Non-periodic axes are zero-padded by
    the stencil's half-width, which makes the FFT's circular convolution linear on the output
    window; on periodic axes the circular convolution is the operator itself.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {1, 2, 3}
    radius : float
        Kernel support radius in physical units (fixed under refinement).
    basis, kernel_shape
        See ``DiscoFilterBasis``.
    domain_length : float or sequence of float
    periodic : bool
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int, radius: float, basis: str | None = None,
                 kernel_shape=None, domain_length=1.0, periodic: bool = False):
        basis = DiscoFilterBasis(dim, radius, basis, kernel_shape)
        super().__init__(out_channels, in_channels, basis.size)
        self.basis = basis
        self.dim, self.domain_length, self.periodic = dim, domain_length, periodic
        self._stencils: dict = {}
        self._spectra: dict = {}

    def stencil(self, shape, dtype=torch.float32, device=None) -> torch.Tensor:
        """``(K, *stencil)`` normalized basis values × quadrature weight for a grid of ``shape``."""
        key = (tuple(shape), dtype, str(device))
        if key not in self._stencils:
            h = grid_spacing(shape, self.domain_length, self.periodic)
            half = [int(math.floor(self.basis.radius / hd * (1 + 1e-12))) for hd in h]
            axes = [torch.arange(-s, s + 1, dtype=torch.float64) * hd for s, hd in zip(half, h)]
            offsets = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dim)
            values = self.basis(offsets) / self.basis.integrals[:, None] * math.prod(h)
            self._stencils[key] = values.reshape(-1, *[2 * s + 1 for s in half]).to(dtype=dtype, device=device)
        return self._stencils[key]

    def spectra(self, shape, dtype=torch.float32, device=None) -> tuple[torch.Tensor, tuple[int, ...]]:
        """rfftn of the K stencils placed for a circular correlation on the padded grid, and the
        padded shape: (Ku)(x) = Σ_j ψ(j) u(x + j h) is the circular convolution with ψ(−m) at index m."""
        key = (tuple(shape), dtype, str(device))
        if key not in self._spectra:
            psi = self.stencil(shape, torch.float64)
            half = [(s - 1) // 2 for s in psi.shape[1:]]
            padded = tuple(n if self.periodic else n + s for n, s in zip(shape, half))
            placed = psi
            for d, (s, n) in enumerate(zip(half, padded)):
                # tap j (stored at j + s) goes to index −j mod n; index_add sums the taps that alias
                # when a periodic stencil is wider than the grid
                index = torch.remainder(-torch.arange(-s, s + 1), n)
                zeros = torch.zeros(*placed.shape[:1 + d], n, *placed.shape[2 + d:], dtype=placed.dtype)
                placed = zeros.index_add(1 + d, index, placed)
            spectrum = torch.fft.rfftn(placed, dim=tuple(range(1, 1 + self.dim)))
            complex_dtype = (torch.ones((), dtype=dtype) * 1j).dtype
            self._spectra[key] = (spectrum.to(dtype=complex_dtype, device=device), padded)
        return self._spectra[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected (batch, {self.weight.shape[1]}, {self.dim} spatial axes), got {tuple(x.shape)}")
        shape = tuple(x.shape[2:])
        psi_hat, padded = self.spectra(shape, x.dtype, x.device)
        if not self.periodic:
            for d in range(self.dim):  # trapezoid end weights
                end = torch.ones(shape[d], dtype=x.dtype, device=x.device)
                end[0] = end[-1] = 0.5
                x = x * end.reshape((-1,) + (1,) * (self.dim - 1 - d))
        axes = tuple(range(2, 2 + self.dim))
        kernel_hat = torch.einsum("oik,k...->oi...", self.coefficients.to(psi_hat.dtype), psi_hat)
        x_hat = torch.fft.rfftn(x, s=padded, dim=axes)
        y = torch.fft.irfftn(torch.einsum("bi...,oi...->bo...", x_hat, kernel_hat), s=padded, dim=axes)
        return y[(..., *[slice(0, n) for n in shape])]


class SparseDiscoConv(_Coefficients):
    """DISCO convolution on a fixed point set (e.g. the vertices of an unstructured mesh).

    (Ku)(x_i) = Σ_j q_j κ(y_j − x_i) u(y_j): the pairs within ``radius`` come from a k-d tree
    (scipy), the normalized basis values times q_j are kept as a sparse (K·N_out, N_in) matrix.

    Parameters
    ----------
    in_channels, out_channels : int
    points : array (N_in, dim)
        Input points (physical coordinates).
    quadrature_weights : array (N_in,)
        Quadrature weights of the input points (e.g. lumped-mass / dual-cell areas of a mesh).
    radius, basis, kernel_shape
        See ``DiscoFilterBasis``.
    points_out : array (N_out, dim), optional
        Output points; default the input points.
    """

    def __init__(self, in_channels: int, out_channels: int, points, quadrature_weights, radius: float,
                 basis: str | None = None, kernel_shape=None, points_out=None):
        from scipy.spatial import cKDTree

        points = np.asarray(points, dtype=np.float64)
        q = np.asarray(quadrature_weights, dtype=np.float64)
        points_out = points if points_out is None else np.asarray(points_out, dtype=np.float64)
        if points.ndim != 2 or points_out.ndim != 2 or points_out.shape[1] != points.shape[1]:
            raise ValueError(f"points must be (N, dim) arrays of one dim, got {points.shape} and {points_out.shape}")
        if q.shape != (len(points),):
            raise ValueError(f"quadrature_weights must have shape ({len(points)},), got {q.shape}")
        basis = DiscoFilterBasis(points.shape[1], radius, basis, kernel_shape)
        super().__init__(out_channels, in_channels, basis.size)
        self.basis = basis
        self.n_in, self.n_out = len(points), len(points_out)
        pairs = cKDTree(points_out).query_ball_tree(cKDTree(points), r=self.basis.radius)
        rows = np.repeat(np.arange(self.n_out), [len(p) for p in pairs])
        cols = np.fromiter(itertools.chain.from_iterable(pairs), dtype=np.int64, count=len(rows))
        offsets = torch.from_numpy(points[cols] - points_out[rows])
        values = self.basis(offsets) / self.basis.integrals[:, None] * torch.from_numpy(q[cols])[None]
        k, nz = torch.nonzero(values, as_tuple=True)
        index = torch.stack([k * self.n_out + torch.from_numpy(rows)[nz], torch.from_numpy(cols)[nz]])
        self.register_buffer("psi_index", index, persistent=False)
        self.register_buffer("psi_values", values[k, nz].float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, N_in) → (batch, out_channels, N_out)."""
        if x.dim() != 3 or x.shape[1] != self.weight.shape[1] or x.shape[2] != self.n_in:
            raise ValueError(f"expected (batch, {self.weight.shape[1]}, {self.n_in}), got {tuple(x.shape)}")
        b, c, _ = x.shape
        psi = torch.sparse_coo_tensor(self.psi_index, self.psi_values.to(x.dtype),
                                      size=(self.basis.size * self.n_out, self.n_in), check_invariants=False)
        local = torch.sparse.mm(psi, x.reshape(b * c, self.n_in).T)  # (K·N_out, B·C)
        local = local.reshape(self.basis.size, self.n_out, b, c)
        return torch.einsum("knbc,ock->bon", local, self.coefficients.to(x.dtype))
