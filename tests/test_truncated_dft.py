"""The DFT-matrix Fourier path of the F-FNO equals torch.fft (values and gradients)."""

import pytest
import torch

from fem_ms_torch.operators.truncated_dft import spectral_mix_along


def _reference_mix(x, axis, w):
    n, k = x.shape[axis], min(w.shape[-1], x.shape[axis] // 2 + 1)
    xf = torch.fft.rfft(x, dim=axis, norm="ortho").movedim(axis, -1)
    yf = torch.zeros(xf.shape[:1] + (w.shape[1],) + xf.shape[2:], dtype=xf.dtype)
    yf[..., :k] = torch.einsum("bi...k,iok->bo...k", xf[..., :k], w[..., :k])
    return torch.fft.irfft(yf.movedim(-1, axis), n=n, dim=axis, norm="ortho")


@pytest.mark.parametrize("shape,axis", [((2, 3, 9, 12), 2), ((2, 3, 9, 12), 3), ((2, 3, 6, 5, 7), 4),
                                        ((2, 3, 8, 50), 3), ((2, 3, 51, 4), 2)])
@pytest.mark.parametrize("k_of_n", [lambda n: 1, lambda n: 3, lambda n: n // 2, lambda n: n // 2 + 1,
                                    lambda n: n])  # the last: more modes than the axis has
def test_spectral_mix_equals_fft_reference_with_gradients(shape, axis, k_of_n):
    """Odd and even axes, from one mode up to the Nyquist mode (whose imaginary part irfft drops)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(3, 5, k_of_n(shape[axis]), dtype=torch.complex128, generator=gen, requires_grad=True)
    ours, ref = spectral_mix_along(x, axis, w), _reference_mix(x, axis, w)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    probe = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    g_ours = torch.autograd.grad((ours * probe).sum(), (x, w))
    g_ref = torch.autograd.grad((ref * probe).sum(), (x, w))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
