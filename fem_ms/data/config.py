"""Typed dataset configurations, loadable from TOML or JSON and validated up front."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["GMsFEMBasisConfig", "MultilevelConfig", "load_config", "CONFIG_KINDS"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config: {name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class _Common:
    name: str = "dataset"
    samples: int = 10
    seed: int = 0  # sample s draws κ from seed + 2 s and the forcing from seed + 2 s + 1
    train_fraction: float = 0.8
    energy: float = 0.95
    contrast: float = 9600.0

    def _validate_common(self):
        if not self.name or "/" in self.name:
            raise ValueError(f"config: name must be a non-empty file name, got {self.name!r}")
        _positive_int("samples", self.samples)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"config: seed must be a non-negative integer, got {self.seed!r}")
        if not 0 <= self.train_fraction <= 1:
            raise ValueError(f"config: train_fraction must be in [0, 1], got {self.train_fraction!r}")
        if not 0 < self.energy <= 1:
            raise ValueError(f"config: energy must be in (0, 1], got {self.energy!r}")
        if not self.contrast > 1:
            raise ValueError(f"config: contrast must be > 1, got {self.contrast!r}")

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **asdict(self)}, sort_keys=True)

    def kappa_seed(self, sample: int) -> int:
        return self.seed + 2 * sample

    def forcing_seed(self, sample: int) -> int:
        return self.seed + 2 * sample + 1


@dataclass(frozen=True)
class GMsFEMBasisConfig(_Common):
    """GMsFEM basis dataset: canonical κ patches and their SLEPc eigenvectors, per domain kind."""

    kind = "gmsfem_basis"
    dim: int = 2
    fine: int = 100
    coarse: int = 5
    n_basis: int = 8

    def __post_init__(self):
        self._validate_common()
        if self.dim not in (2, 3):
            raise ValueError(f"config: dim must be 2 or 3, got {self.dim!r}")
        for name in ("fine", "coarse", "n_basis"):
            _positive_int(name, getattr(self, name))
        if self.fine % self.coarse:
            raise ValueError(f"config: fine={self.fine} is not a multiple of coarse={self.coarse}")


@dataclass(frozen=True)
class MultilevelConfig(_Common):
    """One random input solved on every level of a nested hierarchy (for MLMC training).

    κ is sampled on the finest level's cell grid; a coarser level's κ is the geometric mean of
    κ over the fine cells inside each of its cells, and its forcing is the finest forcing at its
    vertices (all levels' vertices are finest-level vertices).
    """

    kind = "multilevel"
    levels: tuple = (16, 32, 64, 128, 256)
    problem: str = "diffusion"
    forcing: str = "constant"

    def __post_init__(self):
        self._validate_common()
        levels = tuple(self.levels)
        object.__setattr__(self, "levels", levels)
        if not levels:
            raise ValueError("config: levels must list at least one grid size")
        for n in levels:
            _positive_int("each level", n)
        if list(levels) != sorted(set(levels)):
            raise ValueError(f"config: levels must increase strictly, got {list(levels)}")
        if any(levels[-1] % n for n in levels):
            raise ValueError(f"config: every level must divide the finest ({levels[-1]}) to nest, got {list(levels)}")
        if self.problem not in ("diffusion", "richards"):
            raise ValueError(f"config: problem must be 'diffusion' or 'richards', got {self.problem!r}")
        if self.forcing not in ("constant", "random"):
            raise ValueError(f"config: forcing must be 'constant' or 'random', got {self.forcing!r}")


CONFIG_KINDS = {cls.kind: cls for cls in (GMsFEMBasisConfig, MultilevelConfig)}


def load_config(source) -> _Common:
    """A config from a dict, or a ``.toml``/``.json`` file with a ``kind`` key."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    else:
        data = dict(source)
    kind = data.pop("kind", None)
    if kind not in CONFIG_KINDS:
        raise ValueError(f"config: kind must be one of {sorted(CONFIG_KINDS)}, got {kind!r}")
    cls = CONFIG_KINDS[kind]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config: unknown keys {unknown} for kind {kind!r}; known: {sorted(known)}")
    return cls(**data)
