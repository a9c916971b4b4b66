"""The standalone baselines: a grid operator trained to map κ (and f) straight to u on the fine grid.

The operator is any grid operator of the model registry — the F-FNO by default, or ``"fno"``,
``"gnot"``, ``"transolver++"``, ``"deeponet"``, ``"neuralop:FNO"``, ... Trained on a
``multilevel`` dataset level (κ, optionally f → u), with the relative L2 loss, on the plugin's
training core (AdamW, cosine schedule, resumable checkpoints, validation). It exists to be
compared with GMsFEM-NO: a solution operator learned for one forcing does not transfer to
another, a local basis does.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .basis.features import patch_features
from .checkpoints import Checkpoint, load_checkpoint, stored_model, stored_normaliser
from .data import MultilevelDataset
from .normalisation import Normaliser
from .registry import build_operator, check_model_name, operator_sizes
from .training import Trainer

__all__ = ["train_standalone", "StandaloneSolver", "forcing_scale"]


def _inputs(kappa: torch.Tensor, f: torch.Tensor, normaliser: Normaliser, forcing_scale: float) -> torch.Tensor:
    return torch.cat([patch_features(kappa, *normaliser.log_input_stats), f[:, None] / forcing_scale], dim=1)


def forcing_scale(f: torch.Tensor) -> float:
    """The largest absolute value of f in a training set, by which the network's f channel is
    divided: a random forcing (values up to ~10⁴) enters O(1), as κ's standardised logarithm
    does, and f = 1 as it is."""
    scale = float(f.abs().max())
    if not math.isfinite(scale):
        raise ValueError("the training forcing has non-finite values")
    return scale if scale > 0 else 1.0


def _relative_l2(pred: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return ((pred - u).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)).mean()


def _split(path, level: int, split: str) -> dict[str, torch.Tensor]:
    """κ (S, n, n), f (S, n+1, n+1; ones where the dataset has none) and u (S, 1, n+1, n+1) of a split."""
    data = MultilevelDataset(path, level, split)
    items = [data[i] for i in range(len(data))]
    if not items:
        raise ValueError(f"{path}: the {split!r} split of level {level} is empty")
    u = torch.stack([item["u"] for item in items])
    f = torch.stack([item["f"][0] for item in items]) if data.has_forcing else torch.ones_like(u[:, 0])
    return {"kappa": torch.stack([item["kappa"][0] for item in items]), "f": f, "u": u}


class StandaloneTrainer(Trainer):
    """κ (+ f) → u / scale on whole grids, shuffled mini-batches, relative L2 loss."""

    def __init__(self, model, data: dict, normaliser: Normaliser, batch_size: int, seed: int,
                 validation_data: dict | None = None, forcing_scale: float = 1.0, **kwargs):
        validation = None if validation_data is None else self._validation_error
        super().__init__(model, normaliser=normaliser, validation=validation, **kwargs)
        self.data, self.batch_size, self.seed, self.validation_data = data, batch_size, seed, validation_data
        self.forcing_scale = forcing_scale

    def batches(self, epoch: int):
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.data["u"]), generator=generator).split(self.batch_size)

    def predict(self, model, kappa, f) -> torch.Tensor:
        return self.normaliser.denormalise_outputs(model(_inputs(kappa, f, self.normaliser, self.forcing_scale)))

    def compute_loss(self, indices) -> tuple[torch.Tensor, float]:
        kappa, f, u = (self.data[k][indices].to(self.device) for k in ("kappa", "f", "u"))
        return _relative_l2(self.predict(self.model, kappa, f), u), len(indices)

    def _validation_error(self, model) -> dict:
        kappa, f, u = (self.validation_data[k].to(self.device) for k in ("kappa", "f", "u"))
        return {"relative_l2": float(_relative_l2(self.predict(model, kappa, f), u))}


def train_standalone(dataset, level: int, out, epochs: int = 50, batch_size: int = 8, lr: float = 1e-3,
                     width: int = 32, depth: int = 4, modes: int | None = None, seed: int = 0,
                     validation_split: str | None = None, validate_every: int = 1, device: str | None = None,
                     progress: bool = True, architecture: str = "ffno", model_options: dict | None = None) -> Path:
    """Train κ (+ f) → u on one level of a multilevel dataset; f = 1 where the set has no f.

    The network predicts u / max|u| (its outputs O(1)); the log-κ statistics and that scale are
    the checkpoint's :class:`~fem_ms_torch.normalisation.Normaliser`. Its f channel is f divided
    by the training set's largest absolute value of f (:func:`forcing_scale`, stored in the
    checkpoint's meta). Rerunning with the same
    arguments after an interruption continues to the weights of an uninterrupted run; other
    arguments for an existing checkpoint are refused. ``validation_split``: a split of the
    dataset whose relative L2 error is recorded every ``validate_every`` epochs.

    ``architecture`` is any grid operator of the model registry
    (:func:`~fem_ms_torch.registry.available_models` with ``operator=True``), sized by
    ``width``, ``depth`` and ``modes`` and built with ``model_options`` (e.g. GNOT's ``heads``
    and ``experts``, Transolver++'s ``slices``). ``modes`` (None: 16) is for the Fourier
    operators; for one without Fourier modes (GNOT, Transolver++, DeepONet) it must be None.
    """
    out = Path(out)
    check_model_name(architecture, operator=True)
    model_options = dict(model_options or {})
    if modes is None and "modes" in operator_sizes(architecture):
        modes = 16
    sizes = {size: value for size, value in (("width", width), ("depth", depth), ("modes", modes))
             if value is not None}
    settings = dict(dataset=str(Path(dataset).resolve()), level=level, epochs=epochs, batch_size=batch_size, lr=lr,
                    width=width, depth=depth, modes=modes, seed=seed)
    if architecture != "ffno" or model_options:  # an F-FNO's settings as before: its checkpoints still resume
        settings.update(architecture=architecture, model_options=model_options)
    torch.manual_seed(seed)
    # built before the data are read: wrong sizes or options fail at once
    model = build_operator(architecture, 4, 1, 2, **sizes, **model_options)
    data = _split(dataset, level, "train")
    checkpoint = Checkpoint(out, "standalone", settings, meta={"forcing_scale": forcing_scale(data["f"])})
    stored = checkpoint.model_entry("model")
    normaliser = Normaliser.from_dict(stored["normaliser"]) if stored else \
        Normaliser.fit(data["kappa"], data["u"], log_inputs=True, output_scaling="max_abs")
    held_out = None if validation_split is None else _split(dataset, level, validation_split)
    # a checkpoint written before the scale was stored trained on f = 1: scale 1
    scale = checkpoint.data["meta"].get("forcing_scale", 1.0)
    StandaloneTrainer(model, data, normaliser, batch_size, seed, validation_data=held_out, forcing_scale=scale,
                      epochs=epochs, lr=lr, checkpoint=checkpoint, validate_every=validate_every, device=device,
                      progress=progress, desc=f"standalone {architecture}").train()
    return out


class StandaloneSolver:
    """Predicts u on the (n+1)² vertex grid from κ (n² cells) and f ((n+1)² vertices), with the
    model (whichever architecture) and normaliser of a :func:`train_standalone` checkpoint."""

    def __init__(self, checkpoint):
        stored = load_checkpoint(checkpoint)
        if stored["trainer"] != "standalone":
            raise ValueError(f"{checkpoint} holds a {stored['trainer']!r} model, not a standalone operator "
                             f"(train_standalone)")
        self.model, self.normaliser = stored_model(stored, checkpoint), stored_normaliser(stored, checkpoint)
        self.forcing_scale = stored["meta"].get("forcing_scale", 1.0)  # 1: trained on f = 1 before it was stored

    def __call__(self, kappa, f) -> torch.Tensor:
        kappa = torch.as_tensor(kappa, dtype=torch.float32)[None]
        f = torch.as_tensor(f, dtype=torch.float32)[None]
        with torch.inference_mode():
            return self.normaliser.denormalise_outputs(
                self.model(_inputs(kappa, f, self.normaliser, self.forcing_scale)))[0, 0]
