"""Neural operator layers and models (torch), chosen by name for checkpoints."""

from .ffno import FFNO, FactorizedSpectralConv
from .fno import FNO, SpectralConv

ARCHITECTURES = {"ffno": FFNO, "fno": FNO}

__all__ = ["ARCHITECTURES", "FFNO", "FNO", "FactorizedSpectralConv", "SpectralConv"]
