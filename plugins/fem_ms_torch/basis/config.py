"""The typed configuration of ``fem-ms train-basis`` (GMsFEM-NO training)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from fem_ms.typed_config import ConfigFile, at_least, check_fields, greater_than, plain_dict

from ..distributed import check_device
from ..registry import check_model_name
from .features import INNER_PRODUCTS
from .losses import LOSSES

__all__ = ["TrainBasisConfig"]

LOSS_NAMES = tuple(LOSSES)
# the keys of SAL-PR's own settings (its loss function's keyword arguments)
SAL_PR_KEYS = ("n_vectors", "pr_weight")


@dataclass(frozen=True)
class TrainBasisConfig(ConfigFile):
    """What :func:`~fem_ms_torch.basis.train.train_basis` trains; the keys of a ``train-basis``
    TOML file (``kind = "train_basis"`` optional), checked when made.

    Parameters
    ----------
    dataset : path
        A ``gmsfem_basis`` HDF5 file (:func:`fem_ms.data.generate`).
    out : path
        The checkpoint to write (and to resume from).
    kinds : list of str, optional
        Neighbourhood kinds to train (default: all in the dataset).
    epochs, batch_size, lr, weight_decay, seed : training settings (AdamW, cosine schedule).
    loss : {"sal", "sal-pr", "rbfl2"}
    n_vectors : int, optional
        SAL-PR only: random vectors of the true span whose projection error onto the predicted
        span is added to SAL (default 10, :func:`~fem_ms_torch.basis.losses.sal_pr_loss`'s).
    pr_weight : float, optional
        SAL-PR only: the weight of that projection term (default 1).
    architecture : str
        A grid operator of :mod:`fem_ms_torch.registry`: "ffno", "fno", "localno", "localffno",
        or any of neuraloperator's as ``"neuralop:<Name>"`` (e.g. "neuralop:FNO").
    width, depth, modes : int
        Size of the operator (mapped onto a neuraloperator model's hidden_channels, n_layers,
        n_modes).
    model_options : dict
        Further constructor arguments of the architecture (e.g. ``disco_radius``).
    inner_product : {"energy", "euclidean", "kappa"}
        Of the loss; see :func:`~fem_ms_torch.basis.train.train_basis`.
    exact_constant : bool
        Put the constant first basis function in exactly; the network predicts N_bf − 1.
    oversample : int
        Predict that many functions more (reduced by Rayleigh–Ritz in the provider).
    validation_split : str, optional
        A split of the dataset (e.g. "validation") on which the loss is evaluated every
        ``validate_every`` epochs.
    device : str, optional
        "cpu" or "cuda" (default: CUDA when available).
    progress : bool
        A progress bar (rank 0).
    """

    dataset: Path
    out: Path
    kinds: tuple[str, ...] | None = None
    epochs: int = field(default=50, metadata=at_least(1))
    batch_size: int = field(default=16, metadata=at_least(1))
    lr: float = field(default=1e-3, metadata=greater_than(0))
    weight_decay: float = field(default=0.01, metadata=at_least(0))
    loss: Literal[LOSS_NAMES] = "sal"
    n_vectors: int | None = field(default=None, metadata=at_least(1))
    pr_weight: float | None = field(default=None, metadata=at_least(0))
    architecture: str = "ffno"
    width: int = field(default=32, metadata=at_least(1))
    depth: int = field(default=4, metadata=at_least(1))
    modes: int = field(default=12, metadata=at_least(1))
    model_options: dict = field(default_factory=dict)
    seed: int = field(default=0, metadata=at_least(0))
    inner_product: Literal[INNER_PRODUCTS] = "energy"
    exact_constant: bool = True
    oversample: int = field(default=0, metadata=at_least(0))
    validation_split: str | None = None
    validate_every: int = field(default=1, metadata=at_least(1))
    device: str | None = None
    progress: bool = True

    kind: ClassVar[str] = "train_basis"
    where: ClassVar[str] = "train-basis config"
    # settings that do not change the trained weights: a run may be resumed with others
    runtime: ClassVar[frozenset] = frozenset({"out", "validation_split", "validate_every", "device", "progress"})

    def __post_init__(self):
        check_fields(self, self.where)
        check_device(self.device, self.where)
        check_model_name(self.architecture, operator=True)
        if self.oversample and self.loss == "rbfl2":
            raise ValueError("train-basis config: oversample needs a subspace loss ('sal' or 'sal-pr'): rbfl2 "
                             "compares the predicted functions one by one with the true ones")
        for key in SAL_PR_KEYS:
            if getattr(self, key) is not None and self.loss != "sal-pr":
                raise ValueError(f"train-basis config: {key} is a setting of loss 'sal-pr', not of {self.loss!r}")

    def loss_options(self) -> dict:
        """The keyword arguments of the loss that this config sets (SAL-PR's ``n_vectors`` and
        ``pr_weight``; the loss's defaults for those left unset)."""
        return {key: getattr(self, key) for key in SAL_PR_KEYS if getattr(self, key) is not None}

    def identity(self) -> dict:
        """What a checkpoint of this run stores and a resume must match (the dataset by absolute
        path; SAL-PR's ``n_vectors`` and ``pr_weight`` only where set, so that a checkpoint written
        before they were keys still resumes with the loss's defaults)."""
        unset = {key for key in SAL_PR_KEYS if getattr(self, key) is None}
        return plain_dict(self, exclude=self.runtime | unset, absolute=("dataset",))
