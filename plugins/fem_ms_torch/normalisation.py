"""The normaliser: how a model's inputs and outputs are standardised, stored with its checkpoint.

Every trainer fits one :class:`Normaliser` on its training data and saves it beside the model's
weights; whatever runs the model later (the ``learned`` basis provider, the standalone solver,
an MLMC or GP-operator evaluation) reads it back from the checkpoint instead of recomputing
statistics by hand. It is neuraloperator's data-processor idea (normalisation outside the
model), reduced to what the plugin's models need:

* inputs  x ↦ (t(x) − μ_c) / σ_c per channel c, with t = log for positive coefficients (κ);
* outputs y ↦ (y − m) / s, with (m, s) the mean and standard deviation, or m = 0 and s the
  largest magnitude (a scale that keeps the sign and the zero of a solution).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["Normaliser", "OUTPUT_SCALINGS"]

OUTPUT_SCALINGS = ("std", "max_abs")
_FLOOR = 1e-12  # a constant field is left unscaled rather than divided by zero


def _as_float64(x) -> torch.Tensor:
    return x.detach().cpu().double() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, np.float64))


def _stat(value) -> float | tuple[float, ...]:
    value = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else tuple(float(v) for v in value)


@dataclass(frozen=True)
class Normaliser:
    """Affine standardisation of inputs (optionally of their logarithm) and of outputs.

    Parameters
    ----------
    input_mean, input_std : float or tuple of float
        μ and σ: one number for all entries, or one per channel (axis 1 of the inputs).
    log_inputs : bool
        Standardise log x instead of x (κ and other positive coefficients).
    output_mean, output_scale : float
        m and s of the outputs.
    """

    input_mean: float | tuple[float, ...] = 0.0
    input_std: float | tuple[float, ...] = 1.0
    log_inputs: bool = False
    output_mean: float = 0.0
    output_scale: float = 1.0

    def __post_init__(self):
        for name in ("input_mean", "input_std", "output_mean", "output_scale"):
            value = getattr(self, name)
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"Normaliser: {name} must be a number or a list of numbers, got {value!r}") from None
            if array.ndim > (0 if name.startswith("output") else 1) or array.size == 0:
                raise ValueError(f"Normaliser: {name} has the wrong shape: {value!r}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"Normaliser: {name} must be finite, got {value!r}")
            if name in ("input_std", "output_scale") and not np.all(array > 0):
                raise ValueError(f"Normaliser: {name} must be positive, got {value!r}")
            object.__setattr__(self, name, _stat(array))
        if np.shape(self.input_mean) != np.shape(self.input_std):
            raise ValueError(f"Normaliser: input_mean {self.input_mean!r} and input_std {self.input_std!r} differ "
                             f"in length")
        if not isinstance(self.log_inputs, bool):
            raise TypeError(f"Normaliser: log_inputs must be true or false, got {self.log_inputs!r}")

    @classmethod
    def fit(cls, inputs, outputs=None, *, log_inputs: bool = False, per_channel: bool = False,
            output_scaling: str = "std") -> Normaliser:
        """Statistics of training data (torch tensors or arrays), computed in float64 by torch:
        means and sample standard deviations (N − 1 in the denominator).

        Parameters
        ----------
        inputs : (N, C, ...) or (N, ...)
            Training inputs; positive when ``log_inputs``.
        outputs : optional
            Training outputs; without them the outputs are left as they are.
        per_channel : bool
            One μ, σ per channel (axis 1) instead of one for all entries.
        output_scaling : {"std", "max_abs"}
            (mean, standard deviation) or (0, largest magnitude) of the outputs.
        """
        if output_scaling not in OUTPUT_SCALINGS:
            raise ValueError(f"Normaliser.fit: output_scaling must be one of {OUTPUT_SCALINGS}, got {output_scaling!r}")
        x = _as_float64(inputs)
        if x.numel() < 2:
            raise ValueError(f"Normaliser.fit: at least two training input values are needed, got {x.numel()}")
        if log_inputs:
            if not bool((x > 0).all()):
                raise ValueError("Normaliser.fit: log_inputs needs positive inputs (κ > 0)")
            x = torch.log(x)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("Normaliser.fit: the training inputs have non-finite values")
        if per_channel:
            if x.dim() < 2:
                raise ValueError(f"Normaliser.fit: per_channel needs inputs with a channel axis, got shape "
                                 f"{tuple(x.shape)}")
            x = x.transpose(0, 1).reshape(x.shape[1], -1)
            mean, std = x.mean(dim=1), x.std(dim=1)
        else:
            mean, std = x.mean(), x.std()
        output_mean, output_scale = 0.0, 1.0
        if outputs is not None:
            y = _as_float64(outputs)
            if y.numel() < 2 or not bool(torch.isfinite(y).all()):
                raise ValueError("Normaliser.fit: the training outputs are fewer than two values or not finite")
            if output_scaling == "std":
                output_mean, output_scale = float(y.mean()), float(y.std().clamp_min(_FLOOR))
            else:
                output_scale = float(y.abs().max().clamp_min(_FLOOR))
        return cls(_stat(mean), _stat(std.clamp_min(_FLOOR)), log_inputs, output_mean, output_scale)

    def _channel_shaped(self, value, x):
        """μ or σ broadcastable against ``x`` (channels on axis 1)."""
        if isinstance(value, float):
            return value
        if x.ndim < 2 or x.shape[1] != len(value):
            raise ValueError(f"Normaliser: {len(value)} channel statistics for inputs of shape {tuple(x.shape)}")
        shape = (1, len(value)) + (1,) * (x.ndim - 2)
        if isinstance(x, torch.Tensor):
            return torch.as_tensor(value, dtype=x.dtype, device=x.device).reshape(shape)
        return np.asarray(value).reshape(shape)

    def normalise_inputs(self, x):
        """Standardised (log) inputs, as a tensor or array like ``x``."""
        t = (torch.log(x) if isinstance(x, torch.Tensor) else np.log(x)) if self.log_inputs else x
        return (t - self._channel_shaped(self.input_mean, x)) / self._channel_shaped(self.input_std, x)

    def denormalise_inputs(self, z):
        """The inputs whose standardisation is ``z``."""
        t = z * self._channel_shaped(self.input_std, z) + self._channel_shaped(self.input_mean, z)
        return (torch.exp(t) if isinstance(t, torch.Tensor) else np.exp(t)) if self.log_inputs else t

    def normalise_outputs(self, y):
        """Standardised outputs ``(y − mean) / scale``, as a tensor or array like ``y``."""
        return (y - self.output_mean) / self.output_scale

    def denormalise_outputs(self, z):
        """The outputs whose standardisation is ``z``."""
        return z * self.output_scale + self.output_mean

    @property
    def log_input_stats(self) -> tuple[float, float]:
        """(μ, σ) of a single-channel log-input normaliser (the log-κ statistics of patch features)."""
        if not self.log_inputs or not isinstance(self.input_mean, float):
            raise ValueError(f"Normaliser: not a single-channel log-input normaliser: {self}")
        return self.input_mean, self.input_std

    def to_dict(self) -> dict:
        """Plain numbers and lists (for a ``weights_only`` checkpoint or JSON)."""
        data = asdict(self)
        for key in ("input_mean", "input_std"):
            if isinstance(data[key], tuple):
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Normaliser:
        """The normaliser :meth:`to_dict` wrote; ``ValueError`` naming unknown or missing keys."""
        if not isinstance(data, dict):
            raise ValueError(f"a normaliser must be stored as a dict, got {type(data).__name__}")
        known = {"input_mean", "input_std", "log_inputs", "output_mean", "output_scale"}
        if set(data) != known:
            raise ValueError(f"a stored normaliser has keys {sorted(known)}, got {sorted(data)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)
