"""What the network baselines share: field scalings, a PCA by SVD, the regression trainer on the
training core, and :class:`NetworkBaseline`, the interface of :mod:`.baseline` around a
registered model.

Each network is one registered ``nn.Module`` (:mod:`fem_ms_torch.registry`) that maps raw κ
(S, n, n) and f (S, n+1, n+1) to u (S, n+1, n+1): the scalings and the PCA/POD bases it was
fitted with are its buffers (:class:`FieldScaling`, :func:`pca`), so the module's state dict
is the whole fitted baseline and a checkpoint (:mod:`fem_ms_torch.checkpoints`) rebuilds it.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..basis.features import patch_features
from ..registry import build_model
from ..training import Trainer
from .baseline import OperatorBaseline

__all__ = ["FieldScaling", "pca", "mlp", "relative_l2", "RegressionTrainer", "NetworkBaseline"]


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ‖pred − target‖ / ‖target‖ (fields flattened)."""
    return ((pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)).mean()


def pca(x: torch.Tensor, n_components: int, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, components (features × n_components), singular values) of the rows of ``x``.

    torch.linalg.svd of the centred (samples × features) matrix, as scikit-learn's PCA with the
    full solver; done in torch so the bases become the model's buffers directly.

    Raises
    ------
    ValueError
        If more components are asked for than the centred data have (samples − 1 at most).
    """
    x = torch.as_tensor(x, dtype=torch.float64).flatten(1)
    mean = x.mean(dim=0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    rank = int((s > 1e-10 * s[0]).sum()) if len(s) and s[0] > 0 else 0
    if n_components > rank:
        raise ValueError(f"{what}: {n_components} components asked for, but the {x.shape[0]} centred training "
                         f"samples span {rank} dimensions")
    return mean, vh[:n_components].T.contiguous(), s


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with GELU between them (the paper's activation)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def interior_mask(n: int) -> torch.Tensor:
    """(n+1, n+1): one at the interior vertices of an n × n grid, zero on its boundary (where the
    homogeneous Dirichlet condition holds)."""
    interior = torch.zeros(n + 1, n + 1)
    interior[1:-1, 1:-1] = 1.0
    return interior


class FieldScaling(nn.Module):
    """Buffers that put κ, f and u on O(1) scales: standardised log κ, f / f_scale, u / u_scale
    (the largest magnitudes of f and u in the training set). Filled by :meth:`fit`; stored in the state dict."""

    def __init__(self):
        super().__init__()
        for name in ("log_kappa_mean", "log_kappa_std", "f_scale", "u_scale"):
            self.register_buffer(name, torch.ones(()))

    @torch.no_grad()
    def fit(self, kappa: torch.Tensor, f: torch.Tensor, u: torch.Tensor) -> None:
        """The log-κ mean and standard deviation and the f and u scales of the training data."""
        log_kappa = torch.log(kappa)
        self.log_kappa_mean.fill_(log_kappa.mean())
        self.log_kappa_std.fill_(log_kappa.std().clamp_min(1e-12))
        self.f_scale.fill_(f.abs().max().clamp_min(1e-12))
        self.u_scale.fill_(u.abs().max().clamp_min(1e-300))

    def log_kappa(self, kappa: torch.Tensor) -> torch.Tensor:
        """Standardised log κ."""
        return (torch.log(kappa) - self.log_kappa_mean) / self.log_kappa_std

    def forcing(self, f: torch.Tensor) -> torch.Tensor:
        """f / f_scale."""
        return f / self.f_scale

    def grid_features(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """(S, 4, n+1, n+1): κ's vertex features (:func:`~fem_ms_torch.basis.features.patch_features`)
        and the scaled f, the input of the F-FNO baselines."""
        return torch.cat([patch_features(kappa, self.log_kappa_mean, self.log_kappa_std), self.forcing(f)[:, None]],
                         dim=1)

    def flat_inputs(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """(S, n² + (n+1)²): scaled log κ and f side by side, the input vector of the MLP baselines."""
        return torch.cat([self.log_kappa(kappa).flatten(1), self.forcing(f).flatten(1)], dim=1)


class RegressionTrainer(Trainer):
    """Shuffled mini-batches of whole fields; loss: ``model.loss(kappa, f, u)`` (the relative L2
    error of the predicted field unless the model defines its own, as DeepPOD's projector loss)."""

    def __init__(self, model, data: dict[str, torch.Tensor], batch_size: int, seed: int, **kwargs):
        super().__init__(model, **kwargs)
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def batches(self, epoch: int):
        """A seeded permutation of the training samples, split into batches."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.data["u"]), generator=generator).split(self.batch_size)

    def compute_loss(self, indices) -> tuple[torch.Tensor, float]:
        """The model's loss on the samples ``indices``."""
        kappa, f, u = (self.data[k][indices].to(self.device) for k in ("kappa", "f", "u"))
        loss = self.model.loss(kappa, f, u) if hasattr(self.model, "loss") else relative_l2(self.model(kappa, f), u)
        return loss, len(indices)


class NetworkBaseline(OperatorBaseline):
    """A registered network trained by epochs on the training core (AdamW, cosine schedule).

    Subclasses give the model's registry name, its constructor arguments, and fill its buffers
    from the training data (``_prepare``).

    Parameters
    ----------
    batch_size : int
    lr : float
    weight_decay : float
        AdamW's.
    """

    iterative = True
    model_name = ""

    def __init__(self, batch_size: int = 10, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        from fem_ms.checks import check_int, check_real

        self.batch_size = check_int("batch_size", batch_size)
        self.lr = check_real("lr", lr, positive=True)
        self.weight_decay = check_real("weight_decay", weight_decay, low=0.0)
        self.model: nn.Module | None = None
        self.n_weights = 0

    def _arguments(self, n: int, n_samples: int) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _prepare(self, model: nn.Module, kappa: torch.Tensor, f: torch.Tensor, u: torch.Tensor) -> None:
        """Fill the model's buffers (scalings, bases) from the training data."""
        model.scaling.fit(kappa, f, u)

    def _fit(self, data, *, epochs, max_cpu_seconds, seed, progress, validation, validate_every) -> None:
        tensors = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in data.items()}
        torch.manual_seed(seed)
        model = build_model(self.model_name, **self._arguments(data["kappa"].shape[1], len(data["u"])))
        self._prepare(model, tensors["kappa"], tensors["f"], tensors["u"])
        trainer = RegressionTrainer(model, tensors, self.batch_size, seed, epochs=epochs, lr=self.lr,
                                    weight_decay=self.weight_decay, max_cpu_seconds=max_cpu_seconds, device="cpu",
                                    validation=None if validation is None else self._validation(validation),
                                    validate_every=validate_every, progress=progress, desc=self.name)
        self.history = trainer.train()
        self.model = model.eval()
        self.n_weights = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.n_parameters = self.n_weights + sum(b.numel() for b in model.buffers())

    def _validation(self, data: dict):
        """The training core's validation callable: the model's loss on ``data``, its CPU time
        kept apart from the training time."""
        held_out = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in data.items()}

        def validate(model) -> dict:
            start = time.process_time()
            kappa, f, u = held_out["kappa"], held_out["f"], held_out["u"]
            loss = model.loss(kappa, f, u) if hasattr(model, "loss") else relative_l2(model(kappa, f), u)
            self._validation_seconds += time.process_time() - start
            return {"loss": float(loss)}

        return validate

    @torch.no_grad()
    def _predict(self, kappa, f) -> np.ndarray:
        out = self.model(torch.as_tensor(kappa, dtype=torch.float32), torch.as_tensor(f, dtype=torch.float32))
        return out.double().numpy()
