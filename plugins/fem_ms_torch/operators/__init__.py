"""Neural operator layers and models (torch)."""

from .ffno import FFNO, FactorizedSpectralConv

__all__ = ["FFNO", "FactorizedSpectralConv"]
