"""PCANet (Hesthaven & Ubbiali 2018; Bhattacharya, Hosseini, Kovachki & Stuart 2021): PCA of the
inputs, PCA of the outputs, an MLP between the two coefficient spaces.

The input is the vector of scaled log κ (cells) and f (vertices); its ``n_in`` leading principal
components, each divided by its training standard deviation, go through the MLP to the
``n_out`` output coefficients, which the output principal components and mean turn back into u.
PCA is torch's SVD of the training data (:func:`.fitting.pca`) so the bases are the registered
module's buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import RegisteredModel
from .fitting import FieldScaling, NetworkBaseline, mlp, pca

__all__ = ["PCANetModel", "PCANet"]


class PCANetModel(RegisteredModel, name="pcanet"):
    """κ (S, n, n), f (S, n+1, n+1) → u (S, n+1, n+1) through PCA coefficients and an MLP.

    Parameters
    ----------
    n : int
        Cells per side.
    n_in, n_out : int
        Input and output principal components.
    hidden : int
        Width of the MLP's hidden layers.
    layers : int
        Linear layers of the MLP (≥ 1).
    """

    def __init__(self, n: int, n_in: int = 100, n_out: int = 100, hidden: int = 300, layers: int = 4):
        super().__init__()
        if layers < 1:
            raise ValueError(f"pcanet: layers must be at least 1, got {layers!r}")
        self.n = n
        self.scaling = FieldScaling()
        d_in, d_out = n * n + (n + 1) ** 2, (n + 1) ** 2
        self.register_buffer("in_mean", torch.zeros(d_in))
        self.register_buffer("in_basis", torch.zeros(d_in, n_in))
        self.register_buffer("in_std", torch.ones(n_in))
        self.register_buffer("out_mean", torch.zeros(d_out))
        self.register_buffer("out_basis", torch.zeros(d_out, n_out))
        self.processor = mlp([n_in] + [hidden] * (layers - 1) + [n_out])

    @torch.no_grad()
    def fit_bases(self, kappa: torch.Tensor, f: torch.Tensor, u: torch.Tensor) -> None:
        """The scalings and both PCAs from the training data."""
        self.scaling.fit(kappa, f, u)
        x = self.scaling.flat_inputs(kappa, f)
        mean, basis, _ = pca(x, self.in_basis.shape[1], "pcanet inputs")
        self.in_mean.copy_(mean)
        self.in_basis.copy_(basis)
        self.in_std.copy_(((x.double() - mean) @ basis).std(dim=0).clamp_min(1e-12))
        mean, basis, _ = pca(u / self.scaling.u_scale, self.out_basis.shape[1], "pcanet outputs")
        self.out_mean.copy_(mean)
        self.out_basis.copy_(basis)

    def forward(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """u (S, n+1, n+1): input coefficients → MLP → output coefficients → field."""
        a = (self.scaling.flat_inputs(kappa, f) - self.in_mean) @ self.in_basis / self.in_std
        u = self.out_mean + self.processor(a) @ self.out_basis.T
        return (u * self.scaling.u_scale).reshape(-1, self.n + 1, self.n + 1)


class PCANet(NetworkBaseline):
    """PCANet as a baseline (appendix F, baseline 3). ``n_in``/``n_out`` are capped by nothing:
    asking for more components than the training samples span raises."""

    name = "PCANet"
    model_name = "pcanet"

    def __init__(self, n_in: int = 100, n_out: int = 100, hidden: int = 300, layers: int = 4, **options):
        super().__init__(**options)
        from fem_ms.checks import check_int

        self.sizes = {"n_in": check_int("n_in", n_in), "n_out": check_int("n_out", n_out),
                      "hidden": check_int("hidden", hidden), "layers": check_int("layers", layers)}

    def _arguments(self, n, n_samples) -> dict:
        return {"n": n, **self.sizes}

    def _prepare(self, model: nn.Module, kappa, f, u) -> None:
        model.fit_bases(kappa, f, u)
