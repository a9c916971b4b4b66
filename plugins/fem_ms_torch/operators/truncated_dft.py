"""The lowest Fourier modes along one axis as dense matrix products (real arithmetic).

A Fourier layer keeps only the lowest ``k`` of the ``n // 2 + 1`` frequencies of an axis. For
the short axes of GMsFEM patches (n ≈ 25…101, k ≈ 8…16) computing just those ``k`` modes by a
``(n × k)`` DFT matrix is several times faster on a CPU than ``torch.fft.rfft``, which computes
every frequency and needs the axis moved to the end and back, and it runs in BLAS (batched
GEMM), which also serves bfloat16 autocast. The matrices are exact trigonometric values, so
the result equals ``rfft(x, norm="ortho")[..., :k]`` and ``irfft(..., n, norm="ortho")`` of the
zero-padded spectrum to rounding (tested).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = ["spectral_mix_along"]


@lru_cache(maxsize=64)
def _matrices(n: int, k: int, device: str, dtype: torch.dtype):
    """Forward (n, k) cos/−sin matrices and inverse (k, n) matrices for ``norm="ortho"``."""
    j = torch.arange(n, dtype=torch.float64)
    f = torch.arange(k, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(j, f) / n
    scale = 1 / math.sqrt(n)
    fwd_re, fwd_im = torch.cos(angle) * scale, -torch.sin(angle) * scale
    # irfft reads each kept frequency twice (k and n - k) except k = 0 and the Nyquist frequency,
    # and ignores their imaginary parts.
    weight = torch.full((k,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n % 2 == 0 and k > n // 2:
        weight[n // 2] = 1.0
    inv_re = (torch.cos(angle) * weight * scale).T
    inv_im = (-torch.sin(angle) * weight * scale).T
    inv_im[0] = 0.0
    if n % 2 == 0 and k > n // 2:
        inv_im[n // 2] = 0.0
    return tuple(m.to(device=device, dtype=dtype).contiguous() for m in (fwd_re, fwd_im, inv_re, inv_im))


def spectral_mix_along(x: torch.Tensor, axis: int, weight: torch.Tensor) -> torch.Tensor:
    """``irfft(W · rfft(x)[:k])`` along ``axis`` for complex weights ``weight`` (C_in, C_out, k).

    ``x`` is ``(batch, C_in, *grid)``; returns ``(batch, C_out, *grid)`` stored channels-last (the
    memory order of ``x.movedim(1, -1)``), the layout in which the pointwise layers around it
    run without copies. Three GEMMs: the truncated DFT applied from the left to the channels-last
    field (no transposes of the field), one (2·C_in × 2·C_out) real matrix per mode for the complex
    channel mixing (only the small (…, 2k) spectra are permuted), and the inverse DFT.
    """
    grid = x.shape[2:]
    g = axis - 2
    n = grid[g]
    k = min(weight.shape[-1], n // 2 + 1)
    fwd_re, fwd_im, inv_re, inv_im = _matrices(n, k, str(x.device), x.dtype)
    batch, c_in, c_out = x.shape[0], x.shape[1], weight.shape[1]
    before, after = batch * math.prod(grid[:g]), math.prod(grid[g + 1:])
    field = x.movedim(1, -1).reshape(before, n, after * c_in)  # a view when x is channels-last
    spectrum = torch.cat([fwd_re, fwd_im], 1).T @ field  # (before, 2k, after·C_in)
    wr, wi = weight.real[..., :k], weight.imag[..., :k]
    # [re, im] @ [[wr, wi], [-wi, wr]] is the complex product, per mode
    mix = torch.cat([torch.cat([wr, wi], 1), torch.cat([-wi, wr], 1)], 0).permute(2, 0, 1).to(x.dtype)
    by_mode = spectrum.reshape(before, 2, k, after, c_in).permute(2, 0, 3, 1, 4).reshape(k, -1, 2 * c_in)
    mixed = torch.bmm(by_mode, mix).reshape(k, before, after, 2, c_out).permute(1, 3, 0, 2, 4)
    out = torch.cat([inv_re, inv_im], 0).T @ mixed.reshape(before, 2 * k, after * c_out)
    return out.reshape(batch, *grid, c_out).movedim(-1, 1)
