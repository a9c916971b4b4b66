"""Differential layer (Liu-Schiaffini et al., 2024, §3.2): a convolution that converges to a
first-order differential operator as the grid is refined.

A stencil ``w`` applied as (w ⋆ u)(x) − (Σw) u(x), divided by the grid spacing h, equals
Σ_j w_j (u(x + h z_j) − u(x)) / h = (Σ_j w_j z_j)·∇u(x) + O(h): the mean-free kernel kills the
pointwise part and 1/h keeps the first moment, so the same weights encode the same directional
derivatives at every resolution (an unscaled convolution would instead collapse to a pointwise map).

The stencil arithmetic is neuraloperator's ``FiniteDifferenceConvolution`` (1D, 2D, 3D); this
module adds what it leaves to the caller: h is taken from the input's shape and the physical
domain length, so one set of weights is a resolution-independent operator.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DifferentialConv", "grid_spacing"]


def grid_spacing(shape, domain_length=1.0, periodic: bool = False) -> tuple[float, ...]:
    """Spacing per axis of a uniform grid of ``shape`` points on a box of side ``domain_length``.

    ``periodic`` grids have n points per period (h = L/n); otherwise the points include both
    ends of the interval (h = L/(n−1)), as the vertex grids of the GMsFEM patches and Darcy levels.
    """
    shape = tuple(int(n) for n in shape)
    lengths = (float(domain_length),) * len(shape) if isinstance(domain_length, (int, float)) \
        else tuple(float(v) for v in domain_length)
    if len(lengths) != len(shape):
        raise ValueError(f"{len(lengths)} domain lengths for a {len(shape)}-dimensional grid")
    if any(v <= 0 for v in lengths):
        raise ValueError(f"domain lengths must be positive, got {lengths}")
    if any(n < (1 if periodic else 2) for n in shape):
        raise ValueError(f"grid of shape {shape} is too small to have a spacing")
    return tuple(v / (n if periodic else n - 1) for v, n in zip(lengths, shape))


class DifferentialConv(nn.Module):
    """h_ref (w ⋆ u − (Σw) u) / h with a learned ``kernel_size``-wide stencil per channel pair.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {1, 2, 3}
    kernel_size : int
        Odd stencil width (3: the classic first-order stencils).
    domain_length : float or sequence of float
        Physical side length per axis; with the input shape it fixes h.
    periodic : bool
        Circular padding and h = L/n; otherwise replicate padding and h = L/(n−1).
    reference_spacing : float
        h_ref, a fixed factor of the parametrization: the limit operator is h_ref (Σ_j w_j z_j)·∇u.
        With h_ref near the training grid's spacing the stencil weights are O(1) there, so that an
        optimizer step (Adam's steps are about lr per weight) changes the output by O(lr) and not
        by O(lr/h) — neuraloperator gets the same by scaling with the ratio to a default resolution.

    Notes
    -----
    The stencil starts at zero, so that the branch starts as a no-op: a random stencil scaled by
    1/h gives O(1/h) outputs on rough inputs (log κ jumps from cell to cell) and destabilizes
    the first steps of training; the gradient of the zero stencil is not zero, so it still learns.

    On grids with different spacings per axis (e.g. half-neighbourhood patches) h is the
    geometric mean of the spacings: it halves under uniform refinement, which is what the
    convergence needs, and the per-axis ratios are fixed by the patch shape and learned.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int, kernel_size: int = 3,
                 domain_length=1.0, periodic: bool = False, reference_spacing: float = 1 / 32):
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and at least 3, got {kernel_size!r}")
        if not reference_spacing > 0:
            raise ValueError(f"reference_spacing must be positive, got {reference_spacing!r}")
        self.dim, self.domain_length, self.periodic = dim, domain_length, periodic
        self.reference_spacing = float(reference_spacing)
        # imported here: importing neuralop costs seconds, and plain FNO/F-FNO users never need it
        from neuralop.layers.differential_conv import FiniteDifferenceConvolution

        self.conv = FiniteDifferenceConvolution(in_channels, out_channels, dim, kernel_size,
                                                padding="periodic" if periodic else "replicate")
        nn.init.zeros_(self.conv.weight)

    @property
    def weight(self) -> torch.Tensor:
        """The raw stencil ``(out, in, *kernel)``; its mean over the stencil is removed in forward."""
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``."""
        if x.dim() != self.dim + 2:
            raise ValueError(f"expected (batch, channels, {self.dim} spatial axes), got {tuple(x.shape)}")
        h = math.prod(grid_spacing(x.shape[2:], self.domain_length, self.periodic)) ** (1.0 / self.dim)
        return self.conv(x, h / self.reference_spacing)
