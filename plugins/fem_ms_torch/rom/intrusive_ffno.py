"""Intrusive POD with an F-FNO basis (the GMsFEM-NO paper's appendix F, baseline 2, after Meuris,
Qadeer & Stinis 2021/2023): an F-FNO trained by plain regression κ (+ f) → u, whose last hidden
layer, evaluated at a new input, gives the basis of a Galerkin solve of that input's fine system.

The F-FNO's last hidden layer is the GELU inside its pointwise projection (2·width channels on
the vertex grid; :class:`~fem_ms_torch.operators.ffno.FFNO`): the output u is a linear combination
of those channels plus the output bias, so their span holds the network's own prediction less
that constant (and, once they are set to zero on the boundary, less its boundary values), and
Galerkin on it is at least as close to the fine solution in the energy norm as that. The
channels are read by a forward hook (the network is the registry's F-FNO, unchanged) and set to
zero on the boundary, where the Dirichlet condition holds. The DeepONet variant of that
baseline (the trunk's functions as the basis) is global POD itself when the trunk is POD's
(:class:`~.pod_regression.DeepONetPOD`), i.e. :class:`~.intrusive_pod.IntrusivePOD`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..operators import FFNO
from ..registry import RegisteredModel
from .fitting import FieldScaling, NetworkBaseline, interior_mask

__all__ = ["FFNOBasisModel", "IntrusiveFFNO"]


class FFNOBasisModel(RegisteredModel, name="ffno_basis"):
    """An F-FNO κ (S, n, n), f (S, n+1, n+1) → u (S, n+1, n+1), with :meth:`basis`, its last hidden
    layer's fields.

    Parameters
    ----------
    n : int
        Cells per side.
    width, depth, modes : int
        Of the F-FNO (the basis has 2·width fields).
    """

    def __init__(self, n: int, width: int = 64, depth: int = 4, modes: int = 16):
        super().__init__()
        self.n = n
        self.scaling = FieldScaling()
        self.network = FFNO(4, 1, 2, width=width, depth=depth, modes=modes)
        self.register_buffer("interior", interior_mask(n))

    def forward(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """The F-FNO's prediction of u (S, n+1, n+1)."""
        features = self.scaling.grid_features(kappa, f)
        return self.network(features)[:, 0] * self.scaling.u_scale

    def basis(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """(S, 2·width, n+1, n+1): the last hidden layer's channels, zero on the boundary."""
        captured = []
        hook = self.network.project[1].register_forward_hook(lambda module, args, out: captured.append(out))
        try:
            self(kappa, f)
        finally:
            hook.remove()
        return captured[0].movedim(-1, 1) * self.interior


class IntrusiveFFNO(NetworkBaseline):
    """The F-FNO trained by regression (relative L2), predicting by Galerkin solves of ``problem``
    on its last hidden layer's span (see the module).

    Attributes
    ----------
    solve_seconds : float
        CPU seconds per sample of the Galerkin solves of the last ``predict``.
    """

    name = "intrusive POD, F-FNO basis"
    model_name = "ffno_basis"

    def __init__(self, problem: str = "diffusion", width: int = 64, depth: int = 4, modes: int = 16, **options):
        super().__init__(**options)
        from fem_ms.checks import check_int

        if problem not in ("diffusion", "richards"):
            raise ValueError(f"IntrusiveFFNO: problem must be 'diffusion' or 'richards', got {problem!r}")
        self.problem = problem
        self.sizes = {"width": check_int("width", width), "depth": check_int("depth", depth),
                      "modes": check_int("modes", modes)}
        self.solve_seconds = float("nan")

    def _arguments(self, n, n_samples) -> dict:
        return {"n": n, **self.sizes}

    def regression(self, kappa, f) -> np.ndarray:
        """The F-FNO's own prediction of u (what the Galerkin solve improves on)."""
        return super()._predict(*(np.asarray(x, dtype=float) for x in (kappa, f)))

    def _predict(self, kappa, f) -> np.ndarray:
        from .intrusive_pod import galerkin_on_fields

        with torch.no_grad():
            fields = self.model.basis(torch.as_tensor(kappa, dtype=torch.float32),
                                      torch.as_tensor(f, dtype=torch.float32)).double().numpy()
        u, self.solve_seconds = galerkin_on_fields(fields, self.problem, kappa, f)
        return u
