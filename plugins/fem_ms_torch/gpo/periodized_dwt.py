"""Periodised discrete wavelet transform in torch, 1D and 2D (PyWavelets' ``mode="periodization"``).

Written here because ptwt, the differentiable transform used elsewhere, has no periodisation:
its ``"periodic"`` mode pads the signal periodically and returns ⌊(n + L − 1)/2⌋ coefficients per
level (L the filter length), more than n/2. Those extra coefficients repeat others, and once a
layer changes the coefficients the copies disagree, so the reconstruction is no longer periodic:
on the Burgers data (a periodic domain) this showed as an error spike at the seam x = 0.

With periodisation a signal of even length n has exactly n/2 approximation and n/2 detail
coefficients, the transform of an orthogonal wavelet is an orthogonal map, and shifting the
signal by 2 shifts the coefficients by 1 — circularly, so Fourier layers on the coefficients
see a periodic signal. Each level is a circular convolution with the decomposition filters and
a stride of 2 (``conv1d`` on circularly padded input); reconstruction is its adjoint, which for
an orthogonal wavelet is its inverse. Coefficients agree with PyWavelets' ``wavedec``/``wavedec2``
with ``mode="periodization"`` (tested).
"""

from __future__ import annotations

import pywt
import torch
from torch.nn import functional as F

__all__ = ["periodized_wavedec", "periodized_waverec", "periodized_wavedec2", "periodized_waverec2"]


def _filters(wavelet: str, like: torch.Tensor) -> torch.Tensor:
    w = pywt.Wavelet(wavelet)
    if not w.orthogonal:
        raise ValueError(f"periodised transforms need an orthogonal wavelet; {wavelet!r} is not")
    bank = torch.tensor([w.dec_lo[::-1], w.dec_hi[::-1]], dtype=like.dtype, device=like.device)
    return bank[:, None]  # (2, 1, L): conv1d correlates, so the reversed filters convolve


def _analysis(x: torch.Tensor, bank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One level along the last axis: (approximation, detail), each (..., n/2)."""
    n, L = x.shape[-1], bank.shape[-1]
    if n % 2:
        raise ValueError(f"a periodised wavelet level needs an even number of points, got {n}")
    # PyWavelets' alignment: output k sums taps j at samples 2k + j - (L/2 - 1), taken modulo n
    # (indices rather than F.pad: the filter may be longer than the signal at coarse levels)
    wrap = torch.arange(-(L // 2 - 1), n + L // 2, device=x.device) % n
    out = F.conv1d(x.reshape(-1, 1, n)[..., wrap], bank, stride=2)
    return out[:, 0].reshape(*x.shape[:-1], n // 2), out[:, 1].reshape(*x.shape[:-1], n // 2)


def _synthesis(approx: torch.Tensor, detail: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """The adjoint (= inverse, for an orthogonal wavelet) of :func:`_analysis`."""
    h, L = approx.shape[-1], bank.shape[-1]
    n = 2 * h
    both = torch.stack([approx, detail], -2).reshape(-1, 2, h)
    full = F.conv_transpose1d(both, bank, stride=2)[:, 0]  # on the n + L - 2 padded samples used
    wraps = -(-full.shape[-1] // n)
    folded = F.pad(full, (0, wraps * n - full.shape[-1])).reshape(-1, wraps, n).sum(1)  # undo the wrap
    return torch.roll(folded, -(L // 2 - 1), -1).reshape(*approx.shape[:-1], n)


def _check_levels(shape, level: int) -> None:
    for n in shape:
        if n % 2**level:
            raise ValueError(f"a periodised wavelet transform of {level} levels needs grid sizes divisible by "
                             f"{2**level}, got {tuple(shape)}")


def periodized_wavedec(x: torch.Tensor, wavelet: str, level: int) -> list[torch.Tensor]:
    """[cA_level, cD_level, …, cD_1] of ``x`` (..., n) along its last axis, n divisible by 2^level."""
    _check_levels(x.shape[-1:], level)
    bank = _filters(wavelet, x)
    details = []
    for _ in range(level):
        x, d = _analysis(x, bank)
        details.append(d)
    return [x, *details[::-1]]


def periodized_waverec(coeffs: list[torch.Tensor], wavelet: str) -> torch.Tensor:
    """The inverse of :func:`periodized_wavedec`."""
    bank = _filters(wavelet, coeffs[0])
    x = coeffs[0]
    for d in coeffs[1:]:
        x = _synthesis(x, d, bank)
    return x


def _along(fn, x: torch.Tensor, axis: int):
    """Apply a last-axis transform along ``axis`` of x."""
    out = fn(x.movedim(axis, -1))
    return tuple(t.movedim(-1, axis) for t in out) if isinstance(out, tuple) else out.movedim(-1, axis)


def periodized_wavedec2(x: torch.Tensor, wavelet: str, level: int) -> list:
    """[cA, (cH, cV, cD)_level, …, (cH, cV, cD)_1] of ``x`` (..., n1, n2) over its last two axes,
    in PyWavelets' order (cH: detail along the first of them, approximation along the second)."""
    _check_levels(x.shape[-2:], level)
    bank = _filters(wavelet, x)
    details = []
    for _ in range(level):
        lo, hi = _along(lambda t: _analysis(t, bank), x, -1)
        x, c_h = _along(lambda t: _analysis(t, bank), lo, -2)
        c_v, c_d = _along(lambda t: _analysis(t, bank), hi, -2)
        details.append((c_h, c_v, c_d))
    return [x, *details[::-1]]


def periodized_waverec2(coeffs: list, wavelet: str) -> torch.Tensor:
    """The inverse of :func:`periodized_wavedec2`."""
    bank = _filters(wavelet, coeffs[0])
    x = coeffs[0]
    for c_h, c_v, c_d in coeffs[1:]:
        lo = _synthesis(x.movedim(-2, -1), c_h.movedim(-2, -1), bank).movedim(-1, -2)
        hi = _synthesis(c_v.movedim(-2, -1), c_d.movedim(-2, -1), bank).movedim(-1, -2)
        x = _synthesis(lo, hi, bank)
    return x
