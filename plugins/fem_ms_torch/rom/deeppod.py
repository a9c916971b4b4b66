"""DeepPOD: a network that predicts a κ-dependent global basis, trained with the projector loss,
used intrusively (the GMsFEM-NO paper's appendix F, baseline 5: "directly learn optimal basis
with projector-based loss", after Franco, Manzoni, Zunino & Hesthaven, deep orthogonal
decomposition).

For each input (κ, f) an F-FNO (the paper's DeepPOD grid search is its F-FNO one) gives
``n_basis`` fields on the vertex grid, zero on the boundary; their orthonormalisation Q(κ, f)
(a differentiable QR) spans V(κ, f), and training minimises the relative projection error
‖u − Q Qᵀ u‖ / ‖u‖ of the training solutions — the error of the best approximation in the
predicted space, as GMsFEM-NO's subspace losses do per neighbourhood, here for the whole domain.
Online, the fine system of the new κ and f is projected by Galerkin on that space
(:class:`fem_ms.pod.PODSpace` of the predicted fields, solved by the core's coarse models):
like :class:`~.intrusive_pod.IntrusivePOD`, with a space that adapts to the input.
"""

from __future__ import annotations

import numpy as np
import torch

from ..operators import FFNO
from ..registry import RegisteredModel
from .fitting import FieldScaling, NetworkBaseline, interior_mask

__all__ = ["DeepPODModel", "DeepPOD"]


class DeepPODModel(RegisteredModel, name="deeppod"):
    """κ (S, n, n), f (S, n+1, n+1) → ``n_basis`` basis fields (S, n_basis, n+1, n+1), zero on
    the boundary (an F-FNO, its output multiplied by the interior indicator).

    Parameters
    ----------
    n : int
        Cells per side.
    n_basis : int
        Functions of the predicted space.
    width, depth, modes : int
        Of the F-FNO.
    """

    def __init__(self, n: int, n_basis: int = 16, width: int = 64, depth: int = 4, modes: int = 16):
        super().__init__()
        self.n = n
        self.scaling = FieldScaling()
        self.network = FFNO(4, n_basis, 2, width=width, depth=depth, modes=modes)
        self.register_buffer("interior", interior_mask(n))

    def forward(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """The ``n_basis`` predicted fields (S, n_basis, n+1, n+1), zero on the boundary."""
        features = self.scaling.grid_features(kappa, f)
        return self.network(features) * self.interior

    def orthonormal_basis(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Q (S, (n+1)², n_basis): orthonormal columns spanning the predicted fields."""
        return torch.linalg.qr(self(kappa, f).flatten(2).transpose(1, 2)).Q

    def loss(self, kappa: torch.Tensor, f: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Mean relative projection error ‖u − Q Qᵀ u‖ / ‖u‖ (the projector loss)."""
        q = self.orthonormal_basis(kappa, f)
        x = u.flatten(1)[:, :, None]
        residual = x - q @ (q.transpose(1, 2) @ x)
        return (residual.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).mean()


class DeepPOD(NetworkBaseline):
    """DeepPOD as a baseline: trained on the projector loss, predicting by Galerkin solves of
    ``problem`` on the predicted space (see the module).

    Attributes
    ----------
    solve_seconds : float
        CPU seconds per sample of the Galerkin solves of the last ``predict`` (the network's
        inference excluded).
    """

    name = "DeepPOD"
    model_name = "deeppod"

    def __init__(self, problem: str = "diffusion", n_basis: int = 16, width: int = 64, depth: int = 4,
                 modes: int = 16, **options):
        super().__init__(**options)
        from fem_ms.checks import check_int

        if problem not in ("diffusion", "richards"):
            raise ValueError(f"DeepPOD: problem must be 'diffusion' or 'richards', got {problem!r}")
        self.problem = problem
        self.sizes = {"n_basis": check_int("n_basis", n_basis), "width": check_int("width", width),
                      "depth": check_int("depth", depth), "modes": check_int("modes", modes)}
        self.solve_seconds = float("nan")

    def _arguments(self, n, n_samples) -> dict:
        return {"n": n, **self.sizes}

    def projection_error(self, kappa, f, u) -> np.ndarray:
        """Per sample, the relative l2 error of the best approximation of u in the predicted space."""
        from .baseline import grid_data

        data = grid_data({"kappa": kappa, "f": f, "u": u})
        with torch.no_grad():
            q = self.model.orthonormal_basis(*(torch.as_tensor(data[k]).float() for k in ("kappa", "f"))).double()
        x = torch.as_tensor(data["u"]).flatten(1)[:, :, None]
        residual = x - q @ (q.transpose(1, 2) @ x)
        return (residual.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).numpy()

    def _predict(self, kappa, f) -> np.ndarray:
        from .intrusive_pod import galerkin_on_fields

        with torch.no_grad():
            fields = self.model(torch.as_tensor(kappa, dtype=torch.float32),
                                torch.as_tensor(f, dtype=torch.float32)).double().numpy()
        u, self.solve_seconds = galerkin_on_fields(fields, self.problem, kappa, f)
        return u
