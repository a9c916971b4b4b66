"""The one interface every reduced-order and regression baseline offers, and its data checks.

A baseline is fitted on whole fields of a ``multilevel`` dataset level and predicts whole
fields (:mod:`fem_ms_torch.rom` describes the interface for the benchmarks):

* ``fit(train, *, epochs=None, max_cpu_seconds=None, seed=0, progress=False, validation=None,
  validate_every=1)`` → the baseline;
* ``predict(kappa, f)`` → u, a float64 array (S, n+1, n+1);
* ``n_parameters``, ``train_seconds`` (process CPU seconds of the last ``fit``),
  ``online_seconds`` (process CPU seconds per sample of the last ``predict``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

__all__ = ["OperatorBaseline", "grid_data", "grid_inputs", "read_split", "check_budget"]


def _array(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}") from exc
    return array


def grid_inputs(kappa, f) -> tuple[np.ndarray, np.ndarray]:
    """κ (S, n, n) on cells and f (S, n+1, n+1) on vertices as float64 arrays, checked.

    Raises
    ------
    ValueError
        If the shapes do not pair up, κ is not positive and finite, or f is not finite.
    """
    kappa, f = _array(kappa, "kappa"), _array(f, "f")
    if kappa.ndim != 3 or kappa.shape[0] == 0 or kappa.shape[1] != kappa.shape[2]:
        raise ValueError(f"kappa must be (samples ≥ 1, n, n) cell values, got shape {kappa.shape}")
    n = kappa.shape[1]
    if f.shape != (kappa.shape[0], n + 1, n + 1):
        raise ValueError(f"f must be (samples, n+1, n+1) = {(kappa.shape[0], n + 1, n + 1)} vertex values for kappa "
                         f"of shape {kappa.shape}, got {f.shape}")
    if not np.all(np.isfinite(kappa)) or not np.all(kappa > 0):
        raise ValueError(f"kappa must be positive and finite everywhere (min {np.nanmin(kappa):g})")
    if not np.all(np.isfinite(f)):
        raise ValueError("f has non-finite (NaN or inf) values")
    return kappa, f


def grid_data(data: Mapping) -> dict[str, np.ndarray]:
    """``{"kappa", "f", "u"}`` of a split (as :func:`read_split` gives it; u may carry a channel
    axis, (S, 1, n+1, n+1)), as float64 arrays with u (S, n+1, n+1), checked."""
    if not isinstance(data, Mapping):
        raise TypeError(f"the training data must be a mapping with kappa, f and u, got {type(data).__name__}")
    missing = sorted({"kappa", "f", "u"} - set(data))
    if missing:
        raise ValueError(f"the training data lack {missing} (they need kappa, f and u)")
    kappa, f = grid_inputs(data["kappa"], data["f"])
    u = _array(data["u"], "u")
    if u.ndim == 4 and u.shape[1] == 1:
        u = u[:, 0]
    if u.shape != f.shape:
        raise ValueError(f"u must be (samples, n+1, n+1) = {f.shape} like f, got {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError("u has non-finite (NaN or inf) values")
    return {"kappa": kappa, "f": f, "u": u}


def read_split(path, level: int, split: str) -> dict[str, np.ndarray]:
    """κ, f (ones where the dataset has no forcing) and u of one split of a ``multilevel`` dataset
    level: the arrays the standalone F-FNO trains on (``fem_ms_torch.standalone._split``),
    read in float64 (that reader rounds to float32; the POD's exact limits need the stored values)."""
    import torch

    from ..data import MultilevelDataset

    data = MultilevelDataset(path, level, split, dtype=torch.float64)
    if len(data) == 0:
        raise ValueError(f"{path}: the {split!r} split of level {level} is empty")
    items = [data[i] for i in range(len(data))]
    u = np.stack([item["u"][0].numpy() for item in items])
    f = np.stack([item["f"][0].numpy() for item in items]) if data.has_forcing else np.ones_like(u)
    return grid_data({"kappa": np.stack([item["kappa"][0].numpy() for item in items]), "f": f, "u": u})


def check_budget(name: str, iterative: bool, epochs, max_cpu_seconds) -> None:
    """Refuse a budget a baseline cannot honour: a closed-form fit has no epochs or time limit."""
    if not iterative:
        given = [k for k, v in (("epochs", epochs), ("max_cpu_seconds", max_cpu_seconds)) if v is not None]
        if given:
            raise ValueError(f"{name} is fitted in closed form (no epochs): it takes no {' or '.join(given)}")
        return
    if epochs is None:
        raise ValueError(f"{name} is trained by epochs: give epochs (and optionally max_cpu_seconds)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"{name}: epochs must be a positive integer, got {epochs!r}")
    if max_cpu_seconds is not None and not (isinstance(max_cpu_seconds, (int, float)) and max_cpu_seconds > 0):
        raise ValueError(f"{name}: max_cpu_seconds must be a positive number, got {max_cpu_seconds!r}")


class OperatorBaseline:
    """Base of the baselines: the timing and checks around a subclass's ``_fit`` and ``_predict``.

    Attributes
    ----------
    name : str
        Short name (the benchmark's row label).
    iterative : bool
        Trained by epochs on the training core (``fit`` needs ``epochs``, honours
        ``max_cpu_seconds``); False for closed-form fits (POD's SVD, kernel ridge regression),
        which refuse both.
    n_parameters : int
        Numbers the fitted baseline stores to predict (network weights, bases, kernel weights).
    train_seconds : float
        Process CPU seconds of the last ``fit`` (data preparation and any PCA included).
    online_seconds : float
        Process CPU seconds per sample of the last ``predict``.
    history : list of dict
        Per-epoch records of the training core (empty for closed-form fits).
    """

    name: ClassVar[str] = "baseline"
    iterative: ClassVar[bool] = False

    def __init__(self):
        self.n_parameters = 0
        self.train_seconds = float("nan")
        self.online_seconds = float("nan")
        self.history: list[dict] = []
        self._fitted = False
        self._grid: int | None = None
        self._validation_seconds = 0.0

    def fit(self, train: Mapping, *, epochs: int | None = None, max_cpu_seconds: float | None = None,
            seed: int = 0, progress: bool = False, validation: Mapping | None = None,
            validate_every: int = 1) -> OperatorBaseline:
        """Fit on ``train`` (``{"kappa": (S, n, n), "f": (S, n+1, n+1), "u": (S, n+1, n+1)}``).

        Parameters
        ----------
        epochs : int
            Epochs of an iterative baseline (required there, refused by closed-form ones).
        max_cpu_seconds : float, optional
            Stop an iterative baseline after the epoch at which its training CPU time passes this.
        seed : int
            Of the initial weights and the batch order.
        progress : bool
            A progress bar over the epochs.
        validation : mapping, optional
            Held-out ``{"kappa", "f", "u"}`` of an iterative baseline: its training loss on them
            is recorded as ``val_loss`` in :attr:`history` every ``validate_every`` epochs and
            after the last (not counted in ``train_seconds``). Closed-form baselines refuse it
            (predict on the held-out data after ``fit``).
        validate_every : int
        """
        check_budget(self.name, self.iterative, epochs, max_cpu_seconds)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        if validation is not None and not self.iterative:
            raise ValueError(f"{self.name} is fitted in closed form: it takes no validation data (predict on them "
                             f"after fit)")
        if isinstance(validate_every, bool) or not isinstance(validate_every, int) or validate_every < 1:
            raise ValueError(f"validate_every must be a positive integer, got {validate_every!r}")
        data = grid_data(train)
        held_out = None if validation is None else grid_data(validation)
        if held_out is not None and held_out["kappa"].shape[1:] != data["kappa"].shape[1:]:
            raise ValueError(f"the validation kappa has shape {held_out['kappa'].shape[1:]} per sample, the training "
                             f"kappa {data['kappa'].shape[1:]}")
        self._validation_seconds = 0.0
        start = time.process_time()
        self._fit(data, epochs=epochs, max_cpu_seconds=max_cpu_seconds, seed=seed, progress=progress,
                  validation=held_out, validate_every=validate_every)
        self.train_seconds = time.process_time() - start - self._validation_seconds
        self._grid, self._fitted = data["kappa"].shape[1], True
        return self

    def predict(self, kappa, f) -> np.ndarray:
        """u (S, n+1, n+1) for κ (S, n, n) and f (S, n+1, n+1); ``online_seconds`` is set to the
        CPU seconds per sample.

        Raises
        ------
        RuntimeError
            Before ``fit``.
        ValueError
            On inputs of another grid than the training one, or not finite (κ not positive), or
            if the prediction is not finite.
        """
        if not self._fitted:
            raise RuntimeError(f"{self.name}: fit the baseline before predicting")
        kappa, f = grid_inputs(kappa, f)
        if kappa.shape[1] != self._grid:
            raise ValueError(f"{self.name} was fitted on a {self._grid}² grid, got kappa of shape {kappa.shape}")
        start = time.process_time()
        u = np.asarray(self._predict(kappa, f), dtype=float)
        self.online_seconds = (time.process_time() - start) / len(kappa)
        if not np.all(np.isfinite(u)):
            raise ValueError(f"{self.name} predicted non-finite values")
        return u

    def _fit(self, data: dict, *, epochs, max_cpu_seconds, seed: int, progress: bool, validation,
             validate_every: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict(self, kappa: np.ndarray, f: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError
