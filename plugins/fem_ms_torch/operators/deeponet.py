"""DeepONet (Lu et al., 2021) on grids: a branch net of the input field, a trunk net of the
coordinates, their dot product.

u_c(x) = Σ_k b_ck(a) t_k(x) + β_c for each output channel c: the branch net maps the whole input
field a to ``out_channels × basis`` coefficients b, the trunk net maps a point x ∈ [0, 1]^dim to
``basis`` values t(x) shared by the channels (the "split branch" form of multiple outputs of
Lu et al., 2022), β_c a learnt bias.

The branch is a CNN as in the GMsFEM-NO paper's DeepONet (its appendix F): each convolution
halves the grid along every axis and doubles the channels, then an adaptive average pool to a
fixed ``pooled`` size and an MLP. The pool lets one model read grids of other resolutions (an
approximation: the convolutions' kernels are in grid cells, not lengths); the trunk evaluates
at any points. DeepXDE implements DeepONet but is not installed, and its networks are MLPs on
fixed sensor points; this compact version is registered as ``"deeponet"``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import RegisteredModel
from .point_cloud import check_dim, check_positive_int, grid_coordinates, mlp

__all__ = ["DeepONet"]


class DeepONet(RegisteredModel, name="deeponet"):
    """DeepONet: ``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``.

    Parameters
    ----------
    in_channels, out_channels : int
    dim : {2, 3}
    width : int
        Hidden width of the branch's MLP and of the trunk.
    depth : int
        Hidden layers of the branch's MLP and of the trunk.
    basis : int
        Trunk functions (the number of terms of the dot product per output channel).
    channels : int
        Channels of the branch's first convolution (doubled by each further one).
    conv_layers : int
        Convolutions of the branch (each halves the grid).
    kernel_size : int
        Odd kernel size of the convolutions.
    pooled : int
        Grid points per axis after the branch's adaptive average pool.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 64, depth: int = 3,
                 basis: int = 64, channels: int = 16, conv_layers: int = 3, kernel_size: int = 3, pooled: int = 4):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                            ("depth", depth), ("basis", basis), ("channels", channels),
                            ("conv_layers", conv_layers), ("kernel_size", kernel_size), ("pooled", pooled)):
            check_positive_int(value, name, "deeponet")
        if kernel_size % 2 == 0:
            raise ValueError(f"deeponet: kernel_size must be odd (to keep the grid centred), got {kernel_size}")
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, check_dim(dim, "deeponet")
        self.basis = basis
        conv = (nn.Conv2d, nn.Conv3d)[dim - 2]
        pool = (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[dim - 2]
        layers: list[nn.Module] = []
        sizes = [in_channels] + [channels * 2 ** i for i in range(conv_layers)]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [conv(a, b, kernel_size, stride=2, padding=kernel_size // 2), nn.GELU()]
        self.branch = nn.Sequential(*layers, pool(pooled), nn.Flatten(),
                                    mlp([sizes[-1] * pooled ** dim] + [width] * depth + [out_channels * basis]))
        self.trunk = mlp([dim] + [width] * depth + [basis], final_activation=True)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)``."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"DeepONet: expected (batch, {self.in_channels}, {self.dim} spatial axes), "
                             f"got {tuple(x.shape)}")
        coefficients = self.branch(x).unflatten(-1, (self.out_channels, self.basis))
        trunk = self.trunk(grid_coordinates(tuple(x.shape[2:]), x.device, x.dtype))
        u = coefficients @ trunk.T + self.bias[:, None]
        return u.reshape(x.shape[0], self.out_channels, *x.shape[2:])
