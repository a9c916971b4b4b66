"""Local neural operators (Liu-Schiaffini et al., 2024): the FNO and the F-FNO with their
differential and local-integral (DISCO) branches switched on, registered as models "localno" and
"localffno" (:mod:`..registry`) so that ``train_basis(..., architecture=...)`` and checkpoints use them."""

from __future__ import annotations

from .ffno import FFNO
from .fno import FNO

__all__ = ["LocalNO", "LocalFFNO"]


class LocalNO(FNO, name="localno"):
    """LocalNO layer z ← GELU(W z + K_Fourier z + K_differential z + K_DISCO z).

    Same arguments as ``FNO``; ``differential`` and ``disco`` default to on.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 32, depth: int = 4,
                 modes=12, differential: bool = True, disco: bool = True, disco_radius: float = 0.075,
                 disco_basis: str | None = None, disco_kernel_shape=None, periodic: bool = False):
        super().__init__(in_channels, out_channels, dim, width, depth, modes, differential, disco, disco_radius,
                         disco_basis, disco_kernel_shape, periodic)


class LocalFFNO(FFNO, name="localffno"):
    """F-FNO whose layers add the differential and DISCO branches to the factorized Fourier one.

    Same arguments as ``FFNO``; ``differential`` and ``disco`` default to on.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, width: int = 32, depth: int = 4,
                 modes=12, share_weights: bool = False, differential: bool = True, disco: bool = True,
                 disco_radius: float = 0.075, disco_basis: str | None = None, disco_kernel_shape=None):
        super().__init__(in_channels, out_channels, dim, width, depth, modes, share_weights, differential, disco,
                         disco_radius, disco_basis, disco_kernel_shape)
