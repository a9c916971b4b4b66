"""LoGoS-GPO: a local–global doubly sparse Gaussian-process operator (Kumar et al.).

    f(a, x) ~ GP(m(a)(x), K_a(Φ(a), Φ(a')) ⊗ K_x(x, x')),   u = f + ε,   ε ~ N(0, σ²),

with the mean m = WNO_mean(a), the feature map Φ = pool(WNO_kernel(a)) (enhanced WNOs,
:mod:`.wno`), K_a a gpytorch ARD RBF kernel on Φ with M ≪ N inducing points Z (sparse
variational, global), and K_x a nearest-neighbour sparse kernel (local; Kronecker per axis on
structured grids, :mod:`.spatial`).

Inducing variables v = f(Z, x) − m over all d spatial points carry a structured variational
distribution, whitened in the feature factor (v = (L ⊗ I) e with K_a(Z, Z) = L Lᵀ):

    q(e) = N(vec(B K_x), S ⊗ K_x),   S = C Cᵀ (M × M),   B ∈ R^{M×d}.

Tying the spatial factor of q's covariance to K_x and writing its mean as K_x times free
coefficients (the representer form) is what keeps everything linear in d: with
w(a) = L⁻¹ k_a(Z, Φ(a)) the predictive distribution of eq. (23) becomes

    q(f(a)) = N(m(a) + K_x Bᵀ w,  σ²(a) K_x),   σ²(a) = k_a(a, a) − wᵀw + wᵀ S w,

and the KL term of the ELBO (eq. 21) is ½[d tr S + tr(B K_x Bᵀ) − M d − d log|S|]: only
products with the sparse K_x appear, never an inverse, a determinant or a dense Nd × Nd (or
even d × d) matrix. The family contains the exact posterior when K_x is diagonal (tested).
"""

from __future__ import annotations

import math

import linear_operator
import torch
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from torch import nn

from .calibration import CalibratedVariance, Prediction
from .wno import WNO

__all__ = ["LoGoSGPO", "Prediction", "check_batch", "pooled"]


def check_batch(a: torch.Tensor, in_channels: int, grid: tuple, y: torch.Tensor | None = None,
                d: int | None = None, who: str = "GPO") -> None:
    """Clear errors for inputs of the wrong shape or with non-finite values."""
    want = (in_channels, *grid)
    if a.dim() != len(grid) + 2 or tuple(a.shape[1:]) != want:
        raise ValueError(f"{who}: inputs must have shape (batch, {', '.join(map(str, want))}), got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError(f"{who}: inputs have non-finite values")
    if y is not None:
        if y.shape != (a.shape[0], d):
            raise ValueError(f"{who}: outputs must have shape ({a.shape[0]}, {d}), got {tuple(y.shape)}")
        if not torch.isfinite(y).all():
            raise ValueError(f"{who}: outputs have non-finite values")


def pooled(fields: torch.Tensor, size: int) -> torch.Tensor:
    """``(batch, channels, *grid)`` 1D or 2D fields average-pooled to ``size`` points per axis."""
    pool = nn.functional.adaptive_avg_pool1d if fields.dim() == 3 else nn.functional.adaptive_avg_pool2d
    return pool(fields, size)


def add_operator_prior(module: nn.Module, in_channels: int, latent_channels: int, latent_size: int, width: int,
                       depth: int, wavelet_levels: int, wavelet: str, modes: int, boundary: str,
                       neural_mean: bool) -> int:
    """Give ``module`` the parts every GP operator here shares: the WNO mean ``mean_op`` (None
    without ``neural_mean``), the WNO feature map ``kernel_op`` (half the width and depth),
    the scaled RBF ``feature_kernel`` on the pooled latent features and a Gaussian likelihood.
    Returns the feature dimension p = latent_channels · latent_size^dim."""
    module.mean_op = WNO(in_channels, 1, module.dim, width, depth, wavelet_levels, wavelet, modes, boundary) \
        if neural_mean else None
    module.kernel_op = WNO(in_channels, latent_channels, module.dim, max(width // 2, 4), max(depth // 2, 1),
                           wavelet_levels, wavelet, modes, boundary)
    module.latent_size = latent_size
    p = latent_channels * latent_size**module.dim
    module.feature_kernel = ScaleKernel(RBFKernel(ard_num_dims=p))
    module.feature_kernel.base_kernel.lengthscale = math.sqrt(p)
    # standardised outputs of smooth solution operators are fitted to 1e-5 and better: gpytorch's
    # default lower bound of 1e-4 on σ² would cap the predictive precision
    module.likelihood = GaussianLikelihood(noise_constraint=GreaterThan(1e-7))
    module.likelihood.noise = 1e-2
    return p


class LoGoSGPO(CalibratedVariance):
    """LoGoS-GPO on a grid.

    Parameters
    ----------
    in_channels : int
        Input function channels.
    grid : tuple of int
        Grid shape of inputs (1D or 2D); the WNOs act on it.
    output_index : LongTensor (d,)
        Flat grid indices of the d output points (all points, or those inside a domain).
    spatial : KNNKernel or KroneckerKNNKernel
        K_x over the d output points.
    inducing : int
        M, inducing points in the feature space.
    latent_channels, latent_size : int
        Φ(a) = the kernel WNO's ``latent_channels`` output fields average-pooled to
        ``latent_size`` points per axis (dimension latent_channels · latent_size^dim).
    width, depth, wavelet_levels, wavelet, modes, boundary :
        Mean WNO; the kernel WNO has half the width and depth (at least 1).
    """

    full_batch = False

    def __init__(self, in_channels: int, grid: tuple, output_index: torch.Tensor, spatial: nn.Module,
                 inducing: int = 64, latent_channels: int = 4, latent_size: int = 8, width: int = 32, depth: int = 4,
                 wavelet_levels: int = 3, wavelet: str = "db4", modes: int = 16, boundary: str = "symmetric"):
        super().__init__()
        self.grid, self.dim, self.in_channels = tuple(grid), len(grid), in_channels
        if self.dim not in (1, 2):
            raise ValueError(f"LoGoSGPO: grid must be 1D or 2D, got {grid}")
        self.register_buffer("output_index", torch.as_tensor(output_index, dtype=torch.long))
        self.d = len(self.output_index)
        if spatial.d != self.d:
            raise ValueError(f"LoGoSGPO: the spatial kernel has {spatial.d} points, the outputs {self.d}")
        self.spatial = spatial
        p = add_operator_prior(self, in_channels, latent_channels, latent_size, width, depth, wavelet_levels, wavelet,
                               modes, boundary, neural_mean=True)
        self.inducing_points = nn.Parameter(torch.randn(inducing, p))
        self.coefficients = nn.Parameter(torch.zeros(inducing, self.d))  # B
        self.chol_covar = nn.Parameter(torch.eye(inducing))  # C, lower triangle used
        self.jitter = 1e-5

    def features(self, a: torch.Tensor) -> torch.Tensor:
        """Φ(a): the kernel WNO's fields pooled to a fixed size (so Φ does not depend on the grid)."""
        return pooled(self.kernel_op(a), self.latent_size).flatten(1)

    @torch.no_grad()
    def init_inducing(self, a: torch.Tensor) -> None:
        """Place the inducing points at the features of M training inputs (call before training)."""
        phi = self.features(a)
        if len(phi) < len(self.inducing_points):
            raise ValueError(f"LoGoSGPO.init_inducing: need at least {len(self.inducing_points)} inputs")
        self.inducing_points.copy_(phi[: len(self.inducing_points)])

    def closed_form_parameters(self) -> tuple:
        """(B, C, raw σ²): what :meth:`optimal_variational` sets; a training loop that uses it
        leaves them out of its optimiser."""
        return self.coefficients, self.chol_covar, self.likelihood.noise_covar.raw_noise

    def _chol(self) -> torch.Tensor:
        return torch.tril(self.chol_covar)

    def _terms(self, a: torch.Tensor):
        m = self.prior_mean(a)
        phi = self.features(a)
        w = self._whitened_cross(phi)  # (M, B)
        kaa = self.feature_kernel(phi, diag=True)
        sw = self._chol().T @ w
        sigma2 = (kaa - (w * w).sum(0) + (sw * sw).sum(0)).clamp_min(1e-10)
        Kx = self.spatial.operator()
        mean = m + (Kx @ (self.coefficients.T @ w)).T
        f_var = sigma2[:, None] * Kx.diagonal()[None, :]
        return mean, f_var, Kx

    def _whitened_cross(self, phi: torch.Tensor) -> torch.Tensor:
        """w = L⁻¹ k_a(Z, Φ(a)), (M, batch), from the features Φ(a)."""
        Z = self.inducing_points
        Kzz = self.feature_kernel(Z).to_dense()
        eye = torch.eye(len(Z), dtype=Z.dtype, device=Z.device)
        L = torch.linalg.cholesky(Kzz + self.jitter * Kzz.diagonal().mean() * eye)
        return torch.linalg.solve_triangular(L, self.feature_kernel(Z, phi).to_dense(), upper=False)

    def prior_mean(self, a: torch.Tensor) -> torch.Tensor:
        """m(a) = WNO_mean(a) on the output points, (batch, d)."""
        return self.mean_op(a).flatten(1)[:, self.output_index]

    @torch.no_grad()
    def mean_values(self, a: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """:meth:`prior_mean` without gradients, ``batch_size`` inputs at a time."""
        return torch.cat([self.prior_mean(a[idx]) for idx in torch.arange(len(a)).split(batch_size)])

    @torch.no_grad()
    def optimal_variational(self, a: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                            noise: bool = False) -> float:
        """Set q(e) to the ELBO's maximiser over (B, S) for the current kernels and mean; with
        ``noise=True`` jointly over (B, S, σ²). Returns the ELBO per training point.

        With the Gaussian likelihood the optimum over (B, S) is closed-form (the conjugate step
        that natural gradients take with step 1): with W = [w(a_1) … w(a_N)], R = Y − m(A),
        WWᵀ = U Λ Uᵀ and c = tr K_x / (d σ²),

            S = (I + c WWᵀ)⁻¹,    (UᵀB)_m = (UᵀW R)_m (I + λ_m K_x / σ²)⁻¹ / σ²,

        one sparse solve with I + λ_m K_x / σ² per inducing point (scipy's sparse LU; for a
        Kronecker K_x exact through the eigendecompositions of the small per-axis factors).
        The ELBO at that optimum is a function of σ² alone, evaluated exactly from W and R
        (``_collapsed_elbo``); ``noise=True`` maximises it over log σ² (scipy's bounded
        Brent search). This is why the noise is not left to a stochastic optimiser: with (B, S)
        held fixed between these steps, mini-batch gradients in σ² are dominated by how stale
        (B, S) are, and the noise stays wherever it keeps a stale fit plausible (in our runs it
        did not move from its initial value, and the bands over-covered; docs/gpo.md).
        """
        check_batch(a, self.in_channels, self.grid, y, self.d, "LoGoSGPO.optimal_variational")
        phi = torch.cat([self.features(a[idx]) for idx in torch.arange(len(a)).split(batch_size)])
        W, kaa = self._whitened_cross(phi).double(), self.feature_kernel(phi, diag=True).double()
        R = (y - self.mean_values(a, batch_size)).double()
        lam, U = torch.linalg.eigh(W @ W.T)
        lam = lam.clamp_min(0)
        if noise:
            import scipy.optimize

            low = float(self.likelihood.noise_covar.raw_noise_constraint.lower_bound) * (1 + 1e-6)
            high = max(10 * float((R * R).mean()), 10 * low)
            best = scipy.optimize.minimize_scalar(
                lambda t: -self._collapsed_elbo(W, R, kaa, lam, U, math.exp(t))[0],
                bounds=(math.log(low), math.log(high)), method="bounded", options={"xatol": 1e-3})
            self.likelihood.noise = math.exp(best.x)
        elbo, S, B = self._collapsed_elbo(W, R, kaa, lam, U, float(self.likelihood.noise))
        self.chol_covar.copy_(torch.linalg.cholesky(0.5 * (S + S.T)))
        self.coefficients.copy_(B)
        return elbo / R.numel()

    def _collapsed_elbo(self, W, R, kaa, lam, U, noise: float):
        """(ELBO, S, B) at the optimal (B, S) for the noise σ², from W (M, N), R (N, d),
        k_a(a_i, a_i) (N,) and WWᵀ = U diag(λ) Uᵀ, all in float64."""
        N, d, M = len(R), self.d, len(lam)
        Kx = self.spatial.operator().to(torch.float64)
        trK = float(Kx.diagonal().sum())
        c = trK / (d * noise)
        shrink = 1.0 / (1.0 + c * lam)
        S = U @ torch.diag(shrink) @ U.T
        B = U @ _solve_shifted(self.spatial, (U.T @ W @ R) / noise, lam / noise)
        fit = (R.T - Kx @ (B.T @ W)).square().sum()
        sigma2 = (kaa - (W * W).sum(0) + (W * (S @ W)).sum(0)).clamp_min(1e-10)
        ell = -0.5 * N * d * math.log(2 * math.pi * noise) - (fit + trK * sigma2.sum()) / (2 * noise)
        kl = 0.5 * (d * shrink.sum() + (B * (Kx @ B.T).T).sum() - M * d + d * torch.log1p(c * lam).sum())
        return float(ell - kl), S, B

    def kl(self, Kx=None) -> torch.Tensor:
        """KL(q(e) ‖ p(e)) of the variational distribution over the inducing values (with K_x given or computed)."""
        Kx = self.spatial.operator() if Kx is None else Kx
        C = self._chol()
        B = self.coefficients
        M = len(B)
        return 0.5 * (self.d * (C * C).sum() + (B * (Kx @ B.T).T).sum() - M * self.d
                      - self.d * 2 * torch.log(C.diagonal().abs()).sum())

    def expected_log_likelihood(self, y: torch.Tensor, mean: torch.Tensor, f_var: torch.Tensor) -> torch.Tensor:
        """Σ over points of E_q[log N(y | f, σ²)], per sample (batch,)."""
        noise = self.likelihood.noise
        return (-0.5 * torch.log(2 * math.pi * noise) - ((y - mean) ** 2 + f_var) / (2 * noise)).sum(-1)

    def loss(self, a: torch.Tensor, y: torch.Tensor, num_data: int) -> torch.Tensor:
        """Negative ELBO (eq. 21) per training point, estimated on a mini-batch of ``num_data``."""
        check_batch(a, self.in_channels, self.grid, y, self.d, "LoGoSGPO")
        mean, f_var, Kx = self._terms(a)
        elbo = num_data / len(a) * self.expected_log_likelihood(y, mean, f_var).sum() - self.kl(Kx)
        return -elbo / (num_data * self.d)

    @torch.no_grad()
    def predict(self, a: torch.Tensor, calibrated: bool = True) -> Prediction:
        """Predictive distributions: marginals and, as ``spatial``, K_x, the correlation of the
        latent field over the output points (``calibrated=False``: the trained model's; see
        :class:`~.calibration.CalibratedVariance`)."""
        check_batch(a, self.in_channels, self.grid, who="LoGoSGPO")
        mean, f_var, Kx = self._terms(a)
        return self._prediction(mean, f_var, calibrated, spatial=Kx)

    @torch.no_grad()
    def sample(self, a: torch.Tensor, n: int, generator: torch.Generator | None = None,
               cholesky_size: int = 4096, root_rank: int = 400) -> torch.Tensor:
        """``n`` draws of f(a) from the predictive process, shape (n, batch, d): m + σ(a) R z with
        R Rᵀ = K_x from linear_operator's root decomposition: an (exact) Cholesky factor while
        K_x — or, for a Kronecker K_x, each factor — has at most ``cholesky_size`` points (a dense
        factor of that size, at prediction time only), beyond that Lanczos of rank ≤
        ``root_rank``, which drops the smallest eigenvalues of K_x (slightly smoother draws).
        After calibration σ(a)² is the calibrated latent variance."""
        check_batch(a, self.in_channels, self.grid, who="LoGoSGPO")
        mean, f_var, Kx = self._terms(a)
        f_var = self._prediction(mean, f_var, calibrated=True).f_var
        sigma = (f_var[:, :1] / Kx.diagonal()[:1]).sqrt()  # σ(a), the same at every point
        with linear_operator.settings.max_cholesky_size(cholesky_size), \
                linear_operator.settings.max_root_decomposition_size(root_rank):
            root = Kx.root_decomposition().root
        z = torch.randn(root.shape[-1], n * len(a), generator=generator, dtype=mean.dtype)
        draws = (root @ z).T.reshape(n, len(a), self.d)
        return mean[None] + sigma[None] * draws


def _solve_shifted(spatial, rhs: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Rows x_m of X with x_m (I + s_m K_x) = rhs_m (K_x symmetric), in float64."""
    import numpy as np
    import scipy.sparse
    import scipy.sparse.linalg

    if hasattr(spatial, "factors"):  # Kronecker: K_x = ⊗ Q_k Λ_k Q_kᵀ
        eig = [torch.linalg.eigh(f.operator().to_dense().detach().double()) for f in spatial.factors]
        lam = eig[0][0]
        for value, _ in eig[1:]:
            lam = torch.outer(lam, value).reshape(-1)
        X = rhs.reshape(len(rhs), *[len(v) for v, _ in eig])
        for k, (_, Q) in enumerate(eig):  # rotate into the eigenbasis, axis by axis
            X = torch.movedim(torch.tensordot(X, Q, dims=([k + 1], [0])), -1, k + 1)
        X = X.reshape(len(rhs), -1) / (1.0 + shifts[:, None] * lam[None, :])
        X = X.reshape(len(rhs), *[len(v) for v, _ in eig])
        for k, (_, Q) in enumerate(eig):
            X = torch.movedim(torch.tensordot(X, Q.T, dims=([k + 1], [0])), -1, k + 1)
        return X.reshape(len(rhs), -1).to(rhs.dtype)
    op = spatial.operator()
    K = scipy.sparse.csc_matrix((op.values.detach().double().cpu().numpy(),
                                 (op.rows.cpu().numpy(), op.cols.cpu().numpy())), shape=(op.n, op.n))
    eye = scipy.sparse.identity(op.n, format="csc")
    out = np.stack([scipy.sparse.linalg.spsolve(eye + float(s) * K, r) for s, r in zip(shifts, rhs.cpu().numpy())])
    return torch.as_tensor(out, dtype=rhs.dtype, device=rhs.device)

