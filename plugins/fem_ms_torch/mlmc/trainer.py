"""The MLMC trainer: one optimiser step per multilevel batch (Rowbottom et al., Algorithm 1).

For a batch (B_0^k, …, B_L^k) the gradient is that of the telescoping sum

    loss_0(B_0^k) + Σ_{l=1}^{L} [loss_l(B_l^k) − loss_{l−1}(B_l^k)],

where loss_l(B) is the mean per-sample loss of the model on level l's version of the samples
B. Each correction evaluates the *same* samples at two consecutive resolutions, so its
gradient is small when the resolutions agree and the few fine samples only correct the coarse
estimate. Each term is back-propagated on its own (the gradients add up to the gradient of the
sum) so that the wall time of every level, backward pass included, can be reported.

With ``nested`` sampling B_l^k is the head of B_{l−1}^k, so the coarse half of correction l is
already part of level l−1's evaluation: the sum is regrouped by resolution,
Σ_l [loss_l(B_l^k) − loss_l(B_{l+1}^k)] (the last level without the second part), and each
resolution is evaluated once per step (the paper's reason for nested sub-sampling) instead of
twice. The gradient is the same for models that treat the samples of a batch independently
(the FNO, the MP-PDE with its per-graph norm).

Single-level training is this trainer with a one-level batcher (:func:`train_single_level`):
everything except the batcher is shared. The epoch loop, checkpoints, validation and metrics
are the plugin's training core (:class:`~fem_ms_torch.training.Trainer`); the telescoping step
is this trainer's ``train_one_batch``. CPU by default, CUDA when available, and data-parallel
when ``torch.distributed`` is initialised: every rank takes its share of each level's batch
and the gradients are averaged once per step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import torch

from ..checkpoints import Checkpoint
from ..distributed import DataParallel
from ..normalisation import Normaliser
from ..registry import model_record
from ..training import Trainer
from .batcher import MultilevelBatcher

__all__ = ["LOSSES", "MLMCTrainer", "train_single_level"]

log = logging.getLogger(__name__)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries (the per-sample mean, averaged: samples are equal in size)."""
    return torch.mean((pred - target) ** 2)


def relative_l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ‖pred − target‖₂ / ‖target‖₂ (the FNO papers' training loss)."""
    diff = (pred - target).flatten(1).norm(dim=1)
    return torch.mean(diff / target.flatten(1).norm(dim=1).clamp_min(1e-30))


LOSSES: dict[str, Callable] = {"mse": mse_loss, "relative_l2": relative_l2_loss}


class MLMCTrainer(Trainer):
    """Train ``model`` on ``levels`` with the batches of ``batcher``.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(*args)`` with the args of any level's ``batch`` (it must accept every
        resolution). A registered model (:mod:`fem_ms_torch.registry`) is stored with its
        record, so that :func:`fem_ms_torch.checkpoints.load_model` rebuilds it.
    levels : sequence
        Coarsest first; each has ``batch(indices, device) -> (args, target)`` and the same
        samples in the same order (see :mod:`.levels`).
    batcher : MultilevelBatcher
        As many levels as ``levels``.
    epochs : int
        Length of the run (sets the cosine learning-rate schedule).
    loss : {"mse", "relative_l2"} or callable
    lr, weight_decay : float
        Of AdamW (the default ``weight_decay=0`` is Adam).
    checkpoint : path, optional
        Written atomically after every epoch; an existing one with the same settings is resumed,
        one with other settings is refused.
    settings : dict, optional
        Extra plain facts that identify the run (the data, the model); stored in the
        checkpoint and compared on resume.
    normaliser : Normaliser, optional
        How the levels' data were standardised (:func:`.levels.darcy_levels`); stored with the model.
    validation_level : level, optional
        Evaluated (mean per-sample loss) every ``validate_every`` epochs and after the last.
    device : str, optional
        Default "cuda" when available, else "cpu".
    progress : bool
        Show a progress bar.
    """

    def __init__(self, model: torch.nn.Module, levels: Sequence, batcher: MultilevelBatcher, epochs: int,
                 loss="mse", lr: float = 1e-3, checkpoint=None, settings: dict | None = None, device=None,
                 progress: bool = True, desc: str = "MLMC", normaliser: Normaliser | None = None,
                 validation_level=None, validate_every: int = 1, weight_decay: float = 0.0):
        if len(levels) != batcher.levels:
            raise ValueError(f"{len(levels)} levels of data but the batcher has {batcher.levels} levels")
        sizes = {len(level) for level in levels}
        if sizes != {batcher.n_samples}:
            raise ValueError(f"every level must hold the batcher's {batcher.n_samples} samples, got {sorted(sizes)}")
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}")
            self.loss_name, self.loss = loss, LOSSES[loss]
        else:
            self.loss_name, self.loss = getattr(loss, "__name__", "custom"), loss
        self.levels, self.batcher = list(levels), batcher
        self.distributed = torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1
        self.rank, self.world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) \
            if self.distributed else (0, 1)
        if any(b % self.world for b in batcher.batch_sizes):
            raise ValueError(f"batch sizes {batcher.batch_sizes} must divide among {self.world} ranks")
        record = model_record(model)
        self.settings = {"levels": [getattr(level, "name", str(i)) for i, level in enumerate(levels)],
                         "counts": batcher.counts, "batch_sizes": batcher.batch_sizes, "sampling": batcher.sampling,
                         "seed": batcher.seed, "epochs": epochs, "loss": self.loss_name, "lr": lr,
                         "weight_decay": weight_decay, "model": record or type(model).__name__, **(settings or {})}
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._warned = False
        self.validation_level = validation_level
        super().__init__(model, epochs=epochs, lr=lr, weight_decay=weight_decay,
                         checkpoint=None if checkpoint is None else Checkpoint(checkpoint, "mlmc", self.settings,
                                                                               writer=self.rank == 0),
                         normaliser=normaliser, ranks=DataParallel(self.rank, self.world, str(device)), device=device,
                         validation=None if validation_level is None else self._validation_loss,
                         validate_every=validate_every, progress=progress, desc=desc)
        if self.distributed:  # every rank starts from rank 0's weights
            for tensor in self.model.state_dict().values():
                torch.distributed.broadcast(tensor, 0)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _level_loss(self, level: int, indices: torch.Tensor) -> torch.Tensor:
        args, target = self.levels[level].batch(indices[self.rank::self.world], self.device)
        return self.loss(self.model(*args), target)

    def accumulate_gradients(self, batch: Sequence[torch.Tensor]) -> dict:
        """Zero the gradients and accumulate those of the telescoping sum for one multilevel batch.

        Returns per level: ``loss`` (level 0: loss_0; level l ≥ 1: the correction
        loss_l − loss_{l−1}), ``fine_loss`` (loss_l on its samples), ``time_s`` and ``cpu_s``
        (wall and process CPU time of the forward and backward passes of the level's term; with
        nested sampling, of the level's resolution, evaluated once).
        """
        self.optimizer.zero_grad(set_to_none=False)
        if self.batcher.sampling == "nested" and len(batch) > 1:
            record = self._accumulate_by_resolution(batch)
        else:
            record = self._accumulate_by_term(batch)
        if self.distributed:
            self._average_gradients()
        return record

    def _accumulate_by_term(self, batch: Sequence[torch.Tensor]) -> dict:
        record = {"loss": [], "fine_loss": [], "time_s": [], "cpu_s": []}
        for level, indices in enumerate(batch):
            self._sync()
            start, cpu = time.perf_counter(), time.process_time()
            fine = self._level_loss(level, indices)
            term = fine - self._level_loss(level - 1, indices) if level else fine
            self.check_finite(term, what=f"the level-{level} loss term")
            term.backward()
            self._sync()
            record["time_s"].append(time.perf_counter() - start)
            record["cpu_s"].append(time.process_time() - cpu)
            record["loss"].append(float(term.detach()))
            record["fine_loss"].append(float(fine.detach()))
        return record

    def _head(self, level: int, output: torch.Tensor, target: torch.Tensor, count: int):
        """The model's output and the target for the first ``count`` samples of a level's batch."""
        head = getattr(self.levels[level], "head", None)
        return head(output, target, count) if head is not None else (output[:count], target[:count])

    def _accumulate_by_resolution(self, batch: Sequence[torch.Tensor]) -> dict:
        """Nested batches: one evaluation per resolution (see the module docstring)."""
        for coarse, fine in zip(batch, batch[1:]):
            if not torch.equal(coarse[:len(fine)], fine):
                raise ValueError("nested batches must put each finer level's samples first in the coarser batch")
        record = {"fine_loss": [], "time_s": [], "cpu_s": []}
        head_loss = []  # loss_l on B_{l+1}: the coarse half of correction l + 1
        for level, indices in enumerate(batch):
            self._sync()
            start, cpu = time.perf_counter(), time.process_time()
            # a rank's share of B_l begins with its share of B_{l+1} (sizes divide among the ranks)
            args, target = self.levels[level].batch(indices[self.rank::self.world], self.device)
            output = self.model(*args)
            fine = self.loss(output, target)
            term = fine
            if level + 1 < len(batch):
                coarse = self.loss(*self._head(level, output, target, len(batch[level + 1]) // self.world))
                term = fine - coarse
                head_loss.append(float(coarse.detach()))
            self.check_finite(term, what=f"the level-{level} loss term")
            term.backward()
            self._sync()
            record["time_s"].append(time.perf_counter() - start)
            record["cpu_s"].append(time.process_time() - cpu)
            record["fine_loss"].append(float(fine.detach()))
        record["loss"] = record["fine_loss"][:1] + [f - c for f, c in zip(record["fine_loss"][1:], head_loss)]
        return record

    def _average_gradients(self) -> None:
        for p in self.model.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.world

    def batches(self, epoch: int) -> list[list[torch.Tensor]]:
        return self.batcher.epoch(epoch)

    def train_one_batch(self, step: int, batch: Sequence[torch.Tensor]) -> dict:
        record = self.accumulate_gradients(batch)
        self.optimizer.step()
        return record

    def epoch_metrics(self, steps: list[dict]) -> dict:
        sums = {key: [sum(step[key][level] for step in steps) for level in range(self.batcher.levels)]
                for key in ("loss", "fine_loss", "time_s", "cpu_s")}
        level_loss = [v / len(steps) for v in sums["loss"]]
        return {"loss": sum(level_loss), "steps": len(steps), "level_time_s": sums["time_s"],
                "level_cpu_s": sums["cpu_s"], "level_loss": level_loss,
                "level_fine_loss": [v / len(steps) for v in sums["fine_loss"]]}

    def on_epoch_end(self, record: dict) -> None:
        if self.batcher.levels > 1 and record["loss"] < 0 and not self._warned:
            # the fine-loss estimate of a nonnegative loss cannot be negative in expectation: the
            # corrections are being fitted (coarse loss driven up) on too few fine samples
            log.warning("epoch %d: the telescoping-sum loss estimate is negative (%.3g); the correction "
                        "terms are overfitted on the fine levels' %s samples: give the fine levels more "
                        "samples", record["epoch"], record["loss"], self.batcher.counts[1:])
            self._warned = True

    def _validation_loss(self, model: torch.nn.Module) -> dict:
        return {"loss": self.evaluate(self.validation_level)}

    @torch.no_grad()
    def evaluate(self, level, batch_size: int = 16, loss=None) -> float:
        """Mean per-sample loss of the model on every sample of ``level`` (a level object)."""
        fn = LOSSES[loss] if isinstance(loss, str) else (loss or self.loss)
        self.model.eval()
        total, count = 0.0, 0
        for start in range(0, len(level), batch_size):
            indices = torch.arange(start, min(start + batch_size, len(level)))
            args, target = level.batch(indices, self.device)
            total += float(fn(self.model(*args), target)) * len(indices)
            count += len(indices)
        return total / count


def train_single_level(model: torch.nn.Module, level, epochs: int, batch_size: int, seed: int = 0,
                       **kwargs) -> MLMCTrainer:
    """The single-level baseline: the MLMC trainer with a one-level batcher over all samples.

    Returns the trained :class:`MLMCTrainer` (``kwargs`` go to its constructor).
    """
    batcher = MultilevelBatcher(len(level), [len(level)], [batch_size], "random", seed)
    trainer = MLMCTrainer(model, [level], batcher, epochs, **kwargs)
    trainer.train()
    return trainer
