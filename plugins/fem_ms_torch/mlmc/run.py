"""``fem-ms train-mlmc CONFIG``: an MLMC (or, with one level, single-level) run from a TOML file.

.. code-block:: toml

    [data]
    kind = "multilevel"              # or "cylinder_flow"
    path = "data/multilevel_darcy.h5"
    levels = [16, 32, 64]            # grid sizes, or mesh numbers 1..4 for cylinder_flow; coarsest first
    # cylinder_flow only: history = 1, bundle = 1, source = "solved" (or "transferred")

    [model]
    architecture = "fno"             # "fno", "ffno", "localno", "localffno" (grids) or "mppde"
                                     # (meshes); other keys: constructor arguments
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

The summary (per-epoch history, training time, the test loss on the finest level) is
returned and written next to the checkpoint as JSON.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import torch

from ..operators import ARCHITECTURES
from .batcher import MultilevelBatcher
from .levels import cylinder_levels, darcy_levels
from .progression import batch_sizes, sample_counts
from .trainer import MLMCTrainer

__all__ = ["load_levels", "build_model", "train_from_config"]

_SECTIONS = {
    "data": {"kind", "path", "levels", "history", "bundle", "source"},
    "model": None,  # constructor arguments, checked by the constructor
    "mlmc": {"progression", "delta", "batch_size", "sampling", "counts", "k", "d"},
    "train": {"epochs", "lr", "loss", "seed", "checkpoint", "device"},
}
DATA_KINDS = ("multilevel", "cylinder_flow")


def _check(config: dict) -> None:
    unknown = set(config) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"train-mlmc config: unknown sections {sorted(unknown)}; known: {sorted(_SECTIONS)}")
    for section, keys in _SECTIONS.items():
        if keys is not None and set(config.get(section, {})) - keys:
            raise ValueError(f"train-mlmc config: unknown keys {sorted(set(config[section]) - keys)} in "
                             f"[{section}]; known: {sorted(keys)}")
    data = config.get("data", {})
    for key in ("kind", "path", "levels"):
        if key not in data:
            raise ValueError(f"train-mlmc config: [data] needs {key!r}")
    if data["kind"] not in DATA_KINDS:
        raise ValueError(f"train-mlmc config: data kind must be one of {DATA_KINDS}, got {data['kind']!r}")


def load_levels(data: dict, split: str = "train", stats: dict | None = None):
    """The levels of a ``[data]`` section (coarsest first) and the normalisation stats (grids)."""
    if data["kind"] == "multilevel":
        return darcy_levels(data["path"], data["levels"], split, stats)
    return cylinder_levels(data["path"], data["levels"], split, history=data.get("history", 1),
                           bundle=data.get("bundle", 1), source=data.get("source", "solved")), None


def build_model(model: dict, data: dict) -> torch.nn.Module:
    """The network of a ``[model]`` section for the data of a ``[data]`` section."""
    options = dict(model)
    name = options.pop("architecture", "fno" if data["kind"] == "multilevel" else "mppde")
    if data["kind"] == "multilevel":
        if name not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {name!r} for grid data; known: {sorted(ARCHITECTURES)}")
        return ARCHITECTURES[name](3, 1, dim=2, **options)
    if name != "mppde":
        raise ValueError(f"unknown architecture {name!r} for mesh data; known: ['mppde']")
    from ..graph import MPPDE

    return MPPDE(channels=2, history=data.get("history", 1), bundle=data.get("bundle", 1), **options)


def train_from_config(config, progress: bool = True) -> dict:
    """Run the MLMC training a config (dict or TOML path) describes; returns the summary."""
    if not isinstance(config, dict):
        config = tomllib.loads(Path(config).read_text())
    _check(config)
    data, mlmc, train = config["data"], config.get("mlmc", {}), config.get("train", {})
    seed = train.get("seed", 0)
    levels, stats = load_levels(data, "train")
    test_levels, _ = load_levels(data, "test", stats)
    delta = mlmc.get("delta", 2.0)
    counts = sample_counts(mlmc.get("progression", "geometric"), len(levels), len(levels[0]), delta=delta,
                           counts=mlmc.get("counts"), k=mlmc.get("k", 1.0), d=mlmc.get("d", 2))
    sizes = batch_sizes(len(levels), mlmc.get("batch_size", 16), delta)
    batcher = MultilevelBatcher(len(levels[0]), counts, sizes, mlmc.get("sampling", "random"), seed)
    torch.manual_seed(seed)
    model = build_model(config.get("model", {}), data)
    loss = train.get("loss", "relative_l2" if data["kind"] == "multilevel" else "mse")
    trainer = MLMCTrainer(model, levels, batcher, train.get("epochs", 50), loss=loss, lr=train.get("lr", 1e-3),
                          checkpoint=train.get("checkpoint"), device=train.get("device"), progress=progress,
                          settings={"data": {**data, "path": str(Path(data["path"]).resolve())}, "stats": stats})
    trainer.train()
    summary = {"levels": trainer.settings["levels"], "counts": counts, "batch_sizes": sizes,
               "train_time_s": trainer.train_time_s, "test_loss_finest": trainer.evaluate(test_levels[-1]),
               "loss": loss, "history": trainer.history}
    if train.get("checkpoint"):
        Path(train["checkpoint"]).with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
