"""Reduced-order and regression baselines against GMsFEM-NO (the GMsFEM-NO paper's appendix F).

Every baseline is an object with one interface, so a benchmark drives them all alike
(:class:`~.baseline.OperatorBaseline`)::

    baseline = IntrusivePOD(problem="diffusion", n_modes=20)        # or PCANet(...), KernelRegression(...), ...
    baseline.fit(train, epochs=None, max_cpu_seconds=None, seed=0)  # train: {"kappa", "f", "u"} arrays
    u = baseline.predict(kappa, f)                                  # (S, n+1, n+1) float64
    baseline.n_parameters, baseline.train_seconds, baseline.online_seconds

* ``train`` holds κ (S, n, n) on the cells, f (S, n+1, n+1) and u (S, n+1, n+1) (or
  (S, 1, n+1, n+1)) on the vertices of a ``multilevel`` dataset level, numpy arrays or torch
  tensors: :func:`~.baseline.read_split` reads them as the standalone F-FNO does.
* ``fit`` of an *iterative* baseline (``baseline.iterative``: the networks, trained on the
  plugin's training core) needs ``epochs`` and stops early at ``max_cpu_seconds`` of training
  CPU time; a closed-form baseline (POD's SVD, kernel ridge regression) refuses both. Options
  either take effect or raise.
* ``train_seconds``: process CPU seconds of the last ``fit`` (PCA/SVD and data preparation
  included); ``online_seconds``: process CPU seconds per sample of the last ``predict``. The
  intrusive ones (:class:`IntrusivePOD`) also report ``solve_seconds``, the reduced solve alone.
* ``n_parameters``: the numbers the fitted baseline keeps to predict (weights, bases, kernel
  coefficients and training inputs).
* ``history``: the training core's per-epoch records (empty for closed-form fits).

The networks inside are registered models (:mod:`fem_ms_torch.registry`), one ``nn.Module`` each
with its bases as buffers.
"""

from .baseline import OperatorBaseline, grid_data, grid_inputs, read_split
from .intrusive_pod import IntrusivePOD

__all__ = ["OperatorBaseline", "IntrusivePOD", "grid_data", "grid_inputs", "read_split"]
