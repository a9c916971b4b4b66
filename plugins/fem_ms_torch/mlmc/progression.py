"""Samples and batch sizes per level of an MLMC training run (Rowbottom et al., §2.2).

Levels are numbered 0 (coarsest) … L (finest). Two sequences describe a run:

* the **sample counts** N_l, how many training samples level l may draw from (the data a
  level has): a geometric progression N_l = N_0 δ^(-l), a prescribed non-increasing list, or
  the MLMC-optimal allocation N_l = N_0 2^(-(2k+d) l / 2) of the paper's Proposition 2.1
  (k: smoothness of the input space H^k, d: spatial dimension);
* the **batch sizes** B_l = B_0 δ^(-l) per optimiser step, from the coarsest batch B_0 and the
  batch multiplier δ ≥ 1.

Counts and batch sizes are rounded to the nearest integer and never below 1 (the clamp is
what makes δ = 8 over four levels possible with a moderate B_0; a clamped schedule is no
longer geometric, and :func:`batch_sizes` returns what is used so that callers can record it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["PROGRESSIONS", "sample_counts", "batch_sizes"]

PROGRESSIONS = ("geometric", "prescribed", "optimal")


def _check_levels(levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")


def _check_delta(delta: float) -> None:
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta >= 1):
        raise ValueError(f"the batch multiplier delta must be a finite number >= 1, got {delta!r}")


def sample_counts(progression: str, levels: int, n_coarsest: int | None = None, *, delta: float = 2.0,
                  counts: Sequence[int] | None = None, k: float = 1.0, d: int = 2) -> list[int]:
    """N_0 … N_L, the training samples each level draws from.

    Parameters
    ----------
    progression : {"geometric", "prescribed", "optimal"}
        ``geometric``: N_l = N_0 δ^(-l); ``prescribed``: ``counts`` as given (non-increasing);
        ``optimal``: N_l = N_0 2^(-(2k+d) l / 2).
    levels : int
        Number of levels m = L + 1.
    n_coarsest : int
        N_0 (not used by ``prescribed``).
    delta : float
        δ of the geometric progression.
    counts : sequence of int
        The prescribed counts, coarsest first.
    k, d : float, int
        Smoothness and dimension in the optimal allocation.

    Returns
    -------
    list of int
        Counts, coarsest first, each >= 1.
    """
    _check_levels(levels)
    if progression not in PROGRESSIONS:
        raise ValueError(f"unknown progression {progression!r}; choose one of {PROGRESSIONS}")
    if progression == "prescribed":
        if counts is None or len(counts) != levels:
            raise ValueError(f"a prescribed progression needs {levels} counts, got {counts!r}")
        out = [int(c) for c in counts]
        if any(c < 1 for c in out) or any(a < b for a, b in zip(out, out[1:])):
            raise ValueError(f"prescribed counts must be positive and non-increasing (coarsest first), got {out}")
        return out
    if isinstance(n_coarsest, bool) or not isinstance(n_coarsest, int) or n_coarsest < 1:
        raise ValueError(f"n_coarsest must be a positive integer, got {n_coarsest!r}")
    if progression == "geometric":
        _check_delta(delta)
        ratio = float(delta)
    else:
        if not (k > 0 and isinstance(d, int) and d >= 1):
            raise ValueError(f"the optimal allocation needs k > 0 and an integer d >= 1, got k={k!r}, d={d!r}")
        ratio = 2.0 ** ((2 * k + d) / 2)
    return [max(1, round(n_coarsest * ratio ** -level)) for level in range(levels)]


def batch_sizes(levels: int, coarsest: int, delta: float) -> list[int]:
    """B_0 … B_L with B_l = max(1, round(B_0 δ^(-l)))."""
    _check_levels(levels)
    _check_delta(delta)
    if isinstance(coarsest, bool) or not isinstance(coarsest, int) or coarsest < 1:
        raise ValueError(f"the coarsest batch size must be a positive integer, got {coarsest!r}")
    return [max(1, round(coarsest * float(delta) ** -level)) for level in range(levels)]
