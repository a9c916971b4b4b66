"""The plain Fourier neural operator (Li et al., 2021), 2D and 3D, for comparison with the F-FNO.

Each layer applies one spectral convolution over all axes at once, keeping the lowest
``modes[d]`` frequencies per axis (both signs on all but the last axis, whose transform is
real), then z ← σ(W z + K z). Parameters grow with the product of the modes.

With ``differential`` / ``disco`` the layer gains the local branches of a LocalNO
(Liu-Schiaffini et al., 2024): z ← σ(W z + K z + D z + I z), D a differential and I a local
integral (DISCO) operator; see ``local.LocalBranches``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ..registry import RegisteredModel
from .axes import check_input, modes_per_axis
from .local import local_branches_per_layer

__all__ = ["SpectralConv", "FNO"]


class SpectralConv(nn.Module):
    """K(z) = IFFT(W · FFT(z)) on the low-frequency corners of the spectrum."""

    def __init__(self, width: int, modes: tuple[int, ...]):
        super().__init__()
        self.width, self.modes = width, tuple(int(m) for m in modes)
        dim = len(self.modes)
        scale = 1.0 / (width * width)
        # one weight block per sign pattern of the first dim-1 axes
        self.weights = nn.ParameterList(
            [nn.Parameter(scale * torch.randn(width, width, *self.modes, dtype=torch.cfloat))
             for _ in range(2 ** (dim - 1))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = len(self.modes)
        check_input(x, self.width, dim)
        axes = tuple(range(2, 2 + dim))
        xf = torch.fft.rfftn(x, dim=axes, norm="ortho")
        out = torch.zeros_like(xf)
        k = [min(m, n // 2) for m, n in zip(self.modes[:-1], x.shape[2:-1])] + [min(self.modes[-1], xf.shape[-1])]
        letters = "xyz"[:dim]
        for w, signs in zip(self.weights, itertools.product((0, 1), repeat=dim - 1)):
            index = [slice(None), slice(None)]
            index += [slice(0, kd) if s == 0 else slice(-kd, None) for kd, s in zip(k[:-1], signs)]
            index.append(slice(0, k[-1]))
            block = w[(slice(None), slice(None)) + tuple(slice(0, kd) for kd in k)]
            out[tuple(index)] = torch.einsum(f"bi{letters},io{letters}->bo{letters}", xf[tuple(index)], block)
        return torch.fft.irfftn(out, s=x.shape[2:], dim=axes, norm="ortho")


class FNO(RegisteredModel, name="fno"):
    """FNO: pointwise lifting, ``depth`` Fourier layers z ← GELU(W z + K z), pointwise projection.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {2, 3}
    width, depth : int
    modes : int or tuple
        Fourier modes kept per axis.
    differential, disco : bool
        Local branches beside each Fourier convolution (default off: the plain FNO).
    disco_radius, disco_basis, disco_kernel_shape
        The DISCO kernel (``local.LocalBranches``); lengths on the domain [0, 1]^dim.
    periodic : bool
        The local branches' grid is periodic (the unit torus) instead of the vertices of
        [0, 1]^dim; the Fourier layers are periodic either way.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 32, depth: int = 4,
                 modes=12, differential: bool = False, disco: bool = False, disco_radius: float = 0.075,
                 disco_basis: str | None = None, disco_kernel_shape=None, periodic: bool = False):
        super().__init__()
        modes = modes_per_axis(modes, dim)
        self.lift = nn.Linear(in_channels, width)
        self.convs = nn.ModuleList([SpectralConv(width, modes) for _ in range(depth)])
        self.pointwise = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.local = local_branches_per_layer(depth, width, dim, differential, disco, disco_radius, disco_basis,
                                              disco_kernel_shape, periodic)
        self.project = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``."""
        z = self.lift(x.movedim(1, -1)).movedim(-1, 1)
        local = self.local if self.local is not None else [None] * len(self.convs)
        for conv, w, branches in zip(self.convs, self.pointwise, local):
            y = conv(z) + w(z.movedim(1, -1)).movedim(-1, 1)
            if branches is not None:
                y = y + branches(z)
            z = nn.functional.gelu(y)
        return self.project(z.movedim(1, -1)).movedim(-1, 1)
