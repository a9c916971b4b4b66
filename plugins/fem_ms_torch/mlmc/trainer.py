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
everything except the batcher is shared. CPU by default, CUDA when available, and
DistributedDataParallel when ``torch.distributed`` is initialised: every rank takes its share
of each level's batch and the gradients are averaged once per step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..checkpoints import load_checkpoint_file, save_checkpoint_file
from .batcher import MultilevelBatcher

__all__ = ["LOSSES", "MLMCTrainer", "train_single_level", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "fem-ms/mlmc/1"


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries (the per-sample mean, averaged: samples are equal in size)."""
    return torch.mean((pred - target) ** 2)


def relative_l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ‖pred − target‖₂ / ‖target‖₂ (the FNO papers' training loss)."""
    diff = (pred - target).flatten(1).norm(dim=1)
    return torch.mean(diff / target.flatten(1).norm(dim=1).clamp_min(1e-30))


LOSSES: dict[str, Callable] = {"mse": mse_loss, "relative_l2": relative_l2_loss}


def load_mlmc_checkpoint(path) -> dict:
    """A checkpoint written by :class:`MLMCTrainer` (``weights_only=True``)."""
    return load_checkpoint_file(path, CHECKPOINT_FORMAT, "an MLMC")


class MLMCTrainer:
    """Train ``model`` on ``levels`` with the batches of ``batcher``.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(*args)`` with the args of any level's ``batch`` (it must accept every
        resolution).
    levels : sequence
        Coarsest first; each has ``batch(indices, device) -> (args, target)`` and the same
        samples in the same order (see :mod:`.levels`).
    batcher : MultilevelBatcher
        As many levels as ``levels``.
    epochs : int
        Length of the run (sets the cosine learning-rate schedule).
    loss : {"mse", "relative_l2"} or callable
    lr : float
        Adam learning rate.
    checkpoint : path, optional
        Written atomically after every epoch; an existing one with the same settings is resumed,
        one with other settings is refused.
    settings : dict, optional
        Extra JSON-able facts that identify the run (the data, the model); stored in the
        checkpoint and compared on resume.
    device : str, optional
        Default "cuda" when available, else "cpu".
    progress : bool
        Show a progress bar.
    """

    def __init__(self, model: torch.nn.Module, levels: Sequence, batcher: MultilevelBatcher, epochs: int,
                 loss="mse", lr: float = 1e-3, checkpoint=None, settings: dict | None = None, device=None,
                 progress: bool = True, desc: str = "MLMC"):
        if len(levels) != batcher.levels:
            raise ValueError(f"{len(levels)} levels of data but the batcher has {batcher.levels} levels")
        sizes = {len(level) for level in levels}
        if sizes != {batcher.n_samples}:
            raise ValueError(f"every level must hold the batcher's {batcher.n_samples} samples, got {sorted(sizes)}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}")
            self.loss_name, self.loss = loss, LOSSES[loss]
        else:
            self.loss_name, self.loss = getattr(loss, "__name__", "custom"), loss
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.levels, self.batcher, self.epochs = list(levels), batcher, epochs
        self.model = model.to(self.device)
        self.distributed = torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1
        if self.distributed:
            world = torch.distributed.get_world_size()
            if any(b % world for b in batcher.batch_sizes):
                raise ValueError(f"batch sizes {batcher.batch_sizes} must divide among {world} ranks")
            self.rank, self.world = torch.distributed.get_rank(), world
            # every rank starts from rank 0's weights
            for tensor in self.model.state_dict().values():
                torch.distributed.broadcast(tensor, 0)
        else:
            self.rank, self.world = 0, 1
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs)
        self.settings = {"levels": [getattr(level, "name", str(i)) for i, level in enumerate(levels)],
                         "counts": batcher.counts, "batch_sizes": batcher.batch_sizes, "sampling": batcher.sampling,
                         "seed": batcher.seed, "epochs": epochs, "loss": self.loss_name, "lr": lr,
                         "model": getattr(model, "config", type(model).__name__), **(settings or {})}
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.progress, self.desc = progress and self.rank == 0, desc
        self.history: list[dict] = []
        self._warned = False
        if self.checkpoint is not None and self.checkpoint.exists():
            self._resume(load_mlmc_checkpoint(self.checkpoint))

    def _resume(self, state: dict) -> None:
        if state["settings"] != self.settings:
            raise FileExistsError(f"{self.checkpoint} was written by a run with other settings; remove it "
                                  f"or choose another path")
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = list(state["history"])
        log.info("resumed %s after epoch %d", self.checkpoint, len(self.history))

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

    def train(self) -> list[dict]:
        """Run the remaining epochs; returns the history (one record per epoch)."""
        bar = tqdm(range(len(self.history), self.epochs), desc=self.desc, unit="epoch", disable=not self.progress)
        for epoch in bar:
            self.model.train()
            batches = self.batcher.epoch(epoch)
            sums = {key: [0.0] * self.batcher.levels for key in ("loss", "fine_loss", "time_s", "cpu_s")}
            start, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                step = self.accumulate_gradients(batch)
                self.optimizer.step()
                for key in sums:
                    sums[key] = [a + b for a, b in zip(sums[key], step[key])]
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            self.scheduler.step()
            steps = len(batches)
            record = {"epoch": epoch + 1, "time_s": wall, "cpu_s": cpu, "steps": steps,
                      "level_time_s": sums["time_s"], "level_cpu_s": sums["cpu_s"],
                      "level_loss": [v / steps for v in sums["loss"]],
                      "level_fine_loss": [v / steps for v in sums["fine_loss"]]}
            self.history.append(record)
            if self.batcher.levels > 1 and sum(record["level_loss"]) < 0 and not self._warned:
                # the fine-loss estimate of a nonnegative loss cannot be negative in expectation: the
                # corrections are being fitted (coarse loss driven up) on too few fine samples
                log.warning("epoch %d: the telescoping-sum loss estimate is negative (%.3g); the correction "
                            "terms are overfitted on the fine levels' %s samples: give the fine levels more "
                            "samples", epoch + 1, sum(record["level_loss"]), self.batcher.counts[1:])
                self._warned = True
            bar.set_postfix(loss=f"{sum(record['level_loss']):.4g}", s=f"{wall:.2f}")
            if self.checkpoint is not None and self.rank == 0:
                save_checkpoint_file(self.checkpoint, {"settings": self.settings, "state_dict": self.model.state_dict(),
                                                       "optimizer": self.optimizer.state_dict(),
                                                       "scheduler": self.scheduler.state_dict(),
                                                       "history": self.history}, CHECKPOINT_FORMAT)
        return self.history

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

    @property
    def train_time_s(self) -> float:
        """Wall time of all training epochs so far (evaluation excluded)."""
        return sum(r["time_s"] for r in self.history)

    @property
    def train_cpu_s(self) -> float:
        """Process CPU time of all training epochs so far: on a shared CPU, a cost measure that
        other processes' load disturbs far less than wall time (with one torch thread)."""
        return sum(r["cpu_s"] for r in self.history)


def train_single_level(model: torch.nn.Module, level, epochs: int, batch_size: int, seed: int = 0,
                       **kwargs) -> MLMCTrainer:
    """The single-level baseline: the MLMC trainer with a one-level batcher over all samples.

    Returns the trained :class:`MLMCTrainer` (``kwargs`` go to its constructor).
    """
    batcher = MultilevelBatcher(len(level), [len(level)], [batch_size], "random", seed)
    trainer = MLMCTrainer(model, [level], batcher, epochs, **kwargs)
    trainer.train()
    return trainer
