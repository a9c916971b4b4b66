"""Baselines for LoGoS-GPO, same interface (``loss``, ``predict``).

:class:`ExactGPO` — the plain GP operator: the same WNO mean and WNO feature kernel, a dense
spatial kernel, exact inference over all N training functions (no inducing points), trained on
the exact log marginal likelihood. The Nd × Nd covariance K_a ⊗ K_x + σ² I is never formed:
linear_operator's ``KroneckerProductAddedDiagLinearOperator`` solves and takes log-determinants
through the eigendecompositions of the N × N and d × d factors, O(N³ + d³) per step — the cost
LoGoS-GPO avoids. Full batch: it fits where an N × N and a d × d matrix do.

:class:`SVGPOperator` — a plain sparse variational GP (gpytorch ``VariationalStrategy``) on the
augmented inputs (pooled a, x): one scalar GP over N·d points with M inducing points in that
joint space, constant mean, ARD RBF kernel, mini-batches of whole functions.
"""

from __future__ import annotations

import math

import torch
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ConstantMean
from gpytorch.mlls import VariationalELBO
from gpytorch.models import ApproximateGP
from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy
from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator
from torch import nn

from .calibration import CalibratedVariance
from .logos import LoGoSGPO, Prediction, add_operator_prior, check_batch, pooled
from .spatial import BASE_KERNELS

__all__ = ["ExactGPO", "SVGPOperator"]


class ExactGPO(CalibratedVariance):
    """Exact GP operator with a WNO mean (or none), a WNO feature kernel and a dense spatial kernel.

    Parameters
    ----------
    in_channels, grid, output_index : as :class:`~.logos.LoGoSGPO`
    points : array (d, dim)
        Coordinates of the output points (dense RBF/Matérn kernel over all pairs).
    neural_mean : bool
        WNO mean (default) or zero mean (the original GPO of Kumar et al. 2025).
    """

    full_batch = True

    def __init__(self, in_channels: int, grid: tuple, output_index: torch.Tensor, points, neural_mean: bool = True,
                 latent_channels: int = 4, latent_size: int = 8, width: int = 32, depth: int = 4,
                 wavelet_levels: int = 3,
                 wavelet: str = "db4", modes: int = 16, boundary: str = "symmetric", base: str = "rbf",
                 lengthscale: float = 0.05):
        super().__init__()
        self.grid, self.dim, self.in_channels = tuple(grid), len(grid), in_channels
        self.register_buffer("output_index", torch.as_tensor(output_index, dtype=torch.long))
        self.d = len(self.output_index)
        pts = torch.as_tensor(points, dtype=torch.get_default_dtype()).reshape(self.d, -1)
        self.register_buffer("points", pts)
        self.base = base
        self.raw_lengthscale = nn.Parameter(torch.tensor(math.log(math.expm1(lengthscale))))
        add_operator_prior(self, in_channels, latent_channels, latent_size, width, depth, wavelet_levels, wavelet,
                           modes,
                           boundary, neural_mean)
        # the training set is data, not weights: reloaded from the dataset, not checkpointed
        self.register_buffer("train_a", torch.zeros(0), persistent=False)
        self.register_buffer("train_y", torch.zeros(0), persistent=False)

    def set_train_data(self, a: torch.Tensor, y: torch.Tensor) -> None:
        """Condition the exact GP on the training inputs ``a`` ``(N, C, *grid)`` and outputs ``y`` (N, d)."""
        check_batch(a, self.in_channels, self.grid, y, self.d, "ExactGPO")
        self.train_a, self.train_y = a, y

    features = LoGoSGPO.features

    def prior_mean(self, a: torch.Tensor) -> torch.Tensor:
        """m(a) on the output points, (batch, d); zero without a neural mean."""
        if self.mean_op is None:
            return torch.zeros(len(a), self.d, dtype=a.dtype, device=a.device)
        return self.mean_op(a).flatten(1)[:, self.output_index]

    def spatial_dense(self) -> torch.Tensor:
        """The dense spatial kernel K_x (d, d) over all pairs of output points."""
        ell = nn.functional.softplus(self.raw_lengthscale)
        return BASE_KERNELS[self.base](torch.cdist(self.points, self.points) / ell)

    def loss(self, a=None, y=None, num_data=None) -> torch.Tensor:
        """Negative exact log marginal likelihood per training point (the whole training set)."""
        a, y = self.train_a, self.train_y
        if a.numel() == 0:
            raise RuntimeError("ExactGPO: call set_train_data first")
        r = (y - self.prior_mean(a)).reshape(-1)
        Ka = self.feature_kernel(self.features(a)).to_dense()
        K = KroneckerProductLinearOperator(DenseLinearOperator(Ka), DenseLinearOperator(self.spatial_dense()))
        dist = MultivariateNormal(torch.zeros_like(r), K.add_diagonal(self.likelihood.noise.reshape(())))
        return -dist.log_prob(r) / r.numel()

    @torch.no_grad()
    def predict(self, a: torch.Tensor, calibrated: bool = True) -> Prediction:
        """Exact posterior marginals through the eigendecompositions of K_a and K_x
        (``calibrated=False``: the trained model's; see :class:`~.calibration.CalibratedVariance`)."""
        check_batch(a, self.in_channels, self.grid, who="ExactGPO")
        A, Y = self.train_a, self.train_y
        noise = self.likelihood.noise
        phi_A, phi = self.features(A), self.features(a)
        la, Qa = torch.linalg.eigh(self.feature_kernel(phi_A).to_dense())
        Kx = self.spatial_dense()
        lx, Qx = torch.linalg.eigh(Kx)
        la, lx = la.clamp_min(0), lx.clamp_min(0)
        denom = la[:, None] * lx[None, :] + noise  # eigenvalues of K_a ⊗ K_x + σ² I
        R = Y - self.prior_mean(A)
        alpha = Qa @ ((Qa.T @ R @ Qx) / denom) @ Qx.T  # (K + σ²I)⁻¹ vec(R), as an N × d matrix
        ks = self.feature_kernel(phi, phi_A).to_dense()  # (b, N)
        mean = self.prior_mean(a) + ks @ alpha @ Kx
        P = (ks @ Qa) ** 2  # (b, N)
        h = P @ (1.0 / denom)  # (b, d): Σ_i P_i / (λ_i μ_l + σ²)
        G = (Qx * lx[None, :]) ** 2  # (d, d): (Q_x Λ_x)²
        kss = self.feature_kernel(phi, diag=True)
        f_var = (kss[:, None] * Kx.diagonal()[None, :] - h @ G.T).clamp_min(0)
        return self._prediction(mean, f_var, calibrated)


class _JointSVGP(ApproximateGP):
    def __init__(self, inducing_points: torch.Tensor):
        strategy = VariationalStrategy(self, inducing_points, CholeskyVariationalDistribution(len(inducing_points)),
                                       learn_inducing_locations=True)
        super().__init__(strategy)
        self.mean_module = ConstantMean()
        self.covar_module = ScaleKernel(RBFKernel(ard_num_dims=inducing_points.shape[-1]))

    def forward(self, x):
        return MultivariateNormal(self.mean_module(x), self.covar_module(x))


class SVGPOperator(CalibratedVariance):
    """Plain SVGP on (a pooled to ``input_size`` points per axis, x).

    Parameters
    ----------
    in_channels, grid, output_index : as :class:`~.logos.LoGoSGPO`
    points : array (d, dim)
        Coordinates of the output points.
    inducing : int
        M inducing points in the joint (a, x) space, initialised at random training pairs.
    """

    full_batch = False

    def __init__(self, in_channels: int, grid: tuple, output_index: torch.Tensor, points, inducing: int = 256,
                 input_size: int = 16):
        super().__init__()
        self.grid, self.dim, self.in_channels = tuple(grid), len(grid), in_channels
        self.register_buffer("output_index", torch.as_tensor(output_index, dtype=torch.long))
        self.d = len(self.output_index)
        self.register_buffer("points", torch.as_tensor(points, dtype=torch.get_default_dtype()).reshape(self.d, -1))
        self.input_size = input_size
        q = in_channels * input_size**self.dim + self.points.shape[1]
        self.gp = _JointSVGP(torch.randn(inducing, q))
        # length scales at the typical distance of each part: √(number of pooled a values) for
        # the standardised input, 0.1 for x in the unit box (unit length scales in ~100
        # dimensions would make all functions look unrelated to the kernel)
        qa = q - self.points.shape[1]
        ell = torch.cat([torch.full((qa,), math.sqrt(qa)), torch.full((self.points.shape[1],), 0.1)])
        self.gp.covar_module.base_kernel.lengthscale = ell[None]
        self.likelihood = GaussianLikelihood()

    def _inputs(self, a):
        za = pooled(a, self.input_size).flatten(1)
        b = len(a)
        return torch.cat([za[:, None, :].expand(b, self.d, -1), self.points[None].expand(b, -1, -1)], -1)

    @torch.no_grad()
    def init_inducing(self, a: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Place the inducing points at randomly chosen (input, output point) pairs of the training functions ``a``."""
        X = self._inputs(a).reshape(-1, self.gp.variational_strategy.inducing_points.shape[-1])
        inducing = len(self.gp.variational_strategy.inducing_points)
        if inducing > len(X):
            raise ValueError(f"SVGPOperator: {inducing} inducing points but only {len(X)} training inputs "
                             f"({len(a)} functions × {self.d} output points); use inducing <= {len(X)}")
        pick = torch.randperm(len(X), generator=generator)[:inducing]
        self.gp.variational_strategy.inducing_points.copy_(X[pick])

    def loss(self, a: torch.Tensor, y: torch.Tensor, num_data: int) -> torch.Tensor:
        """Negative ELBO per training point, estimated on a mini-batch of the ``num_data`` training functions."""
        check_batch(a, self.in_channels, self.grid, y, self.d, "SVGPOperator")
        X = self._inputs(a)
        X = X.reshape(-1, X.shape[-1])
        mll = VariationalELBO(self.likelihood, self.gp, num_data=num_data * self.d)
        return -mll(self.gp(X), y.reshape(-1))

    @torch.no_grad()
    def predict(self, a: torch.Tensor, calibrated: bool = True) -> Prediction:
        """Predictive marginals (``calibrated=False``: the trained model's)."""
        check_batch(a, self.in_channels, self.grid, who="SVGPOperator")
        out = self.gp(self._inputs(a).reshape(len(a) * self.d, -1))
        shape = (len(a), self.d)
        return self._prediction(out.mean.reshape(shape), out.variance.reshape(shape), calibrated)
