"""The typed configuration of ``fem-ms train-gpo`` (LoGoS-GPO, the plain GPO, SVGP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from fem_ms.typed_config import ConfigFile, at_least, check_fields, greater_than, plain_dict

from ..distributed import check_device

__all__ = ["TrainGPOConfig", "MODELS", "VARIATIONAL"]

MODELS = ("logos", "gpo", "svgp")
VARIATIONAL = ("closed-form", "gradient")


@dataclass(frozen=True)
class TrainGPOConfig(ConfigFile):
    """What :func:`~fem_ms_torch.gpo.train.train_gpo` trains; the keys of a ``train-gpo`` TOML
    file (``kind = "train_gpo"`` optional; model options in an ``[options]`` table).

    Parameters
    ----------
    dataset, out : path
        A ``burgers``, ``wave_advection``, ``darcy_notch``, ``multilevel`` or
        ``navier_stokes_forcing`` HDF5 file; the checkpoint.
    model : {"logos", "gpo", "svgp"}
    epochs, batch_size, lr, seed : training settings (AdamW without weight decay, cosine schedule).
    resolution, stride, n_train : the data (:func:`~.problems.load_problem`).
    options : dict
        Model options (:func:`~.train.build_model`).
    variational, mean_epochs, refresh_every, noise_every, calibration :
        See :func:`~.train.train_gpo`.
    max_seconds : float, optional
        Stop after the epoch that passes it (the run can be resumed).
    validation_split : str, optional
        A split of the dataset whose figures (:func:`~.train.evaluate`) are recorded every
        ``validate_every`` epochs.
    device : str
        Where the model, the training data and every tensor of the run live: "cpu" (default),
        "cuda" or "cuda:N". A CUDA device that is not available raises here, before any work.
    progress : bool
    """

    dataset: Path
    out: Path
    model: Literal[MODELS] = "logos"
    epochs: int = field(default=100, metadata=at_least(1))
    batch_size: int = field(default=16, metadata=at_least(1))
    lr: float = field(default=4e-3, metadata=greater_than(0))
    seed: int = field(default=0, metadata=at_least(0))
    resolution: int | None = None
    stride: int = field(default=1, metadata=at_least(1))
    n_train: int | None = field(default=None, metadata=at_least(1))
    options: dict = field(default_factory=dict)
    variational: Literal[VARIATIONAL] = "closed-form"
    mean_epochs: int = field(default=0, metadata=at_least(0))
    refresh_every: int = field(default=1, metadata=at_least(0))
    noise_every: int = field(default=1, metadata=at_least(1))
    calibration: int = field(default=0, metadata=at_least(0))
    max_seconds: float | None = field(default=None, metadata=at_least(0))
    validation_split: str | None = None
    validate_every: int = field(default=1, metadata=at_least(1))
    device: str = "cpu"
    progress: bool = True

    kind: ClassVar[str] = "train_gpo"
    where: ClassVar[str] = "train-gpo config"
    runtime: ClassVar[frozenset] = frozenset({"out", "max_seconds", "validation_split", "validate_every", "device",
                                              "progress"})

    def __post_init__(self):
        check_fields(self, self.where)
        check_device(self.device, self.where)
        if self.calibration and self.n_train is None:
            raise ValueError("train-gpo config: calibration holds out train-split functions after the first "
                             "n_train; set n_train")

    def identity(self) -> dict:
        """What a checkpoint of this run stores and a resume must match (the dataset by absolute path)."""
        logos_only = () if self.model == "logos" else ("variational", "refresh_every", "noise_every")
        return plain_dict(self, exclude=self.runtime | set(logos_only), absolute=("dataset",))


