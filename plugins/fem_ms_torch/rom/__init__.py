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
* ``history``: the training core's per-epoch records (empty for closed-form fits); with
  ``fit(..., validation=held_out)`` an iterative baseline also records its loss on held-out
  data (``val_loss``), for error-against-cost curves.

The baselines (the GMsFEM-NO paper's appendix F):

* :class:`IntrusivePOD` — global POD of the training u, a Galerkin solve of each new fine
  system (:class:`fem_ms.pod.PODSpace` on the core's coarse models);
* :class:`IntrusiveFFNO` — an F-FNO trained by regression, its last hidden layer's fields as the
  basis of a Galerkin solve per input (Meuris et al.; ``"ffno_basis"``);
* :class:`DeepONetPOD` — POD-DeepONet: POD trunk, branch MLP → coefficients (registered as
  ``"deeponet_pod"``);
* :class:`FFNOPOD` — F-FNO encoder and grid average → POD coefficients (``"ffno_pod"``);
* :class:`PCANet` — PCA of inputs and outputs, an MLP between (``"pcanet"``);
* :class:`KernelRegression` — PCA and kernel ridge regression (Batlle et al.; scikit-learn,
  closed form, no network);
* :class:`DeepPOD` — a predicted κ-dependent basis trained by the projector loss, Galerkin
  solves online (``"deeppod"``).

The networks are registered models (:mod:`fem_ms_torch.registry`), one ``nn.Module`` each that
maps raw κ and f to u (DeepPOD: to its basis fields) with its scalings and bases as buffers,
trained by :class:`~.fitting.RegressionTrainer` on the training core.
"""

from .baseline import OperatorBaseline, grid_data, grid_inputs, read_split
from .deeppod import DeepPOD, DeepPODModel
from .fitting import NetworkBaseline
from .intrusive_ffno import FFNOBasisModel, IntrusiveFFNO
from .intrusive_pod import IntrusivePOD
from .kernel import KernelRegression
from .pcanet import PCANet, PCANetModel
from .pod_regression import FFNOPOD, DeepONetPOD, DeepONetPODModel, FFNOPODModel

#: every baseline of this package, by class: what a benchmark iterates over
BASELINES = (IntrusivePOD, IntrusiveFFNO, DeepONetPOD, FFNOPOD, PCANet, KernelRegression, DeepPOD)

__all__ = ["BASELINES", "OperatorBaseline", "NetworkBaseline", "IntrusivePOD", "IntrusiveFFNO", "DeepONetPOD",
           "FFNOPOD", "PCANet", "KernelRegression", "DeepPOD", "DeepONetPODModel", "FFNOPODModel", "PCANetModel",
           "DeepPODModel", "FFNOBasisModel", "grid_data", "grid_inputs", "read_split"]
