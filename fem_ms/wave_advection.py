"""1D linear advection of a square wave with a parabolic bump on the periodic unit interval.

    u_t + ν u_x = 0,   x ∈ [0, 1) periodic,   u(x, 0) = u_0(x),

the LoGoS-GPO paper's wave-advection case (its eq. 35):

    ``u_0(x) = h 1[|x − c| ≤ ω/2] + √max(h² − (a (x − c))², 0)``,

a square wave of height h and width ω centred at c, with a half-ellipse bump (height h,
half-width h/a) on top of it at the same centre; distances to c are taken on the circle. The
exact solution is the profile transported by ν t, u(x, t) = u_0(x − ν t) (periodic), so the
dataset is exact: the analytic profile is *evaluated* at the shifted points. A sub-grid shift is
not an interpolation of the grid values (which would smear the jumps).

The paper samples c ∈ [0.3, 0.7], ω ∈ [0.3, 0.6], h ∈ [1, 2] and stores 200 points at T = 0.5;
it names neither the advection speed ν nor the bump's steepness a. Our choices (the defaults of
:class:`~fem_ms.data.config.WaveAdvectionConfig`): ν = 1 and a = 10, so the bump's half-width h/a ∈
[0.1, 0.2] sits mostly on the square's top (half-width ω/2 ∈ [0.15, 0.3]).

Written here because the solution is a closed formula: there is nothing to solve.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["square_parabolic_wave", "advected_wave", "wave_mass", "random_wave_parameters"]


def _check_profile(center, width, height, sharpness, who: str) -> None:
    for name, value in (("center", center), ("width", width), ("height", height), ("sharpness", sharpness)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not math.isfinite(value):
            raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    if not 0 < width < 1:
        raise ValueError(f"{who}: width must be in (0, 1) (the period is 1), got {width!r}")
    if not height > 0:
        raise ValueError(f"{who}: height must be positive, got {height!r}")
    # the bump's support [c − h/a, c + h/a] must not wrap onto itself on the unit circle
    if not sharpness > 2 * height:
        raise ValueError(f"{who}: sharpness must exceed 2·height = {2 * height!r} so that the bump's support "
                         f"(half-width height/sharpness) is shorter than the period, got {sharpness!r}")


def square_parabolic_wave(x, center: float, width: float, height: float, sharpness: float = 10.0) -> np.ndarray:
    """``u_0(x) = h 1[|x − c| ≤ ω/2] + √max(h² − (a(x − c))², 0)`` on the periodic unit interval.

    Parameters
    ----------
    x : array_like
        Points (any real values; the profile has period 1).
    center, width, height : float
        c, ω ∈ (0, 1) and h > 0.
    sharpness : float
        a > 2h: the bump's half-width is h/a.

    Returns
    -------
    numpy.ndarray
        The profile at ``x`` (same shape).
    """
    _check_profile(center, width, height, sharpness, "square_parabolic_wave")
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)):
        raise ValueError("square_parabolic_wave: x has non-finite values")
    r = np.mod(x - center + 0.5, 1.0) - 0.5  # the signed distance to c on the circle, in [−1/2, 1/2)
    square = height * (np.abs(r) <= width / 2)
    bump = np.sqrt(np.maximum(height**2 - (sharpness * r) ** 2, 0.0))
    return square + bump


def advected_wave(x, t: float, speed: float, center: float, width: float, height: float,
                  sharpness: float = 10.0) -> np.ndarray:
    """The exact solution u(x, t) = u_0(x − ν t) of u_t + ν u_x = 0 (periodic), u_0 of
    :func:`square_parabolic_wave`; exact at every point for any shift, sub-grid ones included."""
    for name, value in (("t", t), ("speed", speed)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not math.isfinite(value):
            raise ValueError(f"advected_wave: {name} must be a finite number, got {value!r}")
    if t < 0:
        raise ValueError(f"advected_wave: t must be non-negative, got {t!r}")
    # the shift modulo the period, so that whole periods cost no rounding of x
    return square_parabolic_wave(np.asarray(x, dtype=float) - math.fmod(speed * t, 1.0), center, width, height,
                                 sharpness)


def wave_mass(width: float, height: float, sharpness: float = 10.0) -> float:
    """∫_0^1 u_0 dx = h ω + (π/2) h²/a (square plus half-ellipse), conserved by the advection."""
    _check_profile(0.5, width, height, sharpness, "wave_mass")
    return height * width + 0.5 * math.pi * height**2 / sharpness


def random_wave_parameters(rng: np.random.Generator, center=(0.3, 0.7), width=(0.3, 0.6),
                           height=(1.0, 2.0)) -> tuple[float, float, float]:
    """(c, ω, h) drawn independently and uniformly from the ranges (the paper's by default)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"random_wave_parameters: rng must be a numpy Generator, got {type(rng).__name__}")
    out = []
    for name, (lo, hi) in (("center", center), ("width", width), ("height", height)):
        if not lo <= hi:
            raise ValueError(f"random_wave_parameters: {name} range must have low <= high, got {(lo, hi)!r}")
        out.append(float(rng.uniform(lo, hi)))
    return tuple(out)
