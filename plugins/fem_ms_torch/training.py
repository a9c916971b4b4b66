"""The training core: one epoch loop that every trainer of the plugin runs on.

:class:`Trainer` is neuraloperator's ``Trainer`` reduced to what the plugin's trainers share:
AdamW with a cosine learning-rate schedule over the run, a progress bar, a checkpoint after
every epoch (:class:`~.checkpoints.Checkpoint`: model record, weights, normaliser, optimiser
and scheduler states, random-number generator states, history) from which an interrupted run
resumes to the same weights as an uninterrupted one, a validation evaluated every N epochs,
and the per-epoch metrics written to a CSV file (and to TensorBoard when
``torch.utils.tensorboard`` imports) beside the checkpoint. A non-finite loss stops the run
with :class:`NonFiniteLossError` naming the epoch and step.

What differs between trainers goes into overridable methods, as in neuraloperator's trainer:
:meth:`Trainer.batches` (the batches of an epoch), :meth:`Trainer.compute_loss` (the loss of a
batch) or the whole step :meth:`Trainer.train_one_batch` (MLMC's telescoping sum), the
optimiser of an epoch (:meth:`Trainer.active_optimizer`), the end of an epoch
(:meth:`Trainer.end_epoch`: GP operators' closed-form variational and noise updates), and hooks
before and after training. Data parallelism stays with the trainer (it knows how a batch is
split); the core takes the process's place (:class:`~.distributed.DataParallel`) to sum
metrics over ranks and to let rank 0 alone write files.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoints import SINGLE_MODEL, Checkpoint, model_entry, write_atomically
from .distributed import DataParallel
from .normalisation import Normaliser

__all__ = ["Trainer", "NonFiniteLossError", "check_finite", "metrics_path", "check_validation_split"]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss (or another training quantity) became NaN or infinite."""


def check_finite(value, what: str) -> float:
    """``value`` as a float; :class:`NonFiniteLossError` with ``what`` if it is NaN or infinite."""
    number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if not math.isfinite(number):
        raise NonFiniteLossError(f"{what} is {number}: training diverged (lower the learning rate, check the "
                                 f"data for extreme values, or normalise them)")
    return number


def check_validation_split(samples: int, dataset, split: str) -> None:
    """``ValueError`` if the validation ``split`` of ``dataset`` holds no samples."""
    if samples == 0:
        raise ValueError(f"{dataset}: the {split!r} split is empty, nothing to validate on (generate the dataset "
                         f"with a validation_fraction > 0, or choose another validation_split)")


def metrics_path(checkpoint) -> Path:
    """The CSV of per-epoch metrics beside a checkpoint: ``run.pt`` → ``run.metrics.csv``."""
    return Path(checkpoint).with_suffix(".metrics.csv")


def _flat(record: dict) -> dict:
    """A history record with list values spread over numbered columns (``level_loss_0``, ...)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, (list, tuple)):
            out.update({f"{key}_{i}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def _tensorboard_writer(directory: Path, first_epoch: int):
    """A TensorBoard writer that drops events after ``first_epoch`` left by an interrupted run,
    or None when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(directory), purge_step=first_epoch + 1)


class Trainer:
    """One training run of ``model``: the epoch loop, its checkpoint, validation and metrics.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device``. A registered model (:mod:`.registry`) is stored with its record,
        so that :func:`~.checkpoints.load_model` rebuilds it; any other module with its
        weights only.
    epochs : int
        Length of the run.
    schedule_length : int, optional
        Epochs of the cosine learning-rate schedule (default ``epochs``).
    lr, weight_decay : float
        Of the AdamW optimiser (``weight_decay=0`` is Adam).
    parameters : iterable of tensors, optional
        What the optimiser trains (default: every parameter that requires a gradient).
    checkpoint : Checkpoint, optional
        Written after every epoch under ``key``; a stored run of ``key`` is resumed.
    key : str
        This run's entry in the checkpoint (one per model: GMsFEM-NO trains one per kind).
    normaliser : Normaliser, optional
        How the model's data were standardised; stored with the model.
    validation : callable, optional
        ``validation(model) -> dict`` of figures, evaluated without gradients every
        ``validate_every`` epochs and after the last, recorded as ``val_<name>``.
    max_seconds : float, optional
        Stop after the epoch at which the training time of the run (all sessions) passes it;
        rerunning continues.
    max_cpu_seconds : float, optional
        The same with the process CPU time of the training epochs (:attr:`train_cpu_s`): the
        budget that compares models fairly on a shared machine.
    ranks : DataParallel, optional
        This process's place in a data-parallel run (default: a single process).
    device : str, optional
        Default: the ranks' device, else CUDA when available, else CPU.
    progress : bool
        A progress bar (rank 0).
    desc : str
        Label of the progress bar and of error messages.
    """

    def __init__(self, model: torch.nn.Module, *, epochs: int, schedule_length: int | None = None,
                 lr: float = 1e-3, weight_decay: float = 0.01,
                 parameters: Iterable[torch.Tensor] | None = None, checkpoint: Checkpoint | None = None,
                 key: str = SINGLE_MODEL, normaliser: Normaliser | None = None,
                 validation: Callable[[torch.nn.Module], dict] | None = None, validate_every: int = 1,
                 max_seconds: float | None = None, max_cpu_seconds: float | None = None,
                 ranks: DataParallel | None = None, device=None,
                 progress: bool = True, desc: str = "training"):
        for name, value in (("epochs", epochs), ("validate_every", validate_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{desc}: {name} must be a positive integer, got {value!r}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"{desc}: lr must be a positive number, got {lr!r}")
        for name, value in (("max_seconds", max_seconds), ("max_cpu_seconds", max_cpu_seconds)):
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{desc}: {name} must be non-negative, got {value!r}")
        device = device or (ranks.device if ranks is not None else None) or \
            ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(device)
        self.ranks = ranks or DataParallel(0, 1, str(self.device))
        self.model = model.to(self.device)
        self.epochs, self.desc = epochs, desc
        params = [p for p in self.model.parameters() if p.requires_grad] if parameters is None else list(parameters)
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=schedule_length or epochs)
        self.checkpoint, self.key, self.normaliser = checkpoint, key, normaliser
        self.validation, self.validate_every, self.max_seconds = validation, validate_every, max_seconds
        self.max_cpu_seconds = max_cpu_seconds
        self.progress = progress and self.ranks.is_main
        self.history: list[dict] = []
        self.epoch, self.step = 0, None  # the epoch being trained and its step (0-based; None between steps)
        self._tensorboard, self._logged = None, 0  # epochs of the history already sent to TensorBoard

    # -- what a trainer may override -------------------------------------------------------

    def stateful(self) -> dict:
        """Objects with ``state_dict``/``load_state_dict`` that a resume restores (besides the model)."""
        return {"optimizer": self.optimizer, "scheduler": self.scheduler}

    def batches(self, epoch: int) -> Iterable:
        """The batches of ``epoch``: a function of the epoch alone, so that a resumed run sees
        the batches an uninterrupted one would."""
        raise NotImplementedError(f"{type(self).__name__} must define batches(epoch)")

    def compute_loss(self, batch) -> tuple[torch.Tensor, float]:
        """(mean loss of ``batch``, how many samples it averages) for the default step."""
        raise NotImplementedError(f"{type(self).__name__} must define compute_loss(batch) or train_one_batch")

    def gradient_weight(self, batch) -> float:
        """Factor of the batch's loss in its gradient (data parallelism weights uneven shares)."""
        return 1.0

    def active_optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of the current epoch (GP operators fit their mean first with another)."""
        return self.optimizer

    def train_one_batch(self, step: int, batch) -> dict:
        """One optimiser step; returns the step's figures (``loss`` and its sample ``count``)."""
        optimizer = self.active_optimizer()
        optimizer.zero_grad()
        loss, count = self.compute_loss(batch)
        value = self.check_finite(loss)
        (loss * self.gradient_weight(batch)).backward()
        optimizer.step()
        return {"loss": value, "count": count}

    def epoch_metrics(self, steps: list[dict]) -> dict:
        """The epoch's figures from its steps': the sample-weighted mean loss over all ranks."""
        total, count = self.ranks.sum(sum(s["loss"] * s["count"] for s in steps), sum(s["count"] for s in steps))
        return {"loss": total / count if count else float("nan")}

    def end_epoch(self) -> None:
        """After the epoch's last step: advance the learning-rate schedule."""
        self.scheduler.step()

    def on_train_start(self, resumed: bool) -> None:
        """Before the first epoch of this session (``resumed``: the state came from the checkpoint)."""

    def on_epoch_start(self) -> None:
        """Before the first step of epoch ``self.epoch`` (timed with the epoch)."""

    def on_epoch_end(self, record: dict) -> None:
        """After the epoch's record is complete, before it is saved (may add figures to it)."""

    def on_train_end(self) -> None:
        """After the last epoch of this session (or a ``max_seconds`` stop)."""

    # -- the loop ---------------------------------------------------------------------------

    def check_finite(self, value, what: str = "the loss") -> float:
        """``value`` as a float, or :class:`NonFiniteLossError` naming this run's epoch and step."""
        where = f"epoch {self.epoch + 1}" + (f", step {self.step + 1}" if self.step is not None else "")
        return check_finite(value, f"{self.desc}: {what} at {where}")

    @property
    def epochs_done(self) -> int:
        """Epochs completed, this session's and those of the run it resumed."""
        return len(self.history)

    @property
    def train_time_s(self) -> float:
        """Wall time of all training epochs so far (evaluation excluded)."""
        return sum(r["time_s"] for r in self.history)

    @property
    def train_cpu_s(self) -> float:
        """Process CPU time of all training epochs so far: on a shared CPU, a cost measure that
        other processes' load disturbs far less than wall time (with one torch thread)."""
        return sum(r["cpu_s"] for r in self.history)

    def _restore(self) -> bool:
        run = self.checkpoint.run(self.key) if self.checkpoint is not None else None
        if run is None:
            return False
        self.model.load_state_dict(self.checkpoint.model_entry(self.key)["state_dict"])
        for name, obj in self.stateful().items():
            obj.load_state_dict(run["state"][name])
        self.history = list(run["history"])
        torch.set_rng_state(run["rng"]["torch"])
        if "cuda" in run["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(run["rng"]["cuda"])
        log.info("%s: resumed %s after epoch %d", self.desc, self.checkpoint.path, self.epochs_done)
        return True

    def _out_of_time(self) -> bool:
        return ((self.max_seconds is not None and self.train_time_s > self.max_seconds)
                or (self.max_cpu_seconds is not None and self.train_cpu_s > self.max_cpu_seconds))

    def train(self) -> list[dict]:
        """Run (or resume) the remaining epochs; returns the history, one record per epoch."""
        resumed = self._restore()
        self.on_train_start(resumed)
        bar = tqdm(total=self.epochs, initial=self.epochs_done, desc=self.desc, unit="epoch",
                   disable=not self.progress)
        try:
            while self.epochs_done < self.epochs:
                record = self._run_epoch(self.epochs_done)
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("loss", "val_loss")})
                if self._out_of_time():
                    break
            self.on_train_end()
        finally:
            bar.close()
            if self._tensorboard is not None:
                self._tensorboard.close()
                self._tensorboard = None
        return self.history

    def _run_epoch(self, epoch: int) -> dict:
        self.epoch = epoch
        self.model.train()
        lr = self.active_optimizer().param_groups[0]["lr"]
        start, cpu = time.perf_counter(), time.process_time()
        self.on_epoch_start()
        steps = []
        for step, batch in enumerate(self.batches(epoch)):
            self.step = step
            steps.append(self.train_one_batch(step, batch))
        self.step = None
        self.end_epoch()
        record = {"epoch": epoch + 1, **self.epoch_metrics(steps), "lr": lr,
                  "time_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}
        self.check_finite(record["loss"], what="the epoch's mean loss")
        if self.validation is not None and ((epoch + 1) % self.validate_every == 0 or epoch + 1 == self.epochs):
            record.update(self.validate())
        self.on_epoch_end(record)
        self.history.append(record)
        self.save()
        return record

    def validate(self) -> dict:
        """The validation figures as ``val_<name>`` (model in eval mode, no gradients, and the
        random-number generators left as they were: validating does not change training)."""
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            figures = self.validation(self.model)
        self.model.train()
        out = {}
        for name, value in figures.items():
            out[f"val_{name}"] = self.check_finite(value, what=f"the validation {name}")
        return out

    def save(self) -> None:
        """Write the checkpoint (if any) and the metrics beside it."""
        if self.checkpoint is None:
            return
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        run = {"epochs_done": self.epochs_done, "history": list(self.history),
               "state": {name: obj.state_dict() for name, obj in self.stateful().items()}, "rng": rng}
        self.checkpoint.update(self.key, model_entry(self.model, self.normaliser), run)
        if self.ranks.is_main:
            self._write_metrics()
        self.ranks.barrier()

    def _write_metrics(self) -> None:
        runs = self.checkpoint.data["runs"]
        rows = [{"run": key, **_flat(record)} for key, run in runs.items() for record in run["history"]]
        columns = list(dict.fromkeys(column for row in rows for column in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        path = metrics_path(self.checkpoint.path)
        write_atomically(path, lambda tmp: Path(tmp).write_text(text.getvalue()))
        if self._logged == self.epochs_done:  # saved again without a new epoch (e.g. after calibration)
            return
        if self._tensorboard is None:
            directory = self.checkpoint.path.with_suffix(".tensorboard") / self.key
            self._tensorboard = _tensorboard_writer(directory, self.epochs_done - 1)
        if self._tensorboard is not None:
            for name, value in _flat(self.history[-1]).items():
                if name != "epoch" and isinstance(value, (int, float)):
                    self._tensorboard.add_scalar(name, value, self.epochs_done)
            self._tensorboard.flush()
        self._logged = self.epochs_done
