"""The typed configuration of ``fem-ms train-mlmc``: sections ``[data]``, ``[model]``, ``[mlmc]``, ``[train]``.

.. code-block:: toml

    kind = "train_mlmc"              # optional

    [data]
    kind = "multilevel"              # or "cylinder_flow"
    path = "data/multilevel_darcy.h5"
    levels = [16, 32, 64]            # grid sizes, or mesh numbers 1..4 for cylinder_flow; coarsest first
    # cylinder_flow only: history = 1, bundle = 1, source = "solved" (or "transferred")

    [model]
    architecture = "fno"             # a grid operator of fem_ms_torch.registry ("fno", "ffno", "localno",
                                     # "localffno", "neuralop:FNO", ...) or "mppde" (meshes); other keys:
                                     # width, depth, modes, or the model's own constructor arguments
    width = 32

    [mlmc]
    progression = "geometric"        # "geometric", "prescribed" (with counts = [...]) or "optimal" (k, d)
    delta = 2.0                      # batch multiplier: B_l = B_0 δ^-l, and N_l = N_0 δ^-l when geometric
    batch_size = 16                  # B_0, the coarsest level's batch
    sampling = "random"              # or "nested"

    [train]
    epochs = 50
    lr = 1e-3
    loss = "relative_l2"             # or "mse" (default: relative_l2 on grids, mse on meshes)
    seed = 0
    checkpoint = "runs/mlmc.pt"      # resumed when rerun with the same settings
    validation_split = "validation"  # optional: the finest level's loss on it every validate_every epochs
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from fem_ms.typed_config import ConfigFile, at_least, check_fields, greater_than, plain_dict

from ..distributed import check_device
from ..registry import check_model_name
from .batcher import SAMPLINGS
from .levels import CYLINDER_SOURCES
from .progression import PROGRESSIONS
from .trainer import LOSSES

__all__ = ["TrainMLMCConfig", "MLMCData", "MLMCSchedule", "MLMCTraining", "DATA_KINDS"]

DATA_KINDS = ("multilevel", "cylinder_flow")
LOSS_NAMES = tuple(LOSSES)


@dataclass(frozen=True)
class MLMCData:
    """``[data]``: the dataset and its levels (coarsest first)."""

    kind: Literal[DATA_KINDS]
    path: Path
    levels: tuple[int, ...]
    history: int = field(default=1, metadata=at_least(1))
    bundle: int = field(default=1, metadata=at_least(1))
    source: Literal[CYLINDER_SOURCES] = "solved"

    def __post_init__(self):
        check_fields(self, "train-mlmc config [data]")
        if not self.levels:
            raise ValueError("train-mlmc config [data]: levels must list at least one level")


@dataclass(frozen=True)
class MLMCSchedule:
    """``[mlmc]``: samples and batch sizes per level (:mod:`.progression`) and the sampling (:mod:`.batcher`)."""

    progression: Literal[PROGRESSIONS] = "geometric"
    delta: float = field(default=2.0, metadata=at_least(1))
    batch_size: int = field(default=16, metadata=at_least(1))
    sampling: Literal[SAMPLINGS] = "random"
    counts: tuple[int, ...] | None = field(default=None, metadata=at_least(1))
    k: float = field(default=1.0, metadata=greater_than(0))
    d: int = field(default=2, metadata=at_least(1))

    def __post_init__(self):
        check_fields(self, "train-mlmc config [mlmc]")


@dataclass(frozen=True)
class MLMCTraining:
    """``[train]``: optimiser, loss, seed, checkpoint, validation, device."""

    epochs: int = field(default=50, metadata=at_least(1))
    lr: float = field(default=1e-3, metadata=greater_than(0))
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    loss: Literal[LOSS_NAMES] | None = None
    seed: int = field(default=0, metadata=at_least(0))
    checkpoint: Path | None = None
    validation_split: str | None = None
    validate_every: int = field(default=1, metadata=at_least(1))
    device: str | None = None
    progress: bool = True

    def __post_init__(self):
        check_fields(self, "train-mlmc config [train]")
        check_device(self.device, "train-mlmc config [train]")


@dataclass(frozen=True)
class TrainMLMCConfig(ConfigFile):
    """What :func:`~fem_ms_torch.mlmc.run.train_mlmc_from_config` trains (module docstring: the file)."""

    data: MLMCData
    model: dict = field(default_factory=dict)
    mlmc: MLMCSchedule = field(default_factory=MLMCSchedule)
    train: MLMCTraining = field(default_factory=MLMCTraining)

    kind: ClassVar[str] = "train_mlmc"
    where: ClassVar[str] = "train-mlmc config"

    def __post_init__(self):
        check_fields(self, self.where)
        architecture = self.architecture
        if not isinstance(architecture, str):
            raise TypeError(f"train-mlmc config [model]: key 'architecture' must be a string, got {architecture!r}")
        if self.data.kind == "multilevel":
            check_model_name(architecture, operator=True)
        elif architecture != "mppde":
            raise ValueError(f"train-mlmc config [model]: mesh data (cylinder_flow) need architecture 'mppde', "
                             f"got {architecture!r}")

    @property
    def architecture(self) -> str:
        """The model's architecture: ``[model] architecture``, by default ``fno`` on grids and ``mppde`` on meshes."""
        return self.model.get("architecture", "fno" if self.data.kind == "multilevel" else "mppde")

    @property
    def loss(self) -> str:
        """The training loss: ``[train] loss``, by default ``relative_l2`` on grids and ``mse`` on meshes."""
        return self.train.loss or ("relative_l2" if self.data.kind == "multilevel" else "mse")

    def identity(self) -> dict:
        """What identifies the run in its checkpoint: data (absolute path), model, schedule,
        and the training settings that change the weights."""
        return {"data": plain_dict(self.data, absolute=("path",)), "model": dict(self.model),
                "mlmc": plain_dict(self.mlmc),
                "train": plain_dict(self.train, exclude=("checkpoint", "validation_split", "validate_every", "device",
                                                         "progress"))}
