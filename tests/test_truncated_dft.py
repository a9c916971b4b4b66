"""The DFT-matrix Fourier path of the F-FNO equals torch.fft (values and gradients)."""

import pytest
import torch

from fem_ms_torch.operators.truncated_dft import spectral_mix_along, truncated_irfft, truncated_rfft


@pytest.mark.parametrize("n", [7, 8, 50, 51])
@pytest.mark.parametrize("k_of_n", [lambda n: 1, lambda n: 3, lambda n: n // 2, lambda n: n // 2 + 1])
def test_truncated_transforms_equal_rfft_and_irfft(n, k_of_n):
    k = k_of_n(n)
    gen = torch.Generator().manual_seed(n + k)
    x = torch.randn(3, 4, n, dtype=torch.float64, generator=gen)
    re, im = truncated_rfft(x, k)
    ref = torch.fft.rfft(x, norm="ortho")[..., :k]
    torch.testing.assert_close(re, ref.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(im, ref.imag, rtol=0, atol=1e-12)
    # an arbitrary spectrum, including imaginary parts irfft must ignore (mode 0, Nyquist)
    spec = torch.randn(3, 4, k, dtype=torch.complex128, generator=gen)
    padded = torch.zeros(3, 4, n // 2 + 1, dtype=torch.complex128)
    padded[..., :k] = spec
    torch.testing.assert_close(truncated_irfft(spec.real.contiguous(), spec.imag.contiguous(), n),
                               torch.fft.irfft(padded, n=n, norm="ortho"), rtol=0, atol=1e-12)


def _reference_mix(x, axis, w):
    n, k = x.shape[axis], min(w.shape[-1], x.shape[axis] // 2 + 1)
    xf = torch.fft.rfft(x, dim=axis, norm="ortho").movedim(axis, -1)
    yf = torch.zeros(xf.shape[:1] + (w.shape[1],) + xf.shape[2:], dtype=xf.dtype)
    yf[..., :k] = torch.einsum("bi...k,iok->bo...k", xf[..., :k], w[..., :k])
    return torch.fft.irfft(yf.movedim(-1, axis), n=n, dim=axis, norm="ortho")


@pytest.mark.parametrize("shape,axis", [((2, 3, 9, 12), 2), ((2, 3, 9, 12), 3), ((2, 3, 6, 5, 7), 4)])
def test_spectral_mix_equals_fft_reference_with_gradients(shape, axis):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(3, 5, 4, dtype=torch.complex128, generator=gen, requires_grad=True)
    ours, ref = spectral_mix_along(x, axis, w), _reference_mix(x, axis, w)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    probe = torch.randn(ref.shape, dtype=torch.float64, generator=gen)
    g_ours = torch.autograd.grad((ours * probe).sum(), (x, w))
    g_ref = torch.autograd.grad((ref * probe).sum(), (x, w))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_too_many_modes_for_the_axis_is_an_error():
    with pytest.raises(ValueError, match="do not fit"):
        truncated_irfft(torch.zeros(1, 6), torch.zeros(1, 6), 8)
