"""A model's normaliser as neuraloperator's data processor.

neuraloperator keeps normalisation out of the models, in a ``DataProcessor`` that its
``Trainer`` applies to every batch ``{"x": ..., "y": ...}``: ``preprocess`` standardises the
inputs (and, in training mode, the targets), ``postprocess`` maps the outputs back to physical
units in evaluation mode. :func:`data_processor` builds neuraloperator's own
``DefaultDataProcessor`` around a :class:`~fem_ms_torch.normalisation.Normaliser`, and
:func:`load_data_processor` around the one stored with a model in a fem-ms checkpoint, so the
plugin's datasets (``dataset.xy()``, :mod:`fem_ms_torch.data`) and trained models plug into
neuraloperator's training and evaluation code.
"""

from __future__ import annotations

import torch
from neuralop.data.transforms.base_transforms import Transform
from neuralop.data.transforms.data_processors import DefaultDataProcessor

from .checkpoints import load_checkpoint, stored_normaliser
from .normalisation import Normaliser

__all__ = ["NormaliserTransform", "data_processor", "load_data_processor"]

_PARTS = ("inputs", "outputs")


class NormaliserTransform(Transform):
    """One side of a :class:`~fem_ms_torch.normalisation.Normaliser` as a neuraloperator
    ``Transform``: ``transform`` standardises, ``inverse_transform`` undoes it.

    Parameters
    ----------
    normaliser : Normaliser
    part : {"inputs", "outputs"}
    """

    def __init__(self, normaliser: Normaliser, part: str):
        super().__init__()
        if not isinstance(normaliser, Normaliser):
            raise TypeError(f"NormaliserTransform needs a Normaliser, got {type(normaliser).__name__}")
        if part not in _PARTS:
            raise ValueError(f"NormaliserTransform: part must be one of {_PARTS}, got {part!r}")
        self.normaliser, self.part = normaliser, part

    def transform(self, data: torch.Tensor) -> torch.Tensor:
        """``data`` standardised with this side's statistics."""
        n = self.normaliser
        return n.normalise_inputs(data) if self.part == "inputs" else n.normalise_outputs(data)

    def inverse_transform(self, data: torch.Tensor) -> torch.Tensor:
        """Standardised ``data`` back in physical units."""
        n = self.normaliser
        return n.denormalise_inputs(data) if self.part == "inputs" else n.denormalise_outputs(data)

    # the statistics are Python numbers, cast to each tensor's device and dtype when applied
    def to(self, device) -> NormaliserTransform:
        return self

    def cuda(self) -> NormaliserTransform:
        return self

    def cpu(self) -> NormaliserTransform:
        return self


def data_processor(normaliser: Normaliser) -> DefaultDataProcessor:
    """neuraloperator's ``DefaultDataProcessor`` standardising ``x`` and ``y`` as ``normaliser``
    does (training: loss on standardised outputs; evaluation: outputs in physical units)."""
    return DefaultDataProcessor(in_normalizer=NormaliserTransform(normaliser, "inputs"),
                                out_normalizer=NormaliserTransform(normaliser, "outputs"))


def load_data_processor(path, key: str | None = None) -> DefaultDataProcessor:
    """The :func:`data_processor` of the normaliser stored with model ``key`` (the only model
    when omitted) of the fem-ms checkpoint ``path``."""
    checkpoint = load_checkpoint(path)
    normaliser = stored_normaliser(checkpoint, path, key)
    if normaliser is None:
        raise ValueError(f"{path}: the model{'' if key is None else f' {key!r}'} was saved without a normaliser")
    return data_processor(normaliser)
