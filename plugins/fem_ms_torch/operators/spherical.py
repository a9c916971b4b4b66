"""Local operators on the sphere: the spherical DISCO convolution and the spherical FNO with a
local-integral branch beside each spherical convolution (Liu-Schiaffini et al., 2024, §4: SFNO +
local layers on shallow water), registered as model "localsfno".

The operator is torch-harmonics' ``DiscreteContinuousConvS2`` (Ocampo et al., 2023): a kernel
κ(θ) = Σ_k W_k ψ_k supported within the geodesic distance ``theta_cutoff`` of each output point,
integrated against the input by the grid's quadrature. Its basis functions, quadrature and
normalization are torch-harmonics' own (the ``psi`` tensor it precomputes); what is written here
is the contraction with the input, for two reasons:

* torch-harmonics fixes one input and one output shape per layer; here the same weights W are
  applied on any equiangular grid (``psi`` is precomputed, and cached, per grid), which the
  resolution-transfer test needs (train at 32 × 64, test at 64 × 128);
* its CPU path (``_disco_s2_contraction_torch``, the reference for its CUDA kernel) rolls the
  input once per output longitude: on a CPU one such layer costs several times a whole SFNO
  step, so an equal-CPU-time comparison would measure that loop and not the operator.

The operator is a circular correlation in longitude (``psi`` for output longitude p is the one
for longitude 0 shifted by p), so it is applied here by an FFT along longitude: for each
longitudinal frequency, one small matrix over latitudes. Same discrete operator, to rounding
(tested against ``DiscreteContinuousConvS2``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import RegisteredModel

__all__ = ["SphericalDiscoConv", "LocalSFNO"]


class SphericalDiscoConv(nn.Module):
    """DISCO convolution on the sphere, applicable on any equiangular grid with the same weights.

    Parameters
    ----------
    in_channels, out_channels : int
    theta_cutoff : float
        Support radius of the kernel, a geodesic angle in radians (fixed under refinement).
    kernel_shape : tuple of int
        torch-harmonics' filter basis shape (for ``"piecewise linear"``: radial, angular).
    basis_type : str
        torch-harmonics' filter basis (``"piecewise linear"``, ``"morlet"``, ``"zernike"``).
    grid : str
        The input's and output's grid (``"equiangular"``: poles included, as the datasets').
    """

    def __init__(self, in_channels: int, out_channels: int, theta_cutoff: float, kernel_shape=(3, 4),
                 basis_type: str = "piecewise linear", grid: str = "equiangular"):
        super().__init__()
        if not 0 < theta_cutoff < math.pi:
            raise ValueError(f"theta_cutoff must be an angle in (0, π), got {theta_cutoff!r}")
        from torch_harmonics.filter_basis import get_filter_basis

        self.theta_cutoff, self.kernel_shape = float(theta_cutoff), tuple(int(k) for k in kernel_shape)
        self.basis_type, self.grid = basis_type, grid
        size = get_filter_basis(kernel_shape=self.kernel_shape, basis_type=basis_type).kernel_size
        # torch-harmonics' initialization of DiscreteContinuousConvS2
        self.weight = nn.Parameter(math.sqrt(1.0 / (in_channels * size)) * torch.randn(out_channels, in_channels, size))
        self._spectra: dict = {}

    def reference(self, shape) -> nn.Module:
        """torch-harmonics' ``DiscreteContinuousConvS2`` on a grid of ``shape`` = (nlat, nlon),
        sharing this layer's weight: the operator this layer applies."""
        from torch_harmonics import DiscreteContinuousConvS2

        conv = DiscreteContinuousConvS2(self.weight.shape[1], self.weight.shape[0], tuple(shape), tuple(shape),
                                        self.kernel_shape, basis_type=self.basis_type, grid_in=self.grid,
                                        grid_out=self.grid, bias=False, theta_cutoff=self.theta_cutoff)
        conv.weight = self.weight
        return conv

    def spectrum(self, shape, dtype=torch.float32, device=None) -> torch.Tensor:
        """conj(rfft) along longitude of torch-harmonics' ``psi`` for output longitude 0:
        ``(K, nlat_out, nlat_in, nlon//2 + 1)``, cached per grid."""
        key = (tuple(shape), dtype, str(device))
        if key not in self._spectra:
            nlat, nlon = shape
            psi = self.reference(shape).psi.to_dense().to(torch.float64).reshape(-1, nlat, nlat, nlon)
            complex_dtype = (torch.ones((), dtype=dtype) * 1j).dtype
            self._spectra[key] = torch.fft.rfft(psi, dim=-1).conj().to(dtype=complex_dtype, device=device)
        return self._spectra[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, nlat, nlon)`` → ``(batch, out_channels, nlat, nlon)``."""
        if x.dim() != 4 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected (batch, {self.weight.shape[1]}, nlat, nlon), got {tuple(x.shape)}")
        nlon = x.shape[-1]
        psi_hat = self.spectrum(tuple(x.shape[2:]), x.dtype, x.device)
        # y[b, c, k, i, p] = Σ_{i', j} psi[k, i, i', j] x[b, c, i', j + p]: a correlation in longitude
        x_hat = torch.fft.rfft(x, dim=-1)
        y_hat = torch.einsum("kiIm,bcIm->bckim", psi_hat, x_hat)
        y_hat = torch.einsum("bckim,ock->boim", y_hat, self.weight.to(y_hat.dtype))
        return torch.fft.irfft(y_hat, n=nlon, dim=-1)


class _SpectralWithLocal(nn.Module):
    """A spherical convolution of neuraloperator's ``FNOBlocks`` with a DISCO branch added to its
    output (z ← σ(W z + K_spherical z + K_DISCO z) in the block); the block's skip connections
    call ``transform``, which is the spherical convolution's."""

    def __init__(self, spectral: nn.Module, local: SphericalDiscoConv):
        super().__init__()
        self.spectral, self.local = spectral, local

    def transform(self, x, output_shape=None):
        return self.spectral.transform(x, output_shape=output_shape)

    def forward(self, x, output_shape=None):
        if output_shape is not None and tuple(output_shape) != tuple(x.shape[2:]):
            raise ValueError(f"the DISCO branch maps a grid to itself; got output_shape {output_shape} for "
                             f"input {tuple(x.shape[2:])}")
        return self.spectral(x, output_shape=output_shape) + self.local(x)


class LocalSFNO(RegisteredModel, name="localsfno"):
    """neuraloperator's ``SFNO`` with a spherical DISCO branch beside the spherical convolution
    of every layer (``disco=False``: that SFNO unchanged).

    Parameters
    ----------
    in_channels, out_channels : int
    width, depth : int
        neuraloperator's ``hidden_channels`` and ``n_layers``.
    modes : tuple of int
        neuraloperator's ``n_modes`` (spherical harmonic degrees, twice the orders kept).
    disco : bool
    theta_cutoff, kernel_shape, basis_type
        The DISCO kernel (see :class:`SphericalDiscoConv`).
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, depth: int = 4, modes=(16, 32),
                 disco: bool = True, theta_cutoff: float = 0.2, kernel_shape=(3, 4),
                 basis_type: str = "piecewise linear"):
        super().__init__()
        from neuralop.models import SFNO

        self.sfno = SFNO(n_modes=tuple(modes), in_channels=in_channels, out_channels=out_channels,
                         hidden_channels=width, n_layers=depth, positional_embedding=None)
        if disco:
            convs = self.sfno.fno_blocks.convs
            for i, conv in enumerate(convs):
                convs[i] = _SpectralWithLocal(conv, SphericalDiscoConv(width, width, theta_cutoff, kernel_shape,
                                                                       basis_type))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels, nlat, nlon)`` → ``(batch, out_channels, nlat, nlon)``."""
        return self.sfno(x)
