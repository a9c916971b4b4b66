"""GP operators (fem_ms_torch.gpo): sparse/Kronecker kernels against dense algebra, the wavelet
layer, the variational model against an exact GP, the baselines' structured algebra against
dense formulas, training/resume/checkpoints and input checks."""

import dataclasses
import math

import gpytorch
import numpy as np
import pytest
import torch

from fem_ms_torch.checkpoints import load_checkpoint
from fem_ms_torch.gpo import (
    CalibratedVariance,
    ExactGPO,
    KNNKernel,
    KroneckerKNNKernel,
    LoGoSGPO,
    WaveletConv,
    build_model,
    calibrate_variance,
    evaluate,
    load_gpo,
    load_problem,
    train_gpo,
)
from fem_ms_torch.gpo.spatial import BASE_KERNELS


@pytest.fixture(autouse=True)
def double():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def knn_mask(points, k):
    """Brute-force symmetrised k-nearest-neighbour pattern (independent of the KD-tree)."""
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    mask = np.zeros_like(d, dtype=bool)
    mask[np.arange(len(d))[:, None], nearest] = True
    return mask | mask.T, d


@pytest.mark.parametrize("base", ["rbf", "matern52"])
def test_knn_matvec_equals_dense(base):
    rng = np.random.default_rng(0)
    pts = rng.random((40, 2))
    kern = KNNKernel(pts, 6, base=base, taper=False, lengthscale=0.2)
    mask, d = knn_mask(pts, 6)
    dense = torch.as_tensor(np.where(mask, 1.0, 0.0)) * BASE_KERNELS[base](torch.as_tensor(d) / 0.2)
    v = torch.randn(40, 3)
    op = kern.operator()
    torch.testing.assert_close(op @ v, dense @ v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.diagonal(), dense.diagonal())
    assert op.nnz == mask.sum()


def test_tapered_knn_is_positive_definite_where_truncation_is_not():
    x = np.arange(64) / 64
    raw = KNNKernel(x, 5, taper=False, lengthscale=0.2).operator().to_dense()
    tapered = KNNKernel(x, 5, taper=True, lengthscale=0.2)
    T = tapered.operator().to_dense()
    assert torch.linalg.eigvalsh(raw.detach()).min() < -0.1  # the plain truncation is indefinite
    assert torch.linalg.eigvalsh(T.detach()).min() > 0
    # interior rows keep exactly the K = 5 nearest points (x_i and two on each side)
    assert ((T[10] != 0).sum()) == 5
    r = torch.as_tensor(np.abs(x[:, None] - x[None]))
    t = r / tapered.radius
    ref = torch.exp(-0.5 * (r / 0.2) ** 2) * torch.clamp(1 - t, min=0) ** 4 * (4 * t + 1)
    torch.testing.assert_close(T, ref, rtol=1e-12, atol=1e-14)


def test_kronecker_matvec_equals_dense():
    ax, ay = np.linspace(0, 1, 6), np.linspace(0, 2, 5)
    kern = KroneckerKNNKernel([ax, ay], 3, base="matern52", lengthscale=0.4)
    op = kern.operator()
    f1, f2 = (f.operator().to_dense() for f in kern.factors)
    dense = torch.kron(f1, f2)
    v = torch.randn(30, 4)
    torch.testing.assert_close(op @ v, dense @ v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.diagonal(), dense.diagonal())
    root = op.root_decomposition().root.to_dense()
    torch.testing.assert_close(root @ root.T, dense, rtol=1e-10, atol=1e-10)


def test_knn_root_decompositions_beyond_the_dense_threshold():
    import linear_operator

    kern = KNNKernel(np.arange(900) / 900, 9, lengthscale=0.01)
    op = kern.operator()
    assert op.to(torch.float32).rows.dtype == torch.long  # casts keep the indices integer
    dense = op.to_dense().detach()
    with linear_operator.settings.max_cholesky_size(1000):
        root = op.root_decomposition().root.to_dense().detach()
    torch.testing.assert_close(root @ root.T, dense, rtol=1e-10, atol=1e-10)
    with linear_operator.settings.max_cholesky_size(100), linear_operator.settings.max_root_decomposition_size(300):
        lanczos = kern.operator().root_decomposition().root.to_dense().detach()  # approximate, rank ≤ 300
    assert lanczos.shape == (900, 300) and torch.all((lanczos**2).sum(1) <= 1 + 1e-8)


@pytest.mark.parametrize("dim,shape,wavelet", [(1, (3, 4, 100), "db4"), (1, (2, 4, 64), "haar"),
                                               (2, (2, 4, 51, 51), "db4"), (2, (2, 4, 32, 40), "sym3")])
def test_wavelet_conv_round_trips(dim, shape, wavelet):
    conv = WaveletConv(4, dim, wavelet_levels=2, wavelet=wavelet, modes=64)
    with torch.no_grad():
        eye = torch.eye(4, dtype=torch.cfloat).reshape(1, 1, 4, 4, *([1] * dim))
        conv.weight.copy_(eye.expand_as(conv.weight))
    x = torch.randn(shape)
    torch.testing.assert_close(conv(x), x, rtol=1e-5, atol=1e-5)  # complex64 weights


@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym6"])
@pytest.mark.parametrize("n,level", [(64, 3), (8, 2)])  # (8, 2): db4/sym6 filters longer than the signal
def test_periodised_transforms_equal_pywavelets_and_invert(wavelet, n, level):
    import pywt

    from fem_ms_torch.gpo.periodized_dwt import (
        periodized_wavedec,
        periodized_wavedec2,
        periodized_waverec,
        periodized_waverec2,
    )

    x = torch.randn(2, 3, n)
    ours = periodized_wavedec(x, wavelet, level)
    theirs = pywt.wavedec(x.numpy(), wavelet, mode="periodization", level=level)
    for c, ref in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(c.numpy(), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(periodized_waverec(ours, wavelet), x, rtol=0, atol=1e-10)
    x2 = torch.randn(2, n, n // 2)
    ours = periodized_wavedec2(x2, wavelet, level - 1)
    theirs = pywt.wavedec2(x2.numpy(), wavelet, mode="periodization", level=level - 1)
    np.testing.assert_allclose(ours[0].numpy(), theirs[0], rtol=0, atol=1e-12)
    for bands, refs in zip(ours[1:], theirs[1:], strict=True):
        for c, ref in zip(bands, refs, strict=True):
            np.testing.assert_allclose(c.numpy(), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(periodized_waverec2(ours, wavelet), x2, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dim", [1, 2])
def test_periodic_wavelet_conv_commutes_with_circular_shifts(dim):
    """boundary="periodic" (exact periodisation): shifting the input by 2^level points shifts the
    output, also across the seam; ptwt's periodic padding, used before, does not do this."""
    level = 2
    conv = WaveletConv(3, dim, wavelet_levels=level, wavelet="db4", modes=8, boundary="periodic")
    x = torch.randn(2, 3, *([32] * dim))
    axes = tuple(range(2, 2 + dim))
    shift = (2**level * 3,) * dim
    with torch.no_grad():
        torch.testing.assert_close(conv(torch.roll(x, shift, axes)), torch.roll(conv(x), shift, axes),
                                   rtol=1e-5, atol=1e-5)  # complex64 weights
    with pytest.raises(ValueError, match="divisible by 4"):
        conv(torch.randn(1, 3, *([30] * dim)))
    with pytest.raises(ValueError, match="orthogonal wavelet"):
        WaveletConv(3, dim, wavelet="bior2.2", boundary="periodic")
    with pytest.raises(ValueError, match="unknown boundary 'circular'"):
        WaveletConv(3, dim, boundary="circular")


def test_wavelet_conv_is_a_circular_convolution_of_the_coefficients():
    conv = WaveletConv(1, 1, wavelet_levels=1, modes=64)
    c = torch.randn(1, 1, 20)
    w = torch.zeros(1, 1, 1, 64, dtype=torch.cfloat)
    h = torch.randn(20)
    w[..., :11] = torch.fft.rfft(h)  # kernel h's spectrum: the layer must compute c ⊛ h
    out = conv._spectral(c, w)
    ref = torch.stack([sum(c[0, 0, (i - j) % 20] * h[j] for j in range(20)) for i in range(20)])
    torch.testing.assert_close(out[0, 0], ref, rtol=1e-5, atol=1e-5)


def tiny_logos(d=6, grid=16, inducing=8, neighbours=1):
    index = torch.arange(0, grid, grid // d)[:d]
    kx = KNNKernel(index.numpy() / grid, neighbours, lengthscale=0.1)
    return LoGoSGPO(1, (grid,), index, kx, inducing=inducing, latent_channels=1, latent_size=4, width=8,
                    depth=2, wavelet_levels=2, modes=4)


def test_periodic_wno_coordinates_are_continuous_across_the_seam():
    """boundary="periodic": the coordinates enter as (cos, sin) of 2πi/n (continuous from
    x = (n − 1)/n to 0); otherwise as x itself."""
    from fem_ms_torch.gpo.wno import WNO

    t = 2 * math.pi * torch.arange(16) / 16
    periodic = WNO(1, 1, 1, width=4, depth=1, wavelet_levels=1, modes=2, boundary="periodic")
    torch.testing.assert_close(periodic.coordinates((16,))[0], torch.stack([torch.cos(t), torch.sin(t)]))
    assert periodic.lift.in_features == 3
    plain = WNO(1, 1, 2, width=4, depth=1, wavelet_levels=1, modes=2, boundary="symmetric")
    assert plain.coordinates((4, 5)).shape == (1, 2, 4, 5) and plain.lift.in_features == 3
    assert periodic(torch.randn(2, 1, 16)).shape == (2, 1, 16)


def test_variational_model_with_m_equal_n_is_the_exact_gp():
    """Z = Φ(A), K_x = I: the optimal q is the exact posterior, the ELBO is log p(y) and the
    predictions are the exact GP's (gpytorch ExactGP, a batch of d independent outputs)."""
    torch.manual_seed(0)
    N, d = 8, 4
    model = tiny_logos(d=d, inducing=N)
    a, a_test = torch.randn(N, 1, 16), torch.randn(3, 1, 16)
    y = torch.randn(N, d)
    model.init_inducing(a)
    model.jitter = 1e-10
    model.likelihood.noise = 0.1
    variational = [model.coefficients, model.chol_covar]
    for p in model.parameters():
        p.requires_grad_(any(p is q for q in variational))
    opt = torch.optim.LBFGS(variational, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = model.loss(a, y, N)
        value.backward()
        return value

    for _ in range(5):
        opt.step(closure)
    with torch.no_grad():
        elbo = -model.loss(a, y, N) * N * d
        phi, phi_test, m = model.features(a), model.features(a_test), model.mean_op(a)[:, 0, model.output_index]

    class Exact(gpytorch.models.ExactGP):
        def __init__(self):
            lik = gpytorch.likelihoods.GaussianLikelihood(batch_shape=torch.Size([d]))
            super().__init__(phi.expand(d, -1, -1), (y - m).T, lik)
            self.covar = model.feature_kernel

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(torch.zeros(x.shape[:-1]), self.covar(x))

    exact = Exact()
    exact.likelihood.noise = 0.1
    exact.eval()
    with torch.no_grad():
        K = model.feature_kernel(phi).to_dense() + 0.1 * torch.eye(N)
        log_p = gpytorch.distributions.MultivariateNormal(torch.zeros(N), K).log_prob((y - m).T).sum()
        post = exact(phi_test.expand(d, -1, -1))
        pred = model.predict(a_test)
        m_test = model.mean_op(a_test)[:, 0, model.output_index]
    assert abs(float(elbo - log_p)) < 1e-5 * abs(float(log_p))
    model.optimal_variational(a, y)  # the closed-form optimum reaches the same bound
    with torch.no_grad():
        assert abs(float(-model.loss(a, y, N) * N * d - log_p)) < 1e-7 * abs(float(log_p))
    torch.testing.assert_close(pred.mean, m_test + post.mean.T, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pred.f_var, post.variance.T, rtol=1e-4, atol=1e-7)


def small_logos_problem(kronecker: bool, seed: int):
    """A small LoGoS-GPO (1D KNN or 2D Kronecker K_x) with 20 random training functions."""
    torch.manual_seed(seed)
    if kronecker:
        grid, kx = (8, 6), KroneckerKNNKernel([np.linspace(0, 1, 8), np.linspace(0, 1, 6)], 3, lengthscale=0.3)
    else:
        grid, kx = (16,), KNNKernel(np.arange(16) / 16, 5, lengthscale=0.1)
    d = int(np.prod(grid))
    model = LoGoSGPO(1, grid, torch.arange(d), kx, inducing=6, latent_channels=1, latent_size=4, width=8, depth=2,
                     wavelet_levels=1, modes=4)
    a, y = torch.randn(20, 1, *grid), torch.randn(20, d)
    model.init_inducing(a)
    return model, a, y


@pytest.mark.parametrize("kronecker", [False, True])
def test_closed_form_variational_step_is_the_elbo_maximiser(kronecker):
    model, a, y = small_logos_problem(kronecker, seed=3)
    model.likelihood.noise = 0.05
    model.optimal_variational(a, y, batch_size=7)
    loss = model.loss(a, y, 20)
    grads = torch.autograd.grad(loss, [model.coefficients, model.chol_covar])
    assert max(float(g.abs().max()) for g in grads) < 1e-10  # a stationary point ...
    with torch.no_grad():
        model.coefficients.add_(1e-2 * torch.randn_like(model.coefficients))
        model.chol_covar.mul_(1.01)
        assert model.loss(a, y, 20) > loss  # ... and a maximum of the ELBO (concave in B, S)


@pytest.mark.parametrize("kronecker", [False, True])
def test_elbo_gradient_at_the_closed_form_optimum_is_the_collapsed_bound_gradient(kronecker):
    """Envelope theorem, what ``train_gpo(refresh_every=1)`` relies on: at the optimal (B, S)
    the ELBO's gradient in a kernel parameter equals the derivative of the collapsed bound
    max_{B,S} ELBO, here against central differences of the closed-form step's value."""
    model, a, y = small_logos_problem(kronecker, seed=6)
    model.likelihood.noise = 0.05
    n = len(a) * model.d
    for parameter in (model.feature_kernel.raw_outputscale, model.feature_kernel.base_kernel.raw_lengthscale):
        model.optimal_variational(a, y)
        grad = -n * torch.autograd.grad(model.loss(a, y, len(a)), parameter)[0].flatten()[0]
        h, values = 1e-2, []
        for step in (h, -h):
            with torch.no_grad():
                parameter.view(-1)[0] += step
            values.append(n * model.optimal_variational(a, y))
            with torch.no_grad():
                parameter.view(-1)[0] -= step
        assert abs(float(grad)) > 1e-2
        assert float(grad) == pytest.approx((values[0] - values[1]) / (2 * h), rel=2e-2)


@pytest.mark.parametrize("kronecker", [False, True])
def test_closed_form_step_with_noise_maximises_the_elbo_over_the_noise_too(kronecker):
    model, a, y = small_logos_problem(kronecker, seed=4)
    start = model.optimal_variational(a, y, batch_size=7)
    before = torch.autograd.grad(model.loss(a, y, 20), model.likelihood.noise_covar.raw_noise)[0]
    assert abs(float(before)) > 1e-2  # the initial noise is not the best one ...
    elbo = model.optimal_variational(a, y, batch_size=7, noise=True)
    assert elbo > start
    loss = model.loss(a, y, 20)
    assert abs(elbo + float(loss)) < 1e-5 * abs(elbo)  # the returned value is the model's ELBO
    grad = torch.autograd.grad(loss, model.likelihood.noise_covar.raw_noise)[0]
    assert abs(float(grad)) < 1e-3  # ... this one is (the search stops at xatol = 1e-3 in log σ²)
    noise = model.likelihood.noise.item()
    for factor in (0.8, 1.25):  # any other noise, with (B, S) optimal for it, is worse
        model.likelihood.noise = noise * factor
        assert model.optimal_variational(a, y) < elbo


@pytest.mark.parametrize("kronecker", [False, True])
def test_predictions_are_gpytorch_multivariate_normals(kronecker):
    """``Prediction.to_multivariate_normal()``: LoGoS-GPO's predictive distribution σ²(a) K_x + σ² I
    as a gpytorch MultivariateNormal, whose log_prob and confidence region are scipy's and ±2 std."""
    import scipy.stats

    from fem_ms_torch.gpo import Prediction

    model, a, y = small_logos_problem(kronecker, seed=5)
    model.optimal_variational(a, y)
    pred = model.predict(a[:3])
    mvn = pred.to_multivariate_normal()
    assert isinstance(mvn, gpytorch.distributions.MultivariateNormal) and mvn.batch_shape == (3,)
    Kx = model.spatial.operator().to_dense().detach()
    sigma2 = pred.f_var / Kx.diagonal()  # the model's latent variance σ²(a) · diag K_x ...
    torch.testing.assert_close(sigma2, sigma2[:, :1].expand(-1, model.d))  # ... one σ²(a) per input
    covariance = sigma2[:, :1, None] * Kx + pred.noise * torch.eye(model.d)
    torch.testing.assert_close(mvn.mean, pred.mean)
    torch.testing.assert_close(mvn.covariance_matrix, covariance)
    torch.testing.assert_close(mvn.variance, pred.variance)
    reference = [scipy.stats.multivariate_normal(pred.mean[i].numpy(), covariance[i].numpy()).logpdf(y[i].numpy())
                 for i in range(3)]
    torch.testing.assert_close(mvn.log_prob(y[:3]), torch.tensor(reference), rtol=1e-9, atol=1e-8)
    lower, upper = mvn.confidence_region()
    torch.testing.assert_close(upper - pred.mean, 2 * pred.std)
    torch.testing.assert_close(pred.to_multivariate_normal(noise=False).covariance_matrix,
                               covariance - pred.noise * torch.eye(model.d))
    # without a spatial factor (ExactGPO, SVGP) the points are independent
    plain = Prediction(pred.mean, pred.f_var, pred.noise).to_multivariate_normal()
    expected = scipy.stats.norm(pred.mean.numpy(), pred.std.numpy()).logpdf(y[:3].numpy()).sum(-1)
    torch.testing.assert_close(plain.log_prob(y[:3]), torch.as_tensor(expected), rtol=1e-9, atol=1e-8)


def test_elbo_decreases_and_samples_match_the_marginals():
    torch.manual_seed(1)
    model = tiny_logos(d=16, inducing=6, neighbours=5)
    a = torch.randn(24, 1, 16)
    y = torch.sin(a[:, 0].cumsum(-1) / 4)[:, model.output_index]
    model.init_inducing(a)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        value = model.loss(a, y, len(a))
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(value.item())
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    draws = model.sample(a[:2], 4000, torch.Generator().manual_seed(0))
    assert draws.shape == (4000, 2, 16)
    pred = model.predict(a[:2])
    tol = 4 * float(pred.f_var.max().sqrt()) / math.sqrt(4000)  # 4 standard errors of the sample mean
    torch.testing.assert_close(draws.mean(0), pred.mean, atol=tol, rtol=0)
    torch.testing.assert_close(draws.var(0), pred.f_var, rtol=0.1, atol=0)


def test_exact_gpo_structured_algebra_equals_dense():
    torch.manual_seed(2)
    N, d = 6, 8
    x = np.arange(d) / d
    gpo = ExactGPO(1, (d,), torch.arange(d), x[:, None], latent_channels=1, latent_size=4, width=8, depth=2,
                   wavelet_levels=1, modes=4, lengthscale=0.2)
    a, y, a_test = torch.randn(N, 1, d), torch.randn(N, d), torch.randn(2, 1, d)
    gpo.set_train_data(a, y)
    gpo.likelihood.noise = 0.05
    with torch.no_grad():
        Ka = gpo.feature_kernel(gpo.features(a)).to_dense()
        Kx = gpo.spatial_dense()
        K = torch.kron(Ka, Kx) + 0.05 * torch.eye(N * d)
        r = (y - gpo.prior_mean(a)).reshape(-1)
        ref = torch.distributions.MultivariateNormal(torch.zeros(N * d), K).log_prob(r) / (N * d)
        torch.testing.assert_close(-gpo.loss(), ref, rtol=1e-9, atol=1e-9)
        ks = torch.kron(gpo.feature_kernel(gpo.features(a_test), gpo.features(a)).to_dense(), Kx)  # (2d, Nd)
        kss = torch.kron(gpo.feature_kernel(gpo.features(a_test)).to_dense(), Kx)
        mean = gpo.prior_mean(a_test).reshape(-1) + ks @ torch.linalg.solve(K, r)
        var = (kss - ks @ torch.linalg.solve(K, ks.T)).diagonal()
        pred = gpo.predict(a_test)
    torch.testing.assert_close(pred.mean.reshape(-1), mean, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(pred.f_var.reshape(-1), var, rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def burgers(tmp_path_factory):
    from fem_ms.data import BurgersConfig, generate

    config = BurgersConfig(name="b", samples=20, points=64, t_end=0.05, dt=0.01, train_fraction=0.8)
    return generate(config, tmp_path_factory.mktemp("burgers"), progress=False)


OPTIONS = {"logos": dict(width=8, depth=2, wavelet_levels=2, modes=4, inducing=8, latent_channels=1, latent_size=4),
           "gpo": dict(width=8, depth=2, wavelet_levels=2, modes=4, latent_channels=1, latent_size=4),
           "svgp": dict(inducing=16, input_size=4)}


@pytest.mark.parametrize("name", ["logos", "logos-epoch-ends", "logos-noise-every", "logos-gradient", "logos-mean",
                                  "logos-calibrated", "gpo", "gpo-mean", "svgp"])
def test_training_resumes_exactly_and_checkpoints_reload(burgers, tmp_path, name):
    if name == "logos-gradient":
        kw = dict(model="logos", options=OPTIONS["logos"], variational="gradient")
    elif name == "logos-epoch-ends":
        kw = dict(model="logos", options=OPTIONS["logos"], refresh_every=0)
    elif name == "logos-noise-every":  # σ² re-fitted after epochs 2 and 3 only; the run stops after 1
        kw = dict(model="logos", options=OPTIONS["logos"], noise_every=2)
    elif name == "logos-calibrated":  # 12 functions train, the next 4 calibrate the predictive variance
        kw = dict(model="logos", options=OPTIONS["logos"], n_train=12, calibration=4)
    elif name.endswith("-mean"):  # the interruption falls in the mean-fitting phase
        model = name.split("-")[0]
        kw = dict(model=model, options=OPTIONS[model], mean_epochs=2)
    else:
        kw = dict(model=name, options=OPTIONS[name])
    kw.update(epochs=3, batch_size=4, progress=False)
    straight = train_gpo(burgers, tmp_path / "a.pt", validation_split="test", **kw)
    train_gpo(burgers, tmp_path / "b.pt", max_seconds=0.0, **kw)  # stops after one epoch
    assert load_checkpoint(tmp_path / "b.pt")["runs"]["model"]["epochs_done"] == 1
    resumed = train_gpo(burgers, tmp_path / "b.pt", **kw)
    A, B = (load_checkpoint(p) for p in (straight, resumed))
    history = A["runs"]["model"]["history"]
    assert len(history) == 3 + kw.get("mean_epochs", 0)
    assert [r["loss"] for r in history] == [r["loss"] for r in B["runs"]["model"]["history"]]
    assert all(np.isfinite(r["val_rel_l2"]) and 0 <= r["val_coverage_95"] <= 1 for r in history)
    for key, value in A["models"]["model"]["state_dict"].items():
        torch.testing.assert_close(value, B["models"]["model"]["state_dict"][key], rtol=0, atol=0, equal_nan=True)
    net, settings, state = load_gpo(straight)
    assert state["done"] == len(state["losses"]) == len(history) and settings["model"] == kw["model"]
    assert torch.isfinite(net.predictive_noise) == (name == "logos-calibrated")
    test = load_problem(burgers, "test", normalisation=state["normalisation"])
    pred = net.predict(test.a)
    assert pred.mean.shape == pred.std.shape == (4, 64) and torch.all(pred.std > 0)
    figures = evaluate(net, test)
    assert figures["test_functions"] == 4 and 0 <= figures["coverage_95"] <= 1
    assert figures["rel_l2_mean"] == pytest.approx(history[-1]["val_rel_l2"], rel=1e-12) or \
        name == "logos-calibrated"  # calibration changes the intervals after the last validation, not the mean
    with pytest.raises(FileExistsError, match="other settings"):
        train_gpo(burgers, tmp_path / "a.pt", **{**kw, "lr": 1e-2})


@pytest.mark.parametrize("model", ["logos", "gpo", "svgp"])
def test_device_smoke_on_cpu(burgers, tmp_path, model):
    """``device=`` reaches the model, the training data and the evaluation (a CPU run here; the
    same path serves "cuda"); a default run is on the CPU too, whatever is installed."""
    kw = dict(model=model, options=OPTIONS[model], epochs=1, batch_size=8, progress=False)
    explicit = train_gpo(burgers, tmp_path / "cpu.pt", device="cpu", **kw)
    default = train_gpo(burgers, tmp_path / "default.pt", **kw)
    net, _, state = load_gpo(explicit, device="cpu")
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert {b.device.type for b in net.buffers()} <= {"cpu"}
    figures = evaluate(net, load_problem(burgers, "test", normalisation=state["normalisation"]))
    assert np.isfinite(figures["rel_l2_mean"]) and 0 <= figures["coverage_95"] <= 1
    # the device is a runtime option: both runs train the same weights
    a, b = (load_checkpoint(p)["models"]["model"]["state_dict"] for p in (explicit, default))
    for key, value in a.items():
        torch.testing.assert_close(value, b[key], rtol=0, atol=0, equal_nan=True)


def test_bad_device_raises(burgers, tmp_path):
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"):
        train_gpo(burgers, tmp_path / "x.pt", device="gpu0", epochs=1)
    with pytest.raises(ValueError, match="device must be"):
        train_gpo(burgers, tmp_path / "x.pt", device="meta", epochs=1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            train_gpo(burgers, tmp_path / "x.pt", device="cuda", epochs=1)


def test_wave_advection_problem_is_periodic_and_exact(tmp_path):
    from fem_ms.data import WaveAdvectionConfig, generate

    path = generate(WaveAdvectionConfig(name="w", samples=10, points=40, train_fraction=0.8), tmp_path,
                    progress=False)
    train = load_problem(path)
    test = load_problem(path, "test", normalisation=train.normalisation)
    assert train.a.shape == (8, 1, 40) and test.y.shape == (2, 40) and train.periods == (1.0,)
    # the output is the input shifted by half the period (20 points), in the data's units
    a = train.normalisation.denormalise_inputs(train.a.double().numpy())[:, 0]
    np.testing.assert_allclose(train.raw_outputs(train.y.double()).numpy(), np.roll(a, 20, axis=1), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(train.kernel_points, axis=1), 1 / (2 * np.pi))  # on the circle


def test_navier_stokes_forcing_problem_reads_one_level(tmp_path):
    from fem_ms.data import NavierStokesForcingConfig, generate

    path = generate(NavierStokesForcingConfig(name="ns", samples=4, resolution=16, levels=(8, 16), t_end=0.1,
                                              train_fraction=0.75), tmp_path, progress=False)
    train = load_problem(path, resolution=16)
    coarse = load_problem(path, resolution=8)
    assert train.a.shape == (3, 1, 16, 16) and train.y.shape == (3, 256) and train.structured
    assert train.periods == pytest.approx((2 * np.pi, 2 * np.pi)) and coarse.grid == (8, 8)
    # the stored 8² level is the 16² solve subsampled: the same functions at every other point
    raw = train.raw_outputs(train.y).reshape(3, 16, 16)[:, ::2, ::2]
    torch.testing.assert_close(coarse.raw_outputs(coarse.y).reshape(3, 8, 8), raw, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="resolution= one of"):
        load_problem(path)


def test_bad_shapes_and_values_raise(burgers):
    problem = load_problem(burgers)
    model = build_model("logos", problem, OPTIONS["logos"])
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 1, 64\)"):
        model.predict(problem.a[:, :, :32])
    bad = problem.a[:2].clone()
    bad[0, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"outputs must have shape \(2, 64\)"):
        model.loss(problem.a[:2], problem.y[:2, :10], 16)
    y = problem.y[:2].clone()
    y[1, 0] = float("inf")
    with pytest.raises(ValueError, match="outputs have non-finite"):
        model.loss(problem.a[:2], y, 16)
    with pytest.raises(ValueError, match="unknown GPO model"):
        build_model("gpx", problem)
    svgp = build_model("svgp", problem, {"inducing": 200, "input_size": 4})
    with pytest.raises(ValueError, match=r"200 inducing points but only 128 training inputs \(2 functions"):
        svgp.init_inducing(problem.a[:2])
    with pytest.raises(ValueError, match="unknown options"):
        build_model("svgp", problem, {"width": 3})
    with pytest.raises(ValueError, match="neighbours"):
        KNNKernel(np.arange(5.0), 6)
    with pytest.raises(ValueError, match="finite"):
        KNNKernel(np.array([0.0, np.nan]), 1)
    with pytest.raises(ValueError, match="wavelet"):
        WaveletConv(2, 1, wavelet="nope")
    with pytest.raises(ValueError, match="stride"):
        load_problem(burgers, stride=0)
    with pytest.raises(ValueError, match="mean_epochs needs a neural mean"):
        train_gpo(burgers, "unused.pt", model="svgp", mean_epochs=2)
    with pytest.raises(ValueError, match="key 'refresh_every' must be >= 0, got -1"):
        train_gpo(burgers, "unused.pt", refresh_every=-1)
    with pytest.raises(ValueError, match="key 'noise_every' must be >= 1, got 0"):
        train_gpo(burgers, "unused.pt", noise_every=0)
    with pytest.raises(TypeError, match="key 'epochs' must be an integer, got 'many'"):
        train_gpo(burgers, "unused.pt", epochs="many")
    with pytest.raises(TypeError, match="key 'model' must be one of 'logos', 'gpo', 'svgp', got 'gpx'"):
        train_gpo(burgers, "unused.pt", model="gpx")
    with pytest.raises(ValueError, match="calibration holds out .* set n_train"):
        train_gpo(burgers, "unused.pt", calibration=4)
    with pytest.raises(ValueError, match=r"n_train \+ calibration = 20 functions, but the train split .* has 16"):
        train_gpo(burgers, "unused.pt", n_train=12, calibration=8)
    with pytest.raises(ValueError, match="calibrate_variance: no held-out functions"):
        calibrate_variance(model, problem.a[:0], problem.y[:0])


class FixedPredictive(CalibratedVariance):
    """A predictive with a given mean 0 and latent variance per point: the calibration's
    estimator alone, on data whose variance is known exactly."""

    def __init__(self, f_var: torch.Tensor):
        super().__init__()
        self.f_var = f_var
        self.likelihood = gpytorch.likelihoods.GaussianLikelihood()

    def predict(self, a, calibrated=True):
        return self._prediction(torch.zeros(len(a), self.f_var.shape[1]), self.f_var[a[:, 0].long()], calibrated)


def test_calibration_recovers_the_scale_and_noise_of_held_out_data():
    generator = torch.Generator().manual_seed(0)
    f_var = 0.1 + 2 * torch.rand(500, 100, generator=generator)  # v spread over [0.1, 2.1]
    model = FixedPredictive(f_var)
    y = (1.7 * f_var + 0.5).sqrt() * torch.randn(f_var.shape, generator=generator)
    scale, noise = calibrate_variance(model, torch.arange(500.0)[:, None], y)
    assert scale == pytest.approx(1.7, rel=0.05) and noise == pytest.approx(0.5, rel=0.1)  # 50 000 points
    pred = model.predict(torch.arange(3.0)[:, None])
    torch.testing.assert_close(pred.variance, 1.7 * f_var[:3] + 0.5, rtol=0.05, atol=0)
    torch.testing.assert_close(model.predict(torch.arange(3.0)[:, None], calibrated=False).variance,
                               f_var[:3] + model.likelihood.noise)


def test_calibrated_logos_predictions_samples_and_checkpoints(burgers):
    """LoGoS-GPO calibrated on outputs drawn from its own predictive with 1.7 times its latent
    variance plus a noise: the calibrated predictive variance matches the drawn one; samples
    carry the calibrated latent variance; a state dict keeps the calibration."""
    problem = load_problem(burgers)
    torch.manual_seed(3)
    net = build_model("logos", problem, OPTIONS["logos"])
    net.init_inducing(problem.a)
    net.optimal_variational(problem.a, problem.y, noise=True)
    a = problem.a.repeat(40, 1, 1)
    pred = net.predict(a)
    assert torch.isnan(net.latent_scale) and torch.equal(pred.noise, net.likelihood.noise.reshape(()))
    v = pred.f_var
    drawn_variance = 1.7 * v + float(v.mean())
    y = pred.mean + drawn_variance.sqrt() * torch.randn(v.shape)
    scale, noise = calibrate_variance(net, a, y)
    calibrated = net.predict(a)
    torch.testing.assert_close(calibrated.variance, scale * v + noise)
    assert float(calibrated.variance.mean()) == pytest.approx(float(drawn_variance.mean()), rel=0.05)
    draws = net.sample(a[:1], 4000, torch.Generator().manual_seed(0))
    assert float(draws.var(0).mean()) == pytest.approx(scale * float(v[0].mean()), rel=0.1)
    again = build_model("logos", problem, OPTIONS["logos"])
    again.load_state_dict(net.state_dict())
    torch.testing.assert_close(again.predict(a[:3]).variance, calibrated.variance[:3])


def test_periodic_axes_wrap_around_in_every_spatial_kernel(burgers):
    """Burgers lives on the periodic unit interval: the kernels see its points on a circle, so
    the kernel matrices are circulant (translation invariant modulo 1) and stay PD."""
    problem = load_problem(burgers)
    x = problem.points[:, 0]
    assert problem.period(0) == 1.0 and np.allclose(x, np.arange(64) / 64)
    chord = np.linalg.norm(problem.kernel_points[:, None] - problem.kernel_points[None], axis=-1)
    wrapped = np.minimum(np.abs(x[:, None] - x[None]), 1 - np.abs(x[:, None] - x[None]))
    np.testing.assert_allclose(chord, 2 / (2 * np.pi) * np.sin(np.pi * wrapped), rtol=1e-12, atol=1e-15)
    logos = build_model("logos", problem, dict(OPTIONS["logos"], neighbours=5))
    gpo = build_model("gpo", problem, OPTIONS["gpo"])
    for K in (logos.spatial.operator().to_dense().detach(), gpo.spatial_dense().detach()):
        torch.testing.assert_close(K, torch.roll(K, (7, 7), (0, 1)), rtol=0, atol=1e-12)  # circulant
        assert K[0, -1] > 0.5 * K[0, 1]  # x = 0 and x = 63/64 are neighbours
        assert torch.linalg.eigvalsh(K).min() > -1e-12
    # the same models off a periodic axis: the ends are far apart
    flat = build_model("logos", dataclasses.replace(problem, periods=()), dict(OPTIONS["logos"], neighbours=5))
    assert flat.spatial.operator().to_dense()[0, -1] == 0


@pytest.mark.slow
def test_gpo_surrogate_demo(repo, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(repo / "demos" / "gpo_surrogate.py"), "--samples", "60", "--points",
                          "128", "--mean-epochs", "1", "--epochs", "2", "--width", "8", "--out-dir", str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    assert "LoGoS-GPO on burgers: 40 test functions" in out and "95 % band coverage" in out
    assert (tmp_path / "gpo_surrogate_burgers.png").stat().st_size > 10_000


def test_cli_train_gpo(burgers, tmp_path, capsys):
    from fem_ms.cli import main

    config = tmp_path / "gpo.toml"
    config.write_text(f'dataset = "{burgers}"\nout = "{tmp_path / "m.pt"}"\nmodel = "logos"\nepochs = 1\n'
                      'batch_size = 8\nprogress = false\n[options]\nwidth = 8\ndepth = 2\nwavelet_levels = 2\n'
                      'inducing = 8\n')
    assert main(["train-gpo", str(config)]) == 0
    assert load_gpo(tmp_path / "m.pt")[2]["done"] == 1
    assert main(["train-gpo", str(config), "--device", "tpu"]) == 2
    assert "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in capsys.readouterr().err
    config.write_text(config.read_text().replace("model =", "modle ="))
    assert main(["train-gpo", str(config)]) == 2
    assert "unknown key 'modle' (did you mean 'model'?)" in capsys.readouterr().err


def test_train_gpo_from_config_names_bad_keys(burgers, tmp_path):
    from fem_ms_torch.gpo import train_gpo_from_config

    config = tmp_path / "gpo.toml"
    body = (f'kind = "train_gpo"\ndataset = "{burgers}"\nout = "{tmp_path / "m.pt"}"\nmodel = "svgp"\nepochs = 1\n'
            'batch_size = 8\nprogress = false\n[options]\ninducing = 8\ninput_size = 4\n')
    config.write_text(body)
    assert train_gpo_from_config(config) == tmp_path / "m.pt" and load_gpo(tmp_path / "m.pt")[2]["done"] == 1
    for bad, error, message in (("modle =", ValueError, r"unknown key 'modle' \(did you mean 'model'\?\)"),
                                ("epochs = 1", TypeError, "key 'epochs' must be an integer, got 'high'"),
                                ('kind = "train_gpo"', ValueError, "kind must be 'train_gpo'")):
        replacement = {"modle =": None, "epochs = 1": 'epochs = "high"', 'kind = "train_gpo"': 'kind = "burgers"'}
        text = body.replace("model =", "modle =") if bad == "modle =" else body.replace(bad, replacement[bad])
        config.write_text(text)
        with pytest.raises(error, match=f"{config}: train-gpo config: {message}"):
            train_gpo_from_config(config)
