"""Training of GMsFEM-NO models, one per neighbourhood kind, on the plugin's training core."""

from __future__ import annotations

from pathlib import Path

import torch

from fem_ms.data.schema import DatasetFile
from fem_ms.typed_config import keyword_signature

from ..checkpoints import Checkpoint
from ..data import GMsFEMBasisDataset
from ..distributed import DataParallel, data_parallel
from ..normalisation import Normaliser
from ..registry import build_operator
from ..training import Trainer, check_validation_split
from .config import TrainBasisConfig
from .features import INNER_PRODUCTS, energy_embedding, n_features, patch_features, self_energy_embedding, vertex_mass
from .losses import LOSSES

__all__ = ["train_basis", "train_basis_from_config", "BasisTrainer", "LOSSES", "INNER_PRODUCTS"]

def train_basis(dataset, out, **settings) -> Path:
    """Train one neural operator per neighbourhood kind on a ``gmsfem_basis`` dataset.

    The keyword arguments are the keys of :class:`~.config.TrainBasisConfig` (the signature
    lists them with their defaults). AdamW with a cosine schedule; a checkpoint after every
    epoch (:mod:`fem_ms_torch.checkpoints`: each kind's model record, weights, log-κ
    :class:`~fem_ms_torch.normalisation.Normaliser` and training state), metrics in a CSV
    beside it. Each kind's training split is held in memory while that kind trains
    (:meth:`GMsFEMBasisDataset.tensors`). Rerunning with the same settings after an
    interruption continues from the last checkpoint and ends with the weights an uninterrupted
    run ends with; a checkpoint written with other settings is refused. Launched by
    ``torchrun --nproc_per_node=G``, the G processes train with DistributedDataParallel, each on
    its share of every batch of ``batch_size`` (the global batch), on its own GPU when there
    are GPUs; rank 0 writes the checkpoint.

    ``inner_product`` is that of the loss (:mod:`.losses`): the energy A + τS of the local
    problem (default; :func:`.features.energy_embedding`, τ the true basis's Rayleigh quotient,
    so that both terms weigh alike), which counts a basis function's gradient errors where κ is
    large, as GMsFEM's error does; Euclidean on the patch's vertex grid; or the lumped
    κ-weighted mass (:func:`.features.vertex_mass`), GMsFEM's S-inner product (docs/gmsfem.md
    compares them).

    With ``exact_constant`` (default) the first basis function of every neighbourhood is the
    constant (the eigenfunction of λ = 0 of the κ-weighted Neumann problem, for every κ), so
    the network predicts the other N_bf − 1 and the constant is put in exactly; the coarse hat
    function χ_i is then in the GMsFEM space exactly, as with SLEPc's bases. A dataset whose
    first basis functions are not constant is refused.

    ``oversample`` > 0 predicts that many functions more than N_bf and trains the span of the
    prediction to *contain* the true span (SAL and SAL-PR measure exactly that for a wider
    prediction); the provider reduces the prediction to N_bf functions by Rayleigh–Ritz on the
    local problem (:mod:`.rayleigh_ritz`). Not with ``loss="rbfl2"``, which compares function
    by function.

    ``n_vectors`` and ``pr_weight`` set SAL-PR's random vectors and the weight of their
    projection term (:func:`.losses.sal_pr_loss`); given with another loss they raise.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    return _train(TrainBasisConfig(dataset=dataset, out=out, **settings))


train_basis.__signature__ = keyword_signature(TrainBasisConfig, positional=("dataset", "out"))


def train_basis_from_config(source) -> Path:
    """``fem-ms train-basis CONFIG``: the training a TOML/JSON file (or a mapping) describes.

    Returns the checkpoint's path.
    """
    return _train(TrainBasisConfig.load(source))


class BasisTrainer(Trainer):
    """The GMsFEM-NO models of one neighbourhood kind: shuffled mini-batches of patches split
    over the data-parallel ranks, the subspace loss in the chosen inner product."""

    def __init__(self, model: torch.nn.Module, data: dict, normaliser: Normaliser, config: TrainBasisConfig,
                 ranks: DataParallel, validation_data: dict | None = None, **kwargs):
        super().__init__(model, epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay,
                         normaliser=normaliser, ranks=ranks, progress=config.progress,
                         validation=None if validation_data is None else self._validation_loss,
                         validate_every=config.validate_every, **kwargs)
        self.config, self.data, self.validation_data = config, data, validation_data
        self.net = ranks.wrap(self.model)

    def batches(self, epoch: int):
        # the same shuffles whether or not the run was resumed
        generator = torch.Generator().manual_seed(self.config.seed + epoch)
        order = torch.randperm(len(self.data["kappa"]), generator=generator)
        return self.ranks.local_batches(order, self.config.batch_size)

    def _loss(self, network, kappa: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        pred = network(patch_features(kappa, *self.normaliser.log_input_stats))
        if self.config.exact_constant:  # the data's own constant, so that RBFL2's normalisation matches
            pred = torch.cat([true[:, :1], pred], dim=1)
        return LOSSES[self.config.loss](*_in_inner_product(self.config.inner_product, pred, true, kappa),
                                        **self.config.loss_options())

    def compute_loss(self, batch) -> tuple[torch.Tensor, float]:
        indices, weight = batch
        kappa = self.data["kappa"][indices, 0].to(self.device)
        loss = self._loss(self.net, kappa, self.data["basis"][indices].to(self.device))
        return loss, len(indices) if weight else 0  # a rank without samples of its own adds nothing

    def gradient_weight(self, batch) -> float:
        return batch[1]

    def _validation_loss(self, model: torch.nn.Module) -> dict:
        kappa, basis = self.validation_data["kappa"][:, 0], self.validation_data["basis"]
        total = 0.0
        for indices in torch.arange(len(kappa)).split(self.config.batch_size):
            loss = self._loss(model, kappa[indices].to(self.device), basis[indices].to(self.device))
            total += float(loss) * len(indices)
        return {"loss": total / len(kappa)}


def _train(config: TrainBasisConfig) -> Path:
    ranks = data_parallel(config.device)
    dataset, out = Path(config.dataset), Path(config.out)
    with DatasetFile(dataset, "gmsfem_basis") as data:
        meta, available = data.config, data.members()
    kinds = list(config.kinds or available)
    missing = sorted(set(kinds) - set(available))
    if missing:
        raise ValueError(f"{dataset} has no patches of kind {missing}; it has {available}")
    checkpoint = Checkpoint(out, "basis", config.identity(), writer=ranks.is_main,
                            meta={"n_basis": meta["n_basis"], "dim": meta["dim"],
                                  "exact_constant": config.exact_constant, "oversample": config.oversample})
    for kind in kinds:
        if checkpoint.epochs_done(kind) >= config.epochs:
            continue
        data = GMsFEMBasisDataset(dataset, kind, "train").tensors(("kappa", "basis"))
        if config.exact_constant:
            _check_constant_first(data["basis"], dataset, kind)
        validation = None
        if config.validation_split is not None:
            held_out = GMsFEMBasisDataset(dataset, kind, config.validation_split)
            check_validation_split(len(held_out), dataset, config.validation_split)
            validation = held_out.tensors(("kappa", "basis"))
        stored = checkpoint.model_entry(kind)
        normaliser = Normaliser.from_dict(stored["normaliser"]) if stored else \
            Normaliser.fit(data["kappa"], log_inputs=True)
        torch.manual_seed(config.seed)
        model = build_operator(config.architecture, n_features(meta["dim"]),
                               meta["n_basis"] - int(config.exact_constant) + config.oversample, meta["dim"],
                               width=config.width, depth=config.depth, modes=config.modes, **config.model_options)
        BasisTrainer(model, data, normaliser, config, ranks, validation_data=validation, checkpoint=checkpoint,
                     key=kind, desc=f"GMsFEM-NO {kind} ({config.loss})").train()
    return out


def _check_constant_first(basis: torch.Tensor, dataset, kind: str) -> None:
    """Refuse ``exact_constant`` for data whose first basis functions are not constant."""
    first = basis[:, 0].flatten(1)
    spread = (first.max(dim=1).values - first.min(dim=1).values) / first.abs().max(dim=1).values.clamp_min(1e-300)
    worst = float(spread.max())
    if worst > 1e-4:
        raise ValueError(f"{dataset}: the first basis functions of the {kind!r} patches are not constant "
                         f"(relative spread up to {worst:.2g}); train with exact_constant=False")


def _in_inner_product(inner_product: str, pred, true, kappa):
    """(pred, true, weight) for a loss: the ``(batch, n_basis, *vertices)`` bases flattened to
    (batch, n_basis, points) so that the loss's inner product is ``inner_product``."""
    if inner_product == "energy":
        with torch.no_grad():
            true, tau = self_energy_embedding(true, kappa)
        return energy_embedding(pred, kappa, tau), true, None
    weight = vertex_mass(kappa).flatten(1).to(pred.dtype) if inner_product == "kappa" else None
    return pred.flatten(2), true.flatten(2), weight
