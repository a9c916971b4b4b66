"""fem_ms_torch: the torch side of fem-ms (learned GMsFEM bases, MLMC training, surrogates).

It imports :mod:`fem_ms`; :mod:`fem_ms` finds it only through the ``fem_ms.basis_providers``
entry-point group, so the classical core never imports torch.
"""

__version__ = "0.1.0"
