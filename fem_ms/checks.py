"""Argument checks shared by the public API: each raises naming the argument and the value.

``bool`` is refused wherever a number is asked for (``True`` is an ``int`` in Python, and a
number of cells or a tolerance of ``True`` is a mistake, not a 1).
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_int", "check_real"]


def check_int(name: str, value, low: int = 1) -> int:
    """``value`` as an int if it is an integer ≥ ``low``; else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        bound = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def check_real(name: str, value, *, positive: bool = False, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number (``positive``: > 0; in [``low``,
    ``high``], or (``low``, ``high``] with ``low_open``); else ValueError naming ``name``."""
    bounds = ([f"> {low:g}" if low_open else f">= {low:g}"] if low is not None else []) + \
        ([f"<= {high:g}"] if high is not None else [])
    if positive:
        what = "a positive finite number"
    else:
        what = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    value = float(value)
    if (positive and not value > 0) or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and value > high):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value
