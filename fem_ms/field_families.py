"""Families of permeability fields, in and out of the distribution learned models are trained on.

The learned providers are trained on KLE samples with the paper's parameters
(:func:`~fem_ms.coefficients.paper_kle`: correlation lengths (0.02, 0.6), κ rescaled to
[1, 9600]). A user may hand them anything; these families are what the trust benchmark
(``benchmarks.learned_trust``) and the tests use to check that a learned basis never silently
degrades outside that distribution. One module holds the families and their parameters, so both
use the same ones.

Every family samples κ on the cell grid of the unit square or cube from an integer seed
(the same seed gives the same field):

* ``kle`` — in distribution: the paper's KLE.
* ``inclusions`` — binary: discs (balls) of κ = 9600 in κ = 1, the training κ range.
* ``channels`` — binary: straight channels of κ = 9600 along the axes, through κ = 1.
* ``kle-isotropic`` — KLE with correlation lengths 0.1 on every axis (no preferred direction).
* ``kle-rotated`` — KLE with the paper's correlation lengths swapped between the axes.
* ``kle-contrast-1e2``, ``kle-contrast-1e6`` — the paper's KLE rescaled to other contrasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .checks import check_int
from .coefficients import PAPER_KLE_2D, PAPER_KLE_3D, KLExpansion, paper_kle

__all__ = ["FieldFamily", "FAMILIES", "family"]

CONTRAST = 9600.0


@dataclass(frozen=True)
class FieldFamily:
    """A family of κ fields.

    Attributes
    ----------
    name : str
    description : str
        One line, with the parameters.
    in_distribution : bool
        Whether the paper's KLE (what the learned providers are trained on) generates it.
    sampler : callable (cells_per_side, seed) → ndarray
    """

    name: str
    description: str
    in_distribution: bool
    sampler: Callable

    def sample(self, cells_per_side, seed: int) -> np.ndarray:
        """κ on the ``cells_per_side`` cell grid (2 or 3 axes) for ``seed``."""
        cells = tuple(check_int("cells_per_side", n) for n in np.atleast_1d(cells_per_side))
        if len(cells) not in (2, 3):
            raise ValueError(f"cells_per_side must have 2 or 3 entries, got {cells_per_side!r}")
        kappa = self.sampler(cells, check_int("seed", seed, low=0))
        assert kappa.shape == cells and np.all(kappa > 0) and np.all(np.isfinite(kappa))
        return kappa


def _cell_centres(cells):
    return np.meshgrid(*[(np.arange(n) + 0.5) / n for n in cells], indexing="ij")


def _inclusions(cells, seed, count_per_unit=40, radii=(0.02, 0.06)):
    rng = np.random.default_rng(seed)
    x = _cell_centres(cells)
    kappa = np.ones(cells)
    count = int(round(count_per_unit * (1.0 if len(cells) == 2 else 1.5)))
    for _ in range(count):
        centre, radius = rng.random(len(cells)), rng.uniform(*radii)
        kappa[sum((xi - c) ** 2 for xi, c in zip(x, centre)) <= radius**2] = CONTRAST
    return kappa


def _channels(cells, seed, count=6, widths=(1, 3)):
    rng = np.random.default_rng(seed)
    kappa = np.ones(cells)
    for _ in range(count):
        axis = rng.integers(len(cells))  # the channel runs along this axis
        index = [slice(None)] * len(cells)
        for other in range(len(cells)):
            if other != axis:
                width = int(rng.integers(widths[0], widths[1] + 1))
                start = int(rng.integers(0, cells[other] - width + 1))
                index[other] = slice(start, start + width)
        length = int(rng.integers(cells[axis] // 2, cells[axis] + 1))
        start = int(rng.integers(0, cells[axis] - length + 1))
        index[axis] = slice(start, start + length)
        kappa[tuple(index)] = CONTRAST
    return kappa


def _kle(lengths=None, contrast=CONTRAST):
    def sample(cells, seed):
        if lengths is None:
            expansion = paper_kle(cells)
        else:
            paper = (PAPER_KLE_2D if len(cells) == 2 else PAPER_KLE_3D)
            expansion = KLExpansion(cells, lengths(len(cells)), paper["variance"])
        return expansion.sample_kappa(seed, contrast=contrast)
    return sample


def _rotated(dim):
    lengths = (PAPER_KLE_2D if dim == 2 else PAPER_KLE_3D)["correlation_lengths"]
    return tuple(reversed(lengths))


FAMILIES: dict[str, FieldFamily] = {f.name: f for f in (
    FieldFamily("kle", "the paper's KLE: correlation lengths (0.02, 0.6), kappa in [1, 9600]", True, _kle()),
    FieldFamily("inclusions", "binary: 40 discs (60 balls in 3D) of radius 0.02-0.06 with kappa 9600 in kappa 1",
                False, _inclusions),
    FieldFamily("channels", "binary: 6 straight channels 1-3 cells wide, half to all of the domain long, kappa "
                            "9600 in kappa 1", False, _channels),
    FieldFamily("kle-isotropic", "KLE with correlation length 0.1 on every axis, kappa in [1, 9600]", False,
                _kle(lambda dim: (0.1,) * dim)),
    FieldFamily("kle-rotated", "the paper's KLE with its correlation lengths swapped between the axes, kappa in "
                               "[1, 9600]", False, _kle(_rotated)),
    FieldFamily("kle-contrast-1e2", "the paper's KLE rescaled to kappa in [1, 100]", False, _kle(contrast=1e2)),
    FieldFamily("kle-contrast-1e6", "the paper's KLE rescaled to kappa in [1, 1e6]", False, _kle(contrast=1e6)),
)}


def family(name: str) -> FieldFamily:
    """The family called ``name``; ValueError listing the families otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown field family {name!r}; families: {sorted(FAMILIES)}")
    return FAMILIES[name]
