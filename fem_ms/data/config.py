"""Typed dataset configurations, loadable from TOML or JSON and validated up front."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from ..typed_config import check_fields, config_from_mapping, read_config_file, toml_text, with_overrides

__all__ = ["GMsFEMBasisConfig", "MultilevelConfig", "CylinderFlowConfig", "DarcyNotchConfig",
           "BurgersConfig", "NavierStokesTorusConfig", "NavierStokesForcingConfig",
           "ShallowWaterSphereConfig", "WaveAdvectionConfig", "load_config", "CONFIG_KINDS", "STORAGE_DTYPES"]


STORAGE_DTYPES = ("float64", "float32")
DEFAULT_CONTRAST = 9600.0


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config: {name} must be a positive integer, got {value!r}")


def _increasing_sizes(config, field: str, what: str) -> tuple[int, ...]:
    """``config.<field>`` as a tuple (stored back on the frozen config) of positive integers that
    increase strictly; ``what`` names one entry in the message when the list is empty."""
    sizes = tuple(getattr(config, field))
    object.__setattr__(config, field, sizes)
    if not sizes:
        raise ValueError(f"config: {field} must list at least one {what}")
    for n in sizes:
        _positive_int(f"each {field[:-1]}", n)
    if list(sizes) != sorted(set(sizes)):
        raise ValueError(f"config: {field} must increase strictly, got {list(sizes)}")
    return sizes


def _fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"config: {name} must be a number in [0, 1], got {value!r}")


@dataclass(frozen=True)
class _Common:
    name: str = "dataset"
    samples: int = 10
    seed: int = 0  # sample s draws κ from seed + 2 s and the forcing from seed + 2 s + 1
    train_fraction: float = 0.8
    # 0 keeps every train/test split of the configs written before the validation split existed
    validation_fraction: float = 0.0
    storage_dtype: str = "float64"

    def _validate_common(self):
        check_fields(self, "config")
        if not self.name or "/" in self.name:
            raise ValueError(f"config: name must be a non-empty file name, got {self.name!r}")
        _positive_int("samples", self.samples)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"config: seed must be a non-negative integer, got {self.seed!r}")
        _fraction("train_fraction", self.train_fraction)
        _fraction("validation_fraction", self.validation_fraction)
        n_train, n_validation = self._split_sizes()
        if n_train + n_validation > self.samples:
            raise ValueError(f"config: train_fraction={self.train_fraction!r} and validation_fraction="
                             f"{self.validation_fraction!r} take {n_train} + {n_validation} of {self.samples} samples")
        if self.storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"config: storage_dtype must be one of {STORAGE_DTYPES}, got {self.storage_dtype!r}")

    def _validate_kle(self):
        from ..coefficients import CONVENTIONS

        if not 0 < self.energy <= 1:
            raise ValueError(f"config: energy must be in (0, 1], got {self.energy!r}")
        if not self.contrast > 1:
            raise ValueError(f"config: contrast must be > 1, got {self.contrast!r}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"config: convention must be one of {CONVENTIONS}, got {self.convention!r}")
        if self.convention == "paper" and self.contrast != DEFAULT_CONTRAST:
            raise ValueError(f"config: contrast={self.contrast!r} has no effect with convention='paper' (kappa = "
                             "exp(a*Y) with the convention's fixed a); leave contrast at its default")

    def kappa_options(self) -> dict:
        """The keyword arguments of :meth:`~fem_ms.coefficients.KLExpansion.sample_kappa` this
        config's convention asks for (the ``paper`` convention's own fixed scale: none)."""
        return {"contrast": self.contrast} if self.convention == "default" else {}

    def _split_sizes(self) -> tuple[int, int]:
        return int(round(self.train_fraction * self.samples)), int(round(self.validation_fraction * self.samples))

    def split_indices(self) -> dict[str, np.ndarray]:
        """The sample indices of each split: the first round(train_fraction · samples) samples
        train, the next round(validation_fraction · samples) validation, the rest test."""
        n_train, n_validation = self._split_sizes()
        bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_validation),
                  "test": (n_train + n_validation, self.samples)}
        return {name: np.arange(lo, hi, dtype=np.int64) for name, (lo, hi) in bounds.items()}

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **asdict(self)}, sort_keys=True)

    def to_toml(self) -> str:
        """The config as a TOML file that :func:`load_config` reads back as this config."""
        return toml_text({"kind": self.kind, **asdict(self)})

    def kappa_seed(self, sample: int) -> int:
        return self.seed + 2 * sample

    def forcing_seed(self, sample: int) -> int:
        return self.seed + 2 * sample + 1


@dataclass(frozen=True)
class GMsFEMBasisConfig(_Common):
    """GMsFEM basis dataset: canonical κ patches and their SLEPc eigenvectors, per domain kind.

    ``convention`` is that of :func:`fem_ms.coefficients.paper_kle`: ``"default"`` rescales each
    κ to span [1, ``contrast``]; ``"paper"`` uses κ = exp(a·Y) with the one a fitted on the
    paper's Table 2 (``contrast`` must then stay at its default).
    """

    kind = "gmsfem_basis"
    dim: int = 2
    fine: int = 100
    coarse: int = 5
    n_basis: int = 8
    energy: float = 0.95
    contrast: float = DEFAULT_CONTRAST
    convention: str = "default"

    def __post_init__(self):
        self._validate_common()
        self._validate_kle()
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
    vertices (all levels' vertices are finest-level vertices). ``convention`` is that of
    :func:`fem_ms.coefficients.paper_kle` and :func:`~fem_ms.coefficients.paper_forcing` (see
    :class:`GMsFEMBasisConfig`).
    """

    kind = "multilevel"
    levels: tuple[int, ...] = (16, 32, 64, 128, 256)
    problem: str = "diffusion"
    forcing: str = "constant"
    energy: float = 0.95
    contrast: float = DEFAULT_CONTRAST
    convention: str = "default"

    def __post_init__(self):
        self._validate_common()
        self._validate_kle()
        levels = _increasing_sizes(self, "levels", "grid size")
        if any(levels[-1] % n for n in levels):
            raise ValueError(f"config: every level must divide the finest ({levels[-1]}) to nest, got {list(levels)}")
        if self.problem not in ("diffusion", "richards"):
            raise ValueError(f"config: problem must be 'diffusion' or 'richards', got {self.problem!r}")
        if self.forcing not in ("constant", "random"):
            raise ValueError(f"config: forcing must be 'constant' or 'random', got {self.forcing!r}")


@dataclass(frozen=True)
class CylinderFlowConfig(_Common):
    """Flow past a cylinder (Re = 200) on the Gmsh meshes ``fem_ms/geometries/cylinder_M{k}.geo``.

    Each sample is one random inlet profile u_x = 1 + Σ_k c_k sin(kπ(y+4)/8), c_k ~
    N(0, (inflow_amplitude/k)²), k = 1..inflow_modes, simulated on every mesh in ``meshes``.
    """

    kind = "cylinder_flow"
    samples: int = 200
    train_fraction: float = 0.75
    meshes: tuple[int, ...] = (1, 2, 3, 4)
    reynolds: float = 200.0
    dt: float = 0.25
    t_end: float = 50.0
    save_every: int = 4
    inflow_amplitude: float = 0.25
    inflow_modes: int = 3

    def __post_init__(self):
        self._validate_common()
        meshes = tuple(self.meshes)
        object.__setattr__(self, "meshes", meshes)
        if not meshes or any(m not in (1, 2, 3, 4) for m in meshes) or len(set(meshes)) != len(meshes):
            raise ValueError(f"config: meshes must be distinct values of 1..4, got {list(meshes)}")
        for name in ("reynolds", "dt", "t_end"):
            if not getattr(self, name) > 0:
                raise ValueError(f"config: {name} must be positive, got {getattr(self, name)!r}")
        _positive_int("save_every", self.save_every)
        _positive_int("inflow_modes", self.inflow_modes)
        steps = self.t_end / self.dt
        if abs(steps - round(steps)) > 1e-9 * steps or round(steps) % self.save_every:
            raise ValueError(f"config: t_end/dt = {steps:g} steps must be a whole multiple of save_every")
        if self.inflow_amplitude < 0:
            raise ValueError(f"config: inflow_amplitude must be non-negative, got {self.inflow_amplitude!r}")


@dataclass(frozen=True)
class DarcyNotchConfig(_Common):
    """Darcy flow −∇·(a∇u) = f on a notched triangle (``fem_ms/geometries/notched_triangle.geo``) with
    boundary data ``u = g ~ GP(0, exp(−|x−x'|²/(2 l²)))``, mapped to the pressure u.
    """

    kind = "darcy_notch"
    samples: int = 1500
    permeability: float = 0.1
    source: float = -1.0
    length_scale: float = 0.2
    grid: int = 51
    mesh_size: float = 0.02

    def __post_init__(self):
        self._validate_common()
        for name in ("permeability", "length_scale", "mesh_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"config: {name} must be positive, got {getattr(self, name)!r}")
        _positive_int("grid", self.grid)


@dataclass(frozen=True)
class BurgersConfig(_Common):
    """1D viscous Burgers u_t + (u²/2)_x = ν u_xx on the periodic unit interval (:mod:`fem_ms.burgers`):
    u_0 ~ N(0, σ²(−Δ + τ² I)^{−γ}) (drawn from seed + 2 s) → u(·, t_end), both on ``points``
    equispaced points. Defaults: the LoGoS-GPO paper's 625(−Δ + 25 I)^{−2}, ν = 0.1, t = 1.
    """

    kind = "burgers"
    samples: int = 2100
    train_fraction: float = 2000 / 2100
    points: int = 1024
    viscosity: float = 0.1
    t_end: float = 1.0
    dt: float = 1e-3
    sigma: float = 25.0
    tau: float = 5.0
    gamma: float = 2.0

    def __post_init__(self):
        self._validate_common()
        _positive_int("points", self.points)
        if self.points < 8 or self.points % 2:
            raise ValueError(f"config: points must be an even integer >= 8, got {self.points!r}")
        for name in ("viscosity", "t_end", "dt", "sigma", "tau", "gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"config: {name} must be positive, got {getattr(self, name)!r}")
        steps = self.t_end / self.dt
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"config: t_end/dt = {steps:g} must be a whole number of steps")


@dataclass(frozen=True)
class WaveAdvectionConfig(_Common):
    """1D advection u_t + ν u_x = 0 on the periodic unit interval (:mod:`fem_ms.wave_advection`):
    u_0 = a square wave with a parabolic bump, (c, ω, h) uniform in ``center``, ``width``,
    ``height`` (drawn from seed + 2 s) → the exact u(·, t_end) = u_0(· − ν t_end), both on
    ``points`` equispaced points. Defaults: the LoGoS-GPO paper's ranges, 200 points, T = 0.5,
    2000 + 100 samples; ν = 1 and the bump steepness a = 10 are ours (the paper gives neither).
    """

    kind = "wave_advection"
    samples: int = 2100
    train_fraction: float = 2000 / 2100
    points: int = 200
    speed: float = 1.0
    t_end: float = 0.5
    center: tuple[float, float] = (0.3, 0.7)
    width: tuple[float, float] = (0.3, 0.6)
    height: tuple[float, float] = (1.0, 2.0)
    sharpness: float = 10.0

    def __post_init__(self):
        self._validate_common()
        _positive_int("points", self.points)
        if self.points < 2:
            raise ValueError(f"config: points must be >= 2, got {self.points!r}")
        for name in ("speed", "t_end"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"config: {name} must be a finite non-negative number, got {value!r}")
        for name, (lo, hi) in (("center", (0.0, 1.0)), ("width", (0.0, 1.0)), ("height", (0.0, np.inf))):
            low, high = getattr(self, name)
            if not lo < low <= high < hi:
                raise ValueError(f"config: {name} must be a range (low, high) with {lo} < low <= high < {hi}, "
                                 f"got {getattr(self, name)!r}")
        if not self.sharpness > 2 * self.height[1]:
            raise ValueError(f"config: sharpness must exceed 2 x the largest height ({2 * self.height[1]!r}) so that "
                             f"the bump is shorter than the period, got {self.sharpness!r}")



def _whole_multiple(name: str, value: float, step: float, step_name: str) -> int:
    ratio = value / step
    if abs(ratio - round(ratio)) > 1e-9 * max(ratio, 1.0) or round(ratio) < 1:
        raise ValueError(f"config: {name}/{step_name} = {ratio:g} must be a whole positive number")
    return int(round(ratio))


def _check_vorticity_grid(config) -> None:
    """The solve grid, the stored levels (increasing, each dividing the solve grid) and the times."""
    _positive_int("resolution", config.resolution)
    if config.resolution < 8 or config.resolution % 2:
        raise ValueError(f"config: resolution must be an even integer >= 8, got {config.resolution!r}")
    levels = _increasing_sizes(config, "levels", "grid size")
    if any(config.resolution % n for n in levels):
        raise ValueError(f"config: every level must divide resolution = {config.resolution} (the stored grids "
                         f"subsample the solve grid), got {list(levels)}")
    for name in ("viscosity", "dt", "t_end"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"config: {name} must be positive, got {value!r}")


@dataclass(frozen=True)
class NavierStokesTorusConfig(_Common):
    """2D Navier–Stokes in vorticity form on the unit torus (:mod:`fem_ms.torus_vorticity`), the
    MLMC paper's App. B.3 (after Li et al.): w_0 ~ N(0, 7^{3/2}(−Δ + 49 I)^{−2.5}) (drawn from
    seed + 2 s), f = 0.1(sin 2π(x+y) + cos 2π(x+y)), ν = 10⁻³, solved on the ``resolution`` grid
    with step ``dt`` and stored, subsampled, on every grid of ``levels`` at t = 0, snapshot_dt,
    ..., t_end. The paper solves on 256² with dt = 10⁻⁴; 64² with dt = 5·10⁻³ agrees with a 128²
    solve to 10⁻³ (relative L², t ≥ 1, tested).
    """

    kind = "navier_stokes_torus"
    samples: int = 3000
    resolution: int = 64
    levels: tuple[int, ...] = (8, 16, 32, 64)
    viscosity: float = 1e-3
    dt: float = 5e-3
    t_end: float = 50.0
    snapshot_dt: float = 1.0
    alpha: float = 2.5
    tau: float = 7.0

    def __post_init__(self):
        self._validate_common()
        _check_vorticity_grid(self)
        for name in ("snapshot_dt", "alpha", "tau"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"config: {name} must be positive, got {value!r}")
        if self.alpha <= 1:
            raise ValueError(f"config: alpha must be > 1 (a field of finite variance in 2D), got {self.alpha!r}")
        _whole_multiple("snapshot_dt", self.snapshot_dt, self.dt, "dt")
        _whole_multiple("t_end", self.t_end, self.snapshot_dt, "snapshot_dt")

    def times(self) -> np.ndarray:
        """The snapshot times 0, snapshot_dt, ..., t_end."""
        count = _whole_multiple("t_end", self.t_end, self.snapshot_dt, "snapshot_dt")
        return self.snapshot_dt * np.arange(count + 1)


@dataclass(frozen=True)
class NavierStokesForcingConfig(_Common):
    """The LoGoS-GPO paper's Navier–Stokes case (its Sec. 4.4): vorticity form on [0, 2π)², a random
    forcing f ~ N(0, σ²(−Δ + 9 I)^{−4}) (drawn from seed + 2 s + 1; see
    :func:`fem_ms.torus_vorticity.random_forcing`) → w(·, t_end), ν = 0.025, t_end = 10, from one
    fixed w_0 drawn from the same law with seed ``initial_seed``; solved on the ``resolution``
    grid, stored, subsampled, on every grid of ``levels`` (the paper: 64²).
    """

    kind = "navier_stokes_forcing"
    samples: int = 3100
    train_fraction: float = 3000 / 3100
    resolution: int = 64
    levels: tuple[int, ...] = (32, 64)
    viscosity: float = 0.025
    dt: float = 1e-2
    t_end: float = 10.0
    forcing_sigma: float = 1.0
    initial_seed: int = 123456789

    def __post_init__(self):
        self._validate_common()
        _check_vorticity_grid(self)
        _whole_multiple("t_end", self.t_end, self.dt, "dt")
        if isinstance(self.forcing_sigma, bool) or not isinstance(self.forcing_sigma, (int, float)) \
                or not self.forcing_sigma > 0:
            raise ValueError(f"config: forcing_sigma must be positive, got {self.forcing_sigma!r}")
        if isinstance(self.initial_seed, bool) or not isinstance(self.initial_seed, int) or self.initial_seed < 0:
            raise ValueError(f"config: initial_seed must be a non-negative integer, got {self.initial_seed!r}")


@dataclass(frozen=True)
class ShallowWaterSphereConfig(_Common):
    """Shallow water on the rotating sphere (torch-harmonics' ``ShallowWaterSolver``): a random
    state → the state ``lead_time`` seconds later, stored on equiangular grids of ``grids``
    latitudes (× twice as many longitudes). The sampler is a plugin's (torch): ``fem_ms_torch.sphere``,
    found through the ``fem_ms.dataset_samplers`` entry point named like the kind.

    Sample s draws the initial state from seed + 2 s with torch-harmonics'
    ``random_initial_condition(mach)`` (the spherical FNO line of work's random initial
    conditions) and solves it once, on the finest grid with the spectral truncation
    l, m < ⌈nlat/3⌉ of torch-harmonics' ``PdeDataset``; every grid stores that same band-limited
    solution evaluated at its points. Defaults: torch-harmonics' example (one-hour map, Mach 0.2)
    at CPU size (grids of 32 and 64 latitudes).
    """

    kind = "shallow_water_sphere"
    samples: int = 256
    grids: tuple[int, ...] = (32, 64)
    lead_time: float = 3600.0
    dt: float = 300.0
    mach: float = 0.2

    def __post_init__(self):
        self._validate_common()
        grids = _increasing_sizes(self, "grids", "number of latitudes")
        if grids[0] < 6:
            raise ValueError(f"config: grids need at least 6 latitudes (two resolved modes), got {list(grids)}")
        if math.ceil(grids[-1] / 3) > grids[0]:
            # the coarsest grid must resolve every degree of the finest grid's solution
            raise ValueError(f"config: the finest grid's modes (l < {math.ceil(grids[-1] / 3)}) exceed the coarsest "
                             f"grid's {grids[0]} latitudes: grids must lie within a factor 3, got {list(grids)}")
        for name in ("lead_time", "dt", "mach"):
            if not getattr(self, name) > 0:
                raise ValueError(f"config: {name} must be positive, got {getattr(self, name)!r}")
        steps = self.lead_time / self.dt
        if abs(steps - round(steps)) > 1e-9 * steps or round(steps) < 1:
            raise ValueError(f"config: lead_time/dt = {steps:g} must be a whole, positive number of steps")


CONFIG_KINDS = {cls.kind: cls for cls in (GMsFEMBasisConfig, MultilevelConfig, CylinderFlowConfig,
                                          DarcyNotchConfig, BurgersConfig, WaveAdvectionConfig,
                                          NavierStokesTorusConfig, NavierStokesForcingConfig,
                                          ShallowWaterSphereConfig)}


def load_config(source, overrides: dict | None = None) -> _Common:
    """A config from a dict, or a ``.toml``/``.json`` file with a ``kind`` key (the dialect of
    :mod:`fem_ms.typed_config`: unknown keys and wrongly typed values are named).

    ``overrides`` (key → value, e.g. ``{"samples": 4}``; ``fem-ms generate --set``) replace the
    source's values before the checks, which name the key whether it came from the file or not.
    """
    data = read_config_file(source) if isinstance(source, (str, os.PathLike)) else dict(source)
    if overrides:
        data = with_overrides(data, overrides)
    kind = data.pop("kind", None)
    if kind not in CONFIG_KINDS:
        raise ValueError(f"config: kind must be one of {sorted(CONFIG_KINDS)}, got {kind!r}")
    try:
        return config_from_mapping(CONFIG_KINDS[kind], data, f"config of kind {kind!r}")
    except (TypeError, ValueError) as exc:
        # the checks in the dataclass know neither the file nor which values replaced its own
        origin = [str(source)] if isinstance(source, (str, os.PathLike)) else []
        if overrides:
            origin.append("with " + ", ".join(f"{key} = {value!r}" for key, value in overrides.items()))
        if origin:
            raise type(exc)(f"{' '.join(origin)}: {exc}") from None
        raise
