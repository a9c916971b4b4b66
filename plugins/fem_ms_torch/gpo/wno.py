"""Enhanced wavelet neural operator (LoGoS-GPO paper, section 3.2), 1D and 2D.

A wavelet integral layer takes the discrete wavelet transform of its features (ptwt), convolves
the coarsest-level coefficients (approximation and details) in the Fourier domain — a learned
complex channel-mixing weight on their lowest ``modes`` frequencies, the paper's eq. (29) —
instead of the original WNO's pointwise product, and transforms back. Finer detail levels pass
through unchanged, as in the original WNO. Because the weights act on Fourier modes of the
coefficient arrays, they do not depend on the grid size.
"""

from __future__ import annotations

import math

import ptwt
import pywt
import torch
from torch import nn

from .periodized_dwt import periodized_wavedec, periodized_wavedec2, periodized_waverec, periodized_waverec2

__all__ = ["WaveletConv", "WNO", "BOUNDARIES"]

BOUNDARIES = ("periodic", "symmetric", "reflect", "zero", "constant")


def _check_features(x: torch.Tensor, dim: int, channels: int, who: str) -> None:
    if x.dim() != dim + 2 or x.shape[1] != channels:
        raise ValueError(f"{who}: input must have shape (batch, {channels}, {', '.join(['n'] * dim)}), "
                         f"got {tuple(x.shape)}")


class WaveletConv(nn.Module):
    """Wavelet-domain convolution: DWT → Fourier-domain conv of the coarsest coefficients → IDWT.

    Parameters
    ----------
    channels : int
        Input and output channels.
    dim : {1, 2}
    wavelet_levels : int
        Wavelet decomposition levels.
    wavelet : str
        A PyWavelets discrete wavelet name ("db4", "haar", "sym6", ...).
    modes : int
        Fourier modes (per axis) of the coarsest coefficient arrays that are convolved; modes
        beyond the array's own are ignored.
    boundary : str
        "periodic": the exact periodised transform (:mod:`.periodized_dwt`; grid sizes divisible
        by 2^wavelet_levels, orthogonal wavelets), for periodic domains; otherwise ptwt's padding mode
        ("symmetric", "reflect", "zero", "constant").
    """

    def __init__(self, channels: int, dim: int, wavelet_levels: int = 3, wavelet: str = "db4", modes: int = 16,
                 boundary: str = "symmetric"):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"WaveletConv: dim must be 1 or 2, got {dim!r}")
        if wavelet_levels < 1 or modes < 1 or channels < 1:
            raise ValueError(f"WaveletConv: channels, wavelet_levels and modes must be positive, got "
                             f"{channels}, {wavelet_levels}, {modes}")
        if wavelet not in pywt.wavelist(kind="discrete"):
            raise ValueError(f"WaveletConv: unknown discrete wavelet {wavelet!r}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"WaveletConv: unknown boundary {boundary!r}; known: {list(BOUNDARIES)}")
        if boundary == "periodic" and not pywt.Wavelet(wavelet).orthogonal:
            raise ValueError(f"WaveletConv: the periodic transform needs an orthogonal wavelet; {wavelet!r} is not")
        self.channels, self.dim, self.wavelet_levels = channels, dim, wavelet_levels
        self.wavelet, self.modes = wavelet, modes
        self.boundary = boundary
        bands = 2 if dim == 1 else 4  # approximation + the coarsest wavelet_levels's detail bands
        blocks = 1 if dim == 1 else 2  # 2D: non-negative and negative frequencies of the first axis
        scale = 1.0 / (channels * channels)
        shape = (bands, blocks, channels, channels) + (modes,) * dim
        self.weight = nn.Parameter(scale * torch.randn(shape, dtype=torch.cfloat))

    def _spectral(self, c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.dim == 1:
            n = c.shape[-1]
            ft = torch.fft.rfft(c)
            m = min(self.modes, ft.shape[-1])
            out = torch.zeros(c.shape[0], self.channels, ft.shape[-1], dtype=ft.dtype, device=c.device)
            out[..., :m] = torch.einsum("bix,iox->box", ft[..., :m], w[0, ..., :m].to(ft.dtype))
            return torch.fft.irfft(out, n=n)
        n1, n2 = c.shape[-2:]
        ft = torch.fft.rfft2(c)
        m1, m2 = min(self.modes, n1 // 2 + 1), min(self.modes, ft.shape[-1])
        out = torch.zeros(c.shape[0], self.channels, n1, ft.shape[-1], dtype=ft.dtype, device=c.device)
        out[..., :m1, :m2] = torch.einsum("bixy,ioxy->boxy", ft[..., :m1, :m2], w[0, ..., :m1, :m2].to(ft.dtype))
        out[..., n1 - m1:, :m2] = torch.einsum("bixy,ioxy->boxy", ft[..., n1 - m1:, :m2],
                                                w[1, ..., :m1, :m2].to(ft.dtype))
        return torch.fft.irfft2(out, s=(n1, n2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, self.dim, self.channels, "WaveletConv")
        w = self.weight
        periodic = self.boundary == "periodic"
        if self.dim == 1:
            coeffs = periodized_wavedec(x, self.wavelet, self.wavelet_levels) if periodic else \
                ptwt.wavedec(x, self.wavelet, mode=self.boundary, level=self.wavelet_levels)
            coeffs = [self._spectral(coeffs[0], w[0]), self._spectral(coeffs[1], w[1])] + list(coeffs[2:])
            out = periodized_waverec(coeffs, self.wavelet) if periodic else ptwt.waverec(coeffs, self.wavelet)
            return out[..., :x.shape[-1]]
        coeffs = periodized_wavedec2(x, self.wavelet, self.wavelet_levels) if periodic else \
            ptwt.wavedec2(x, self.wavelet, mode=self.boundary, level=self.wavelet_levels)
        approx = self._spectral(coeffs[0], w[0])
        details = [self._spectral(c, w[1 + i]) for i, c in enumerate(coeffs[1])]
        details = tuple(details) if periodic else type(coeffs[1])(*details)  # ptwt wants its named tuple
        coeffs = (approx, details, *coeffs[2:])
        out = periodized_waverec2(list(coeffs), self.wavelet) if periodic else ptwt.waverec2(coeffs, self.wavelet)
        return out[..., :x.shape[-2], :x.shape[-1]]


class WNO(nn.Module):
    """Wavelet neural operator: lift (with the grid coordinates) → ``depth`` wavelet integral
    layers v ← σ(K v + W v) → projection.

    Input ``(batch, in_channels, *grid)``, output ``(batch, out_channels, *grid)`` on the same grid. With
    ``boundary="periodic"`` the grid is taken as periodic (points i/n) and each coordinate
    enters as (cos 2πx, sin 2πx): a coordinate x ∈ [0, 1] jumps from 1 to 0 across the seam.
    Its wavelet layers use the exact periodised transform, so each layer commutes with circular
    shifts by multiples of 2^wavelet_levels points.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int, width: int = 32, depth: int = 4,
                 wavelet_levels: int = 3, wavelet: str = "db4", modes: int = 16, boundary: str = "symmetric"):
        super().__init__()
        self.dim, self.in_channels = dim, in_channels
        self.periodic = boundary == "periodic"
        self.lift = nn.Linear(in_channels + (2 * dim if self.periodic else dim), width)
        self.convs = nn.ModuleList(WaveletConv(width, dim, wavelet_levels, wavelet, modes, boundary)
                                   for _ in range(depth))
        self.pointwise = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.project = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, out_channels))

    def coordinates(self, shape, dtype=None, device=None) -> torch.Tensor:
        """The coordinate channels on a grid of ``shape``, ``(1, dim or 2·dim, *shape)``."""
        if self.periodic:
            axes = [2 * math.pi * torch.arange(n, dtype=dtype, device=device) / n for n in shape]
        else:
            axes = [torch.linspace(0, 1, n, dtype=dtype, device=device) for n in shape]
        grid = torch.meshgrid(*axes, indexing="ij")
        if self.periodic:
            grid = [f(t) for t in grid for f in (torch.cos, torch.sin)]
        return torch.stack(grid)[None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, self.dim, self.in_channels, "WNO")
        coords = self.coordinates(x.shape[2:], x.dtype, x.device).expand(x.shape[0], -1, *x.shape[2:])
        v = self.lift(torch.cat([x, coords], 1).movedim(1, -1)).movedim(-1, 1)
        for i, (conv, lin) in enumerate(zip(self.convs, self.pointwise)):
            v = conv(v) + lin(v.movedim(1, -1)).movedim(-1, 1)
            if i < len(self.convs) - 1:
                v = nn.functional.gelu(v)
        return self.project(v.movedim(1, -1)).movedim(-1, 1)
