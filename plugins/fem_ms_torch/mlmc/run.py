"""``fem-ms train-mlmc CONFIG``: an MLMC (or, with one level, single-level) run from a TOML file.

The file's layout is :class:`~.config.TrainMLMCConfig`'s (sections ``[data]``, ``[model]``,
``[mlmc]``, ``[train]``; module docstring of :mod:`fem_ms_torch.mlmc.config`). The summary (per-epoch history,
training time, the test loss on the finest level) is returned and written next to the
checkpoint as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoints import write_atomically
from ..registry import build_model, build_operator
from ..training import check_validation_split
from .batcher import MultilevelBatcher
from .config import MLMCData, TrainMLMCConfig
from .levels import cylinder_levels, darcy_levels
from .progression import batch_sizes, sample_counts
from .trainer import MLMCTrainer

__all__ = ["load_levels", "build_mlmc_model", "train_mlmc_from_config"]


def load_levels(data: MLMCData, split: str = "train", stats=None):
    """The levels of a ``[data]`` section (coarsest first) and their normaliser (grids; None on meshes)."""
    if data.kind == "multilevel":
        return darcy_levels(data.path, data.levels, split, stats)
    return cylinder_levels(data.path, data.levels, split, history=data.history, bundle=data.bundle,
                           source=data.source), None


def build_mlmc_model(config: TrainMLMCConfig) -> torch.nn.Module:
    """The network of the ``[model]`` section for the data of the ``[data]`` section."""
    options = {k: v for k, v in config.model.items() if k != "architecture"}
    if config.data.kind == "multilevel":  # inputs: standardised log κ and two coordinates
        return build_operator(config.architecture, 3, 1, 2, **options)
    return build_model("mppde", channels=2, history=config.data.history, bundle=config.data.bundle, **options)


def train_mlmc_from_config(source, progress: bool | None = None) -> dict:
    """Run the MLMC training a config (TOML/JSON path, mapping or :class:`TrainMLMCConfig`)
    describes; returns the summary. ``progress`` overrides ``[train] progress``."""
    config = source if isinstance(source, TrainMLMCConfig) else TrainMLMCConfig.load(source)
    data, schedule, train = config.data, config.mlmc, config.train
    levels, normaliser = load_levels(data, "train")
    test_levels, _ = load_levels(data, "test", normaliser)
    validation = None
    if train.validation_split is not None:
        validation = load_levels(data, train.validation_split, normaliser)[0][-1]
        check_validation_split(len(validation), data.path, train.validation_split)
    counts = sample_counts(schedule.progression, len(levels), len(levels[0]), delta=schedule.delta,
                           counts=schedule.counts, k=schedule.k, d=schedule.d)
    sizes = batch_sizes(len(levels), schedule.batch_size, schedule.delta)
    batcher = MultilevelBatcher(len(levels[0]), counts, sizes, schedule.sampling, train.seed)
    torch.manual_seed(train.seed)
    model = build_mlmc_model(config)
    trainer = MLMCTrainer(model, levels, batcher, train.epochs, loss=config.loss, lr=train.lr,
                          weight_decay=train.weight_decay, checkpoint=train.checkpoint, device=train.device,
                          progress=train.progress if progress is None else progress, normaliser=normaliser,
                          validation_level=validation, validate_every=train.validate_every,
                          settings={"config": config.identity()})
    trainer.train()
    summary = {"levels": trainer.settings["levels"], "counts": counts, "batch_sizes": sizes,
               "train_time_s": trainer.train_time_s, "test_loss_finest": trainer.evaluate(test_levels[-1]),
               "loss": config.loss, "history": trainer.history}
    if train.checkpoint is not None and trainer.rank == 0:
        text = json.dumps(summary, indent=2) + "\n"
        write_atomically(Path(train.checkpoint).with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return summary


# the name fem_ms/cli.py calls until the plugin's own commands take over the CLI
