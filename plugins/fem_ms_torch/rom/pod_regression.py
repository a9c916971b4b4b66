"""POD with regressed coefficients (non-intrusive POD): u ≈ ū + Σ_j c_j(κ, f) φ_j, the φ_j the
leading POD modes of the training solutions, the c_j predicted by a network.

* ``"deeponet_pod"`` — POD-DeepONet (Lu et al. 2022): the trunk is the POD basis, the branch an
  MLP on the scaled log κ and f vectors gives the coefficients.
* ``"ffno_pod"`` — an F-FNO encoder (:class:`~fem_ms_torch.operators.ffno.FFNO`) on the grid
  features (log κ at the vertices, coordinates, f) gives one field g_j per mode, pooled against
  its mode: c_j = Σ_x g_j(x) φ_j(x). (Averaging the F-FNO's features over the grid and an MLP
  to the coefficients, the plainer pooling, could not fit even eight training samples below
  ~25 % error in our tests: the average discards where a feature is, which is what the
  coefficients depend on.)

The GMsFEM-NO paper's appendix F (its baseline 2, after Meuris et al. 2021/2023) extracts a
basis from such networks (DeepONet's trunk, F-FNO's last hidden layer) and uses it
intrusively; here the basis is POD's and the networks regress its coefficients, and the
intrusive use of a basis is :class:`~.intrusive_pod.IntrusivePOD` (POD) and
:class:`~.deeppod.DeepPOD` (a learned, κ-dependent basis).
"""

from __future__ import annotations

import torch

from ..operators import FFNO
from ..registry import RegisteredModel
from .fitting import FieldScaling, NetworkBaseline, mlp, pca

__all__ = ["DeepONetPODModel", "FFNOPODModel", "DeepONetPOD", "FFNOPOD"]


class _PODOutput(RegisteredModel):
    """The POD trunk: buffers ū and Φ of u / u_scale; coefficients → fields."""

    def __init__(self, n: int, n_modes: int):
        super().__init__()
        self.n = n
        self.scaling = FieldScaling()
        self.register_buffer("u_mean", torch.zeros((n + 1) ** 2))
        self.register_buffer("modes", torch.zeros((n + 1) ** 2, n_modes))

    @torch.no_grad()
    def fit_bases(self, kappa: torch.Tensor, f: torch.Tensor, u: torch.Tensor) -> None:
        """The scalings and the POD of the (centred, scaled) training solutions."""
        self.scaling.fit(kappa, f, u)
        mean, modes, _ = pca(u / self.scaling.u_scale, self.modes.shape[1], f"{type(self).__name__} POD")
        self.u_mean.copy_(mean)
        self.modes.copy_(modes)

    def fields(self, coefficients: torch.Tensor) -> torch.Tensor:
        """u (S, n+1, n+1) from POD coefficients (S, n_modes) of the scaled, centred u."""
        u = self.u_mean + coefficients @ self.modes.T
        return (u * self.scaling.u_scale).reshape(-1, self.n + 1, self.n + 1)


class DeepONetPODModel(_PODOutput, name="deeponet_pod"):
    """POD-DeepONet: branch MLP (scaled log κ and f → ``n_modes`` coefficients), POD trunk.

    Parameters
    ----------
    n : int
        Cells per side.
    n_modes : int
        POD modes (the trunk).
    hidden, layers : int
        Width and number of linear layers of the branch MLP.
    """

    def __init__(self, n: int, n_modes: int = 100, hidden: int = 256, layers: int = 3):
        super().__init__(n, n_modes)
        self.branch = mlp([n * n + (n + 1) ** 2] + [hidden] * (layers - 1) + [n_modes])

    def forward(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """u (S, n+1, n+1) from the branch's coefficients."""
        return self.fields(self.branch(self.scaling.flat_inputs(kappa, f)))


class FFNOPODModel(_PODOutput, name="ffno_pod"):
    """F-FNO encoder → one field per POD mode, pooled against its mode → ``n_modes`` coefficients.

    Parameters
    ----------
    n : int
        Cells per side.
    n_modes : int
        POD modes.
    width, depth, modes : int
        Of the F-FNO (channels, Fourier layers, Fourier modes per axis).
    """

    def __init__(self, n: int, n_modes: int = 100, width: int = 64, depth: int = 4, modes: int = 16):
        super().__init__(n, n_modes)
        self.encoder = FFNO(4, n_modes, 2, width=width, depth=depth, modes=modes)

    def forward(self, kappa: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """u (S, n+1, n+1) from the mode-pooled F-FNO fields."""
        features = self.scaling.grid_features(kappa, f)
        per_mode = self.encoder(features).flatten(2)  # (S, n_modes, grid points)
        return self.fields((per_mode * self.modes.T).sum(dim=2))


class _PODRegression(NetworkBaseline):
    def _prepare(self, model, kappa, f, u) -> None:
        model.fit_bases(kappa, f, u)


class DeepONetPOD(_PODRegression):
    """POD-DeepONet as a baseline (see the module)."""

    name = "DeepONet-POD"
    model_name = "deeponet_pod"

    def __init__(self, n_modes: int = 100, hidden: int = 256, layers: int = 3, **options):
        super().__init__(**options)
        from fem_ms.checks import check_int

        self.sizes = {"n_modes": check_int("n_modes", n_modes), "hidden": check_int("hidden", hidden),
                      "layers": check_int("layers", layers)}

    def _arguments(self, n, n_samples) -> dict:
        return {"n": n, **self.sizes}


class FFNOPOD(_PODRegression):
    """F-FNO-POD as a baseline (see the module)."""

    name = "F-FNO-POD"
    model_name = "ffno_pod"

    def __init__(self, n_modes: int = 100, width: int = 64, depth: int = 4, modes: int = 16, **options):
        super().__init__(**options)
        from fem_ms.checks import check_int

        self.sizes = {"n_modes": check_int("n_modes", n_modes), "width": check_int("width", width),
                      "depth": check_int("depth", depth), "modes": check_int("modes", modes)}

    def _arguments(self, n, n_samples) -> dict:
        return {"n": n, **self.sizes}
