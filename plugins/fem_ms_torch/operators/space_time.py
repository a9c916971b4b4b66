"""Li et al.'s FNO-3d (space-time Fourier neural operator) as neuraloperator's ``FNO``.

Li et al. (2021) learn the vorticity up to t = T_in → the vorticity up to T with one 3-d Fourier
operator over (x, y, t): the T_in input snapshots become channels, repeated at every output
time (:class:`fem_ms_torch.mlmc.levels.SpaceTimeLevel` arranges a batch so), the grid coordinates
are appended, and the spectral convolutions mix the three axes. neuraloperator's ``FNO`` takes
three-axis ``n_modes`` and does each of these steps (its ``positional_embedding="grid"``
appends the coordinates, ``domain_padding`` pads an axis), so this module only sets its
arguments: it is built through the registry (``"neuralop:FNO"``), and a checkpoint stores its
record like any other registered model's.
"""

from __future__ import annotations

from torch import nn

from ..registry import build_operator

__all__ = ["space_time_fno"]


def space_time_fno(input_times: int, out_channels: int = 1, *, width: int = 20, depth: int = 4, modes: int = 8,
                   time_modes: int | None = None, time_padding: float = 0.25) -> nn.Module:
    """An FNO-3d: ``(batch, input_times, n, n, T_out)`` → ``(batch, out_channels, n, n, T_out)``.

    Li et al.'s layers have no channel MLP after each spectral convolution, and neither has
    this one (``use_channel_mlp=False``).

    Parameters
    ----------
    input_times : int
        T_in, the input snapshots (channels of the input).
    out_channels : int
        Fields predicted at each output time.
    width, depth : int
        Channels and Fourier layers (Li et al.: 20 and 4).
    modes, time_modes : int
        Fourier modes kept along x and y, and along t (default ``modes``); neuraloperator
        counts both signs, so Li et al.'s 8 modes per axis are 16 here. On a grid with fewer
        frequencies the layer keeps what the grid has: one model serves every resolution.
    time_padding : float
        Zero padding of the time axis, as a fraction of its length, so that the convolution
        does not wrap the last output time onto the first (Li et al. pad 6 of 40).

    Returns
    -------
    torch.nn.Module
        neuraloperator's ``FNO``, carrying its registry record (``"neuralop:FNO"``).
    """
    for name, value in (("input_times", input_times), ("out_channels", out_channels), ("width", width),
                        ("depth", depth), ("modes", modes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"space_time_fno: {name} must be a positive integer, got {value!r}")
    time_modes = modes if time_modes is None else time_modes
    if isinstance(time_modes, bool) or not isinstance(time_modes, int) or time_modes < 1:
        raise ValueError(f"space_time_fno: time_modes must be a positive integer, got {time_modes!r}")
    if not 0 <= time_padding < 1:
        raise ValueError(f"space_time_fno: time_padding must lie in [0, 1), got {time_padding!r}")
    return build_operator("neuralop:FNO", input_times, out_channels, 3, width=width, depth=depth,
                          modes=[modes, modes, time_modes], domain_padding=[0.0, 0.0, float(time_padding)],
                          use_channel_mlp=False)
