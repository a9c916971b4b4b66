"""Factorized Fourier neural operator (F-FNO; Tran et al., 2023) in 2D and 3D.

Each layer mixes channels in Fourier space *one axis at a time* and sums over the axes
(K(z) = Σ_d IFFT_d(W_d · FFT_d(z)) on the lowest ``modes[d]`` frequencies), then applies a
residual feed-forward block z + σ(W₂ σ(W₁ K(z) + b₁) + b₂). Parameters grow linearly in the
number of axes instead of with the product of the modes, and the operator applies to grids of
any resolution (resolution transfer): the weights act on frequencies, not grid points.

Written here rather than taken from neuraloperator to keep the plugin's dependencies to torch
alone; the layer layout follows neuraloperator's (layers apart from models), and the model is
registered as ``"ffno"`` (:mod:`..registry`: constructor arguments stored so that a checkpoint
rebuilds it).

With ``differential`` / ``disco`` the layer gains the local branches of a LocalNO
(Liu-Schiaffini et al., 2024): K(z) + D(z) + I(z) inside the feed-forward block, D a
differential and I a local integral (DISCO) operator; see ``local.LocalBranches``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import RegisteredModel
from .axes import check_input, modes_per_axis
from .local import local_branches_per_layer
from .truncated_dft import spectral_mix_along

__all__ = ["FactorizedSpectralConv", "FFNO"]


class FactorizedSpectralConv(nn.Module):
    """Σ over axes of a spectral convolution along that axis (complex weights per axis).

    Each axis's transform is computed by truncated DFT matrices (:mod:`.truncated_dft`), which
    equals ``torch.fft`` to rounding and is about twice as fast on the short axes of patches.
    """

    def __init__(self, width: int, modes: tuple[int, ...]):
        super().__init__()
        self.width, self.modes = width, tuple(int(m) for m in modes)
        scale = 1.0 / (width * width)
        self.weights = nn.ParameterList(
            [nn.Parameter(scale * torch.randn(width, width, m, dtype=torch.cfloat)) for m in self.modes])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = len(self.modes)
        check_input(x, self.width, dim)
        out = spectral_mix_along(x, 2, self.weights[0])
        for d in range(1, dim):
            out += spectral_mix_along(x, 2 + d, self.weights[d])  # a fresh tensor: safe under autograd
        return out


class FFNO(RegisteredModel, name="ffno"):
    """F-FNO: pointwise lifting, ``depth`` factorized Fourier layers, pointwise projection.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {2, 3}
    width : int
        Channels inside the operator.
    depth : int
        Fourier layers.
    modes : int or tuple
        Fourier modes kept per axis.
    share_weights : bool
        One spectral convolution shared by all layers (the F-FNO paper's weight sharing).
    differential, disco : bool
        Local branches beside each Fourier convolution (default off: the plain F-FNO).
    disco_radius, disco_basis, disco_kernel_shape
        The DISCO kernel (``local.LocalBranches``); lengths on the domain [0, 1]^dim.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 32, depth: int = 4,
                 modes=12, share_weights: bool = False, differential: bool = False, disco: bool = False,
                 disco_radius: float = 0.075, disco_basis: str | None = None, disco_kernel_shape=None):
        super().__init__()
        modes = modes_per_axis(modes, dim)
        self.lift = nn.Linear(in_channels, width)
        convs = [FactorizedSpectralConv(width, modes)] * depth if share_weights else \
            [FactorizedSpectralConv(width, modes) for _ in range(depth)]
        self.convs = nn.ModuleList(convs)
        self.ff = nn.ModuleList([nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
                                 for _ in range(depth)])
        self.local = local_branches_per_layer(depth, width, dim, differential, disco, disco_radius, disco_basis,
                                              disco_kernel_shape)
        self.project = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``.

        Under ``torch.autocast`` only the layers' products (spectral convolutions, feed-forward
        blocks) run in the lower precision: the lifting, the residual stream z and the projection
        stay in x's precision. Rounding the residual stream and the outputs to bfloat16 made
        a probe GMsFEM-NO model's errors several times further from its float32 errors than
        this way (docs/gmsfem.md, docs/benchmarks.md), and the products, the cost, keep most of
        the speed-up.
        """
        full_precision = torch.autocast(x.device.type, enabled=False)
        with full_precision:
            z = self.lift(x.movedim(1, -1)).movedim(-1, 1)
        local = self.local if self.local is not None else [None] * len(self.convs)
        for conv, ff, branches in zip(self.convs, self.ff, local):
            y = conv(z)
            if branches is not None:
                y += branches(z)
            update = nn.functional.gelu(ff(y.movedim(1, -1))).movedim(-1, 1)
            # autograd keeps z for the spectral products: update it in place only without autograd
            z = z.add_(update) if not torch.is_grad_enabled() else z + update
        with full_precision:
            return self.project(z.movedim(1, -1)).movedim(-1, 1)
