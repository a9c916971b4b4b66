"""Checkpoint files: one format for every trainer of the plugin (GMsFEM-NO, standalone, MLMC, GP operators).

A checkpoint is a dict of plain tensors and Python containers, loaded with
``torch.load(weights_only=True)`` (never arbitrary pickled objects):

* ``format`` = ``"fem-ms/checkpoint"``, ``format_version``, and ``trainer`` (which trainer wrote it);
* ``config``: the typed configuration of the run (what a resume must match);
* ``meta``: facts the models' users need (e.g. N_bf and the dimension of GMsFEM-NO models);
* ``models``: per key (one per neighbourhood kind for GMsFEM-NO, else ``"model"``) the model's
  registry record (:mod:`.registry`), its weights and its :class:`~.normalisation.Normaliser`;
* ``runs``: per key the training state — epochs done, per-epoch history, optimiser and
  scheduler states, random-number generator states — from which a run resumes exactly.

Files are written atomically (a temporary file in the same directory, then ``os.replace``: an
interrupted write leaves the previous checkpoint intact) and readable under the user's umask.
Checkpoints of the GMsFEM-NO format ``fem-ms/gmsfem-no/1`` still load for inference; those of
the other earlier formats are named with the command that retrains them.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from fem_ms.atomic import atomic_path

from .normalisation import Normaliser
from .registry import model_from_record, model_record, plain_state_dict

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "load_checkpoint", "load_model", "model_entry", "stored_model",
           "stored_normaliser", "write_atomically"]

FORMAT = "fem-ms/checkpoint"
FORMAT_VERSION = 1
SINGLE_MODEL = "model"  # the key of the one model of a checkpoint (GMsFEM-NO keys by neighbourhood kind)
_RETRAIN = {"fem-ms/gmsfem-no/1": "fem-ms train-basis", "fem-ms/mlmc/1": "fem-ms train-mlmc",
            "fem-ms/gpo/1": "fem-ms train-gpo", "fem-ms/gpo/2": "fem-ms train-gpo", "fem-ms/gpo/3": "fem-ms train-gpo"}


def write_atomically(path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary path)``, then move the file to ``path`` (readable under the umask):
    readers see the old file or the new one, never a partial one."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def _read(path: Path) -> dict:
    """The raw dict in ``path``; errors that say what the file is (never torch's advice to unpickle it)."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        reason = "it holds objects other than tensors and plain containers" \
            if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc).lower() else \
            "torch cannot read it"
        raise ValueError(f"{path} is not a fem-ms checkpoint: {reason} (a damaged or foreign file; "
                         f"checkpoints are read as weights-only data)") from None
    if not isinstance(data, dict) or "format" not in data:
        raise ValueError(f"{path} is not a fem-ms checkpoint (no format tag)")
    return data


def _from_gmsfem_no_1(data: dict) -> dict:
    """A ``fem-ms/gmsfem-no/1`` file in today's layout, for inference (it cannot be resumed)."""
    def model(entry: dict, log_kappa: bool = True) -> dict:
        return {"record": {"name": entry.get("architecture", "ffno"), "arguments": dict(entry["model"])},
                "state_dict": entry["state_dict"],
                "normaliser": Normaliser(entry["log_kappa_mean"], entry["log_kappa_std"], log_inputs=log_kappa,
                                         output_scale=entry.get("scale", 1.0)).to_dict()}

    if data.get("kind") == "standalone":
        models = {SINGLE_MODEL: model({**data, "architecture": "ffno"})}
        return {"trainer": "standalone", "config": {"level": data["level"]}, "meta": {}, "models": models, "runs": {}}
    settings = data.get("settings", {})
    meta = {"n_basis": data["n_basis"], "dim": data["dim"], "exact_constant": bool(settings.get("exact_constant")),
            "oversample": int(settings.get("oversample", 0))}
    return {"trainer": "basis", "config": settings, "meta": meta,
            "models": {kind: model(entry) for kind, entry in data["kinds"].items()}, "runs": {}}


def load_checkpoint(path) -> dict:
    """The checkpoint at ``path``, checked: ``ValueError`` for foreign, damaged or retired formats.

    Returns the dict described in the module docstring (a ``fem-ms/gmsfem-no/1`` file converted,
    with ``"converted_from"`` naming its format and no training runs).
    """
    path = Path(path)
    data = _read(path)
    found = data["format"]
    if found == "fem-ms/gmsfem-no/1":
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "converted_from": found, **_from_gmsfem_no_1(data)}
    if found in _RETRAIN:
        raise ValueError(f"{path} was written in the retired checkpoint format {found!r}; retrain it with "
                         f"`{_RETRAIN[found]}` (this version reads {FORMAT!r} version {FORMAT_VERSION})")
    if found != FORMAT:
        raise ValueError(f"{path} is not a fem-ms checkpoint (format {found!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {data.get('format_version')!r}; this version of "
                         f"fem_ms_torch reads version {FORMAT_VERSION}: retrain it with this version")
    return data


def model_entry(model: torch.nn.Module, normaliser: Normaliser | None = None) -> dict:
    """What a checkpoint stores of a model: its registry record (None for an unregistered
    module, whose weights alone are kept), its weights on the CPU, its normaliser."""
    return {"record": model_record(model), "state_dict": plain_state_dict(model),
            "normaliser": None if normaliser is None else normaliser.to_dict()}


def _model_entry(checkpoint: dict, path, key: str | None) -> dict:
    models = checkpoint["models"]
    if key is None:
        if len(models) != 1:
            raise ValueError(f"{path} holds the models {sorted(models)}: say which one (key=...)")
        key = next(iter(models))
    if key not in models:
        raise ValueError(f"{path} has no model {key!r}; it has {sorted(models)}")
    return models[key]


def stored_model(checkpoint: dict, path, key: str | None = None, device: str | torch.device = "cpu"):
    """The model ``key`` of a loaded checkpoint (:func:`load_checkpoint`, read from ``path``),
    rebuilt from its record, in eval mode on ``device``."""
    entry = _model_entry(checkpoint, path, key)
    if entry.get("record") is None:
        raise ValueError(f"{path}: the model is not a registered one (fem_ms_torch.registry), so the file holds "
                         f"only its weights: build the module yourself and load_state_dict them")
    return model_from_record(entry["record"], entry["state_dict"]).to(device).eval()


def stored_normaliser(checkpoint: dict, path, key: str | None = None) -> Normaliser | None:
    """The :class:`~.normalisation.Normaliser` stored with model ``key`` of a loaded checkpoint."""
    stored = _model_entry(checkpoint, path, key).get("normaliser")
    return None if stored is None else Normaliser.from_dict(stored)


def load_model(path, key: str | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model stored in a checkpoint of any trainer, rebuilt from its record, in eval mode.

    Parameters
    ----------
    path : checkpoint
    key : str, optional
        Which model, for checkpoints that hold several (GMsFEM-NO: the neighbourhood kind).
    device : str or torch.device
    """
    return stored_model(load_checkpoint(path), path, key, device)


class Checkpoint:
    """The checkpoint file of one training run, kept in memory and rewritten after every epoch.

    Opening a path that exists checks that it was written by the same ``trainer`` with the same
    ``config`` (``FileExistsError`` otherwise: another run's file is never continued or
    overwritten); its runs then resume.

    Parameters
    ----------
    path : path
    trainer : str
        Which trainer writes it ("basis", "standalone", "mlmc", "gpo").
    config : dict
        Plain data identifying the run (its typed config without the settings that do not
        change the result, such as ``progress``).
    meta : dict, optional
        Plain facts the models' users need.
    writer : bool
        Whether this process writes the file (rank 0 of a data-parallel run).
    """

    def __init__(self, path, trainer: str, config: dict, meta: dict | None = None, writer: bool = True):
        self.path, self.writer = Path(path), writer
        if self.path.exists():
            data = load_checkpoint(self.path)
            if "converted_from" in data:
                raise FileExistsError(f"{self.path} was written in the retired format {data['converted_from']!r} and "
                                      f"cannot be continued; remove it (or choose another path) to retrain")
            if data["trainer"] != trainer or data["config"] != config:
                raise FileExistsError(f"{self.path} was trained with other settings (or by another trainer); "
                                      f"remove it or choose another path")
            self.data = data
        else:
            self.data = {"format": FORMAT, "format_version": FORMAT_VERSION, "trainer": trainer, "config": config,
                         "meta": dict(meta or {}), "models": {}, "runs": {}}

    def run(self, key: str) -> dict | None:
        """The stored training state of ``key`` (None before its first epoch)."""
        return self.data["runs"].get(key)

    def epochs_done(self, key: str) -> int:
        """Epochs that ``key``'s training has completed (0 before its first)."""
        run = self.run(key)
        return 0 if run is None else run["epochs_done"]

    def model_entry(self, key: str) -> dict | None:
        """The model entry of ``key`` (registry record, weights, normaliser: :func:`.model_entry`), or None if there
        is none yet."""
        return self.data["models"].get(key)

    def update(self, key: str, model: dict, run: dict | None = None) -> None:
        """Replace ``key``'s model entry (:func:`model_entry`) and, when given, its training
        state, and write the file (if the writer)."""
        self.data["models"][key] = model
        if run is not None:
            self.data["runs"][key] = run
        if self.writer:
            write_atomically(self.path, lambda tmp: torch.save(self.data, tmp))
