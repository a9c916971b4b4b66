"""The local branches of a LocalNO layer: a differential and a local-integral (DISCO) operator
applied beside the Fourier convolution, their outputs summed with it (Liu-Schiaffini et al., 2024)."""

from __future__ import annotations

import torch
from torch import nn

from .differential import DifferentialConv
from .disco import DiscoConv

__all__ = ["LocalBranches", "local_branches_per_layer"]


class LocalBranches(nn.Module):
    """Σ of the enabled local operators on ``(batch, width, *grid)``, or None when none is enabled.

    Parameters
    ----------
    width, dim : int
    differential : bool
        Add a ``DifferentialConv`` (3-point stencil per axis, scaled by 1/h).
    disco : bool
        Add a ``DiscoConv`` of support ``disco_radius`` (physical units, domain [0, 1]^dim).
    disco_radius : float
    disco_basis, disco_kernel_shape
        See ``disco.DiscoFilterBasis``.
    periodic : bool
        The grid is periodic (a torus: h = 1/n, circular stencils) rather than the vertices of
        [0, 1]^dim (h = 1/(n−1), the input taken as zero outside for DISCO, replicated for the
        differential stencil).
    """

    def __init__(self, width: int, dim: int, differential: bool = False, disco: bool = False,
                 disco_radius: float = 0.075, disco_basis: str | None = None, disco_kernel_shape=None,
                 periodic: bool = False):
        super().__init__()
        self.differential = DifferentialConv(width, width, dim, periodic=periodic) if differential else None
        self.disco = DiscoConv(width, width, dim, disco_radius, disco_basis, disco_kernel_shape,
                               periodic=periodic) if disco else None

    def forward(self, z: torch.Tensor) -> torch.Tensor | None:
        out = None
        for branch in (self.differential, self.disco):
            if branch is not None:
                out = branch(z) if out is None else out + branch(z)
        return out


def local_branches_per_layer(depth: int, width: int, dim: int, differential: bool, disco: bool,
                             disco_radius: float, disco_basis, disco_kernel_shape,
                             periodic: bool = False) -> nn.ModuleList | None:
    """One :class:`LocalBranches` per layer of a Fourier operator, or None when both are off (the
    plain FNO/F-FNO, whose checkpoints then carry no local weights)."""
    if not (differential or disco):
        return None
    return nn.ModuleList([LocalBranches(width, dim, differential, disco, disco_radius, disco_basis,
                                        disco_kernel_shape, periodic) for _ in range(depth)])
