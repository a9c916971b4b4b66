"""Local neural operator layers: the differential layer converges to the derivative it encodes at
first order, the DISCO layer reproduces convolutions with known kernels within quadrature error
(against closed forms / an independent Hankel-transform quadrature) and is resolution-consistent,
the point-set DISCO equals the grid DISCO, and the LocalNO models train and round-trip."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

from fem_ms_torch.operators import (
    FFNO,
    FNO,
    DifferentialConv,
    DiscoConv,
    DiscoFilterBasis,
    LocalFFNO,
    LocalNO,
    SparseDiscoConv,
)
from fem_ms_torch.operators.mesh_quadrature import lumped_vertex_weights, triangles_from_edges
from fem_ms_torch.registry import build_model, model_from_record, model_record, plain_state_dict


def periodic_grid(n: int, dim: int) -> torch.Tensor:
    axes = [torch.arange(n, dtype=torch.float64) / n] * dim
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (dim, n, ..., n)


def vertex_grid(n: int, dim: int) -> torch.Tensor:
    axes = [torch.linspace(0.0, 1.0, n, dtype=torch.float64)] * dim
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


@pytest.mark.parametrize("dim, sizes", [(1, (64, 128, 256)), (2, (32, 64, 128)), (3, (16, 32, 64))])
def test_differential_layer_converges_at_first_order(dim, sizes):
    """h_ref (w ⋆ u − Σw u)/h → h_ref (Σ_j w_j z_j)·∇u with error O(h), for a random
    (non-symmetric) stencil."""
    torch.manual_seed(dim)
    layer = DifferentialConv(1, 1, dim, periodic=True).double()
    with torch.no_grad():
        layer.weight.normal_()  # the layer starts at zero (a no-op branch)
    w = layer.weight.detach()[0, 0]
    offsets = torch.stack(torch.meshgrid(*[torch.arange(-1.0, 2.0, dtype=torch.float64)] * dim, indexing="ij"))
    a = layer.reference_spacing * (w[None] * offsets).flatten(1).sum(dim=1)  # h_ref Σ_j w_j z_j
    errors = []
    for n in sizes:
        x = periodic_grid(n, dim)
        phase = 2 * math.pi * x + torch.arange(dim, dtype=torch.float64).reshape(-1, *[1] * dim)
        u = torch.sin(phase).prod(dim=0)
        grad = torch.stack([2 * math.pi * torch.cos(phase[d]) * torch.sin(torch.cat([phase[:d], phase[d + 1:]])).prod(0)
                            for d in range(dim)])
        exact = (a.reshape(-1, *[1] * dim) * grad).sum(dim=0)
        with torch.no_grad():
            out = layer(u[None, None])[0, 0]
        errors.append(float((out - exact).abs().max() / exact.abs().max()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 0.85) & (orders < 1.3)), (errors, orders)


def test_differential_layer_kills_constants_and_scales_with_resolution():
    """Constants map to zero; the same weights give the same derivative at h and h/2 (up to O(h))."""
    torch.manual_seed(0)
    layer = DifferentialConv(2, 3, 2)
    with torch.no_grad():
        layer.weight.normal_()
    assert layer(torch.ones(1, 2, 9, 9)).abs().max() < 1e-5
    coarse, fine = vertex_grid(33, 2), vertex_grid(65, 2)
    with torch.no_grad():
        out_c = layer((coarse[0] ** 2 + coarse[1])[None].expand(2, -1, -1)[None].float())
        out_f = layer((fine[0] ** 2 + fine[1])[None].expand(2, -1, -1)[None].float())
    interior = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    diff = (out_f[..., ::2, ::2] - out_c)[interior].abs().max() / out_c[interior].abs().max()
    assert diff < 0.05


def _hankel_response(kernel, radius: float, k: float) -> float:
    """∫_{|z|<R} κ(|z|) cos(2π k·z) dz = 2π ∫_0^R κ(r) J0(2π|k| r) r dr (independent quadrature)."""
    value, _ = integrate.quad(lambda r: kernel(r) * special.j0(2 * math.pi * k * r) * r, 0.0, radius,
                              limit=200, points=np.linspace(0, radius, 7)[1:-1])
    return 2 * math.pi * value


def test_disco_reproduces_truncated_gaussian_convolution():
    """Weights set to the Gaussian's values at the radial collocation points: the layer is the
    convolution with the Gaussian's piecewise-linear interpolant on the disk; on cos(2π k·x) it
    must give Ĝ(k) cos(2π k·x), with an O(h²) quadrature error."""
    radius, sigma, k = 0.2, 0.07, (2.0, 1.0)
    layer = DiscoConv(1, 1, 2, radius, basis="piecewise_linear", kernel_shape=[5], periodic=True).double()
    nodes = np.array([0.0, radius / 3, 2 * radius / 3, radius])  # torch-harmonics: dr = 2R/(nr+1)
    gauss = np.exp(-nodes ** 2 / (2 * sigma ** 2))
    gauss[-1] = 0.0  # the outermost hat vanishes at R: the Gaussian truncated to the support
    with torch.no_grad():
        layer.weight[0, 0] = torch.from_numpy(gauss[:3]) * layer.basis.integrals / layer.weight_scale
    response = _hankel_response(lambda r: np.interp(r, nodes, gauss), radius, math.hypot(*k))
    errors = []
    for n in (32, 64, 128):
        x = periodic_grid(n, 2)
        f = torch.cos(2 * math.pi * (k[0] * x[0] + k[1] * x[1]))
        with torch.no_grad():
            out = layer(f[None, None])[0, 0]
        errors.append(float((out - response * f).abs().max()) / abs(response))
    assert errors[-1] < 2e-3, errors
    assert errors[0] / errors[-1] > 8, errors  # two halvings of h: 16 for O(h²)


@pytest.mark.parametrize("dim, k", [(1, (3.0,)), (3, (1.0, 2.0, 1.0))])
def test_disco_tensor_hat_matches_closed_form(dim, k):
    """One tensor hat normalized to unit mass: its Fourier transform is Π_d sinc²(R k_d). (R on
    the grids, so that the kinks sit on grid points and the O(h²) rate shows cleanly.)"""
    radius = 0.25
    layer = DiscoConv(1, 1, dim, radius, basis="tensor_hat", kernel_shape=1, periodic=True).double()
    with torch.no_grad():
        layer.weight.fill_(1.0 / layer.weight_scale)  # unit coefficient
    exact = float(np.prod(np.sinc(radius * np.array(k)) ** 2))
    errors = []
    for n in ((64, 128, 256) if dim == 1 else (16, 32)):
        x = periodic_grid(n, dim)
        f = torch.cos(2 * math.pi * sum(kd * x[d] for d, kd in enumerate(k)))
        with torch.no_grad():
            out = layer(f[None, None])[0, 0]
        errors.append(float((out - exact * f).abs().max()) / exact)
    assert errors[-1] < (1e-3 if dim == 1 else 2e-2), errors
    assert all(e1 / e2 > 3 for e1, e2 in zip(errors, errors[1:])), errors


def test_disco_output_changes_by_discretization_error_between_resolutions():
    """Same weights on nested vertex grids of [0, 1]² (zero extension, trapezoid rule): the outputs
    at the common points differ by O(h²)."""
    torch.manual_seed(1)
    layer = DiscoConv(2, 3, 2, radius=0.15).double()
    outputs = []
    for n in (17, 33, 65, 129):
        x = vertex_grid(n, 2)
        u = torch.stack([torch.sin(3 * x[0]) * torch.exp(x[1]), torch.cos(2 * x[0] * x[1])])
        with torch.no_grad():
            out = layer(u[None])[0]
        outputs.append(out[:, ::(n - 1) // 16, ::(n - 1) // 16])
    diffs = [float((b - a).abs().max() / a.abs().max()) for a, b in zip(outputs, outputs[1:])]
    assert diffs[-1] < 5e-3, diffs
    assert diffs[0] / diffs[-1] > 10, diffs  # O(h²): 16 over two halvings


@pytest.mark.parametrize("dim, shape, periodic, radius", [
    (1, (37,), False, 0.2), (2, (41, 30), False, 0.2), (2, (24, 24), True, 0.2), (3, (9, 12, 10), False, 0.2),
    (3, (8, 8, 8), True, 0.3), (2, (5, 24), True, 0.6)])
def test_disco_fft_equals_direct_convolution(dim, shape, periodic, radius):
    """The FFT path is the direct convolution with the sampled stencil (zero extension and
    trapezoid end weights, or circular), to rounding; also for periodic stencils wider than the
    grid (radius 0.6: 7 and 29 taps on 5 and 24 points), whose taps alias onto one another."""
    torch.manual_seed(dim)
    layer = DiscoConv(3, 4, dim, radius=radius, periodic=periodic).double()
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    psi = layer.stencil(shape, torch.float64)
    kernel = torch.einsum("oik,k...->oi...", layer.coefficients.detach(), psi)
    half = [(s - 1) // 2 for s in psi.shape[1:]]
    conv = getattr(torch.nn.functional, f"conv{dim}d")
    if periodic:
        expected = torch.zeros(2, 4, *shape, dtype=torch.float64)
        for offset in itertools.product(*[range(-s, s + 1) for s in half]):  # Σ_j κ(j) u(x + j), indices mod n
            tap = kernel[(slice(None), slice(None), *[j + s for j, s in zip(offset, half)])]
            shifted = torch.roll(x, [-j for j in offset], list(range(2, 2 + dim)))
            expected += torch.einsum("oi,bi...->bo...", tap, shifted)
    else:
        weighted = x.clone()
        for d, n in enumerate(shape):
            end = torch.ones(n, dtype=torch.float64)
            end[0] = end[-1] = 0.5
            weighted = weighted * end.reshape((-1,) + (1,) * (dim - 1 - d))
        expected = conv(weighted, kernel, padding=half)
    with torch.no_grad():
        got = layer(x)
    assert torch.allclose(got, expected, atol=1e-12 * float(expected.abs().max()))


def test_disco_coefficients_are_scaled_unit_weights():
    """The parameter is N(0, 1); the kernel's coefficients are it / sqrt(in·K), so that a random
    layer keeps the variance of inputs that are smooth on the ball (here constant per channel:
    every normalized ψ_k then returns the input exactly)."""
    torch.manual_seed(0)
    layer = DiscoConv(32, 32, 2, radius=0.1, periodic=True)
    assert torch.equal(layer.coefficients, layer.weight * layer.weight_scale)
    assert layer.weight_scale == pytest.approx(1 / math.sqrt(32 * layer.basis.size))
    assert float(layer.weight.detach().std()) == pytest.approx(1.0, rel=0.05)
    x = torch.randn(16, 32, 1, 1).expand(-1, -1, 24, 24)
    with torch.no_grad():
        ratio = float(layer(x).var() / x.var())
    assert 0.7 < ratio < 1.3, ratio


def test_sparse_disco_equals_grid_disco_on_grid_points():
    """The point-set layer (k-d tree + sparse matrix) with trapezoid weights is the grid layer."""
    n, radius = 21, 0.12
    x = vertex_grid(n, 2).reshape(2, -1).T.numpy()
    w1 = np.full(n, 1.0 / (n - 1))
    w1[[0, -1]] *= 0.5
    grid = DiscoConv(2, 3, 2, radius).double()
    sparse = SparseDiscoConv(2, 3, x, np.outer(w1, w1).ravel(), radius).double()
    sparse.weight = grid.weight
    u = torch.randn(4, 2, n, n, dtype=torch.float64)
    with torch.no_grad():
        expected = grid(u)
        got = sparse(u.reshape(4, 2, -1)).reshape(4, 3, n, n)
    assert torch.allclose(got, expected, atol=1e-6 * float(expected.abs().max()))


def test_sparse_disco_on_scattered_points_approximates_the_integral():
    """Perturbed, non-grid points with their own cell areas still reproduce ∫κ(y−x)u(y)dy."""
    rng = np.random.default_rng(0)
    n, radius = 81, 0.15
    g = np.linspace(0, 1, n)
    h = g[1] - g[0]
    X, Y = np.meshgrid(g, g, indexing="ij")
    jitter = 0.25 * h * rng.uniform(-1, 1, size=(2, n - 2, n - 2))
    X[1:-1, 1:-1] += jitter[0]
    Y[1:-1, 1:-1] += jitter[1]
    # areas of the quadrilateral cells, lumped to their corners (a first-order quadrature)
    area = 0.5 * np.abs((X[1:, 1:] - X[:-1, :-1]) * (Y[:-1, 1:] - Y[1:, :-1])
                        - (X[:-1, 1:] - X[1:, :-1]) * (Y[1:, 1:] - Y[:-1, :-1]))
    q = np.zeros_like(X)
    for di in (0, 1):
        for dj in (0, 1):
            q[di:n - 1 + di, dj:n - 1 + dj] += area / 4
    points = np.stack([X.ravel(), Y.ravel()], 1)
    layer = SparseDiscoConv(1, 1, points, q.ravel(), radius, kernel_shape=[3]).double()
    with torch.no_grad():
        layer.weight.fill_(0.0)
        layer.weight[0, 0, 0] = layer.basis.integrals[0] / layer.weight_scale  # κ = the central radial hat (1 − 2r/R)_+
    k = (1.0, 2.0)
    u = torch.from_numpy(np.cos(2 * math.pi * (k[0] * points[:, 0] + k[1] * points[:, 1])))
    response = _hankel_response(lambda r: max(0.0, 1 - 2 * r / radius), radius, math.hypot(*k))
    inside = np.all((points > radius) & (points < 1 - radius), axis=1)
    with torch.no_grad():
        out = layer(u[None, None])[0, 0].numpy()
    err = np.abs(out - response * u.numpy())[inside].max() / response
    assert err < 0.03, err


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_local_layers_shapes_and_gradients(dim):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *(9,) * dim, requires_grad=True)
    for layer in (DifferentialConv(3, 4, dim), DiscoConv(3, 4, dim, radius=0.3),
                  DiscoConv(3, 4, dim, radius=0.3, periodic=True)):
        with torch.no_grad():
            layer.weight.normal_()
        out = layer(x)
        assert out.shape == (2, 4, *(9,) * dim)
        out.square().sum().backward()
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
        assert x.grad.abs().sum() > 0
        x.grad = None


@pytest.mark.parametrize("cls", [LocalNO, LocalFFNO])
@pytest.mark.parametrize("dim", [2, 3])
def test_local_models_any_resolution_and_all_parameters_learn(cls, dim):
    torch.manual_seed(0)
    model = cls(3, 2, dim=dim, width=8, depth=2, modes=3)
    for n in (9, 17):
        out = model(torch.randn(2, 3, *(n,) * dim))
        assert out.shape == (2, 2, *(n,) * dim)
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    names = {name.split(".")[2] for name, _ in model.named_parameters() if name.startswith("local.")}
    assert names == {"differential", "disco"}


def test_plain_models_unchanged_and_old_checkpoints_load(tmp_path):
    """Without the local branches FNO/F-FNO have exactly their previous parameters, and a record
    written before the branches existed (no local keys in its arguments) still builds."""
    for cls, extra in ((FFNO, {"share_weights": False}), (FNO, {})):
        model = cls(3, 8, dim=2, width=8, depth=2, modes=4)
        assert not any(name.startswith("local") for name in model.state_dict())
        old_arguments = dict(in_channels=3, out_channels=8, dim=2, width=8, depth=2, modes=[4, 4], **extra)
        rebuilt = model_from_record({"name": cls.__name__.lower(), "arguments": old_arguments}, model.state_dict())
        x = torch.randn(1, 3, 11, 11)
        assert torch.equal(rebuilt.eval()(x), model.eval()(x))


@pytest.mark.parametrize("name", ["localno", "localffno"])
def test_local_checkpoint_round_trip(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=3, out_channels=8, dim=2, width=8, depth=2, modes=4).eval()
    saved = tmp_path / "m.pt"
    torch.save({"record": model_record(model), "state_dict": plain_state_dict(model)}, saved)
    entry = torch.load(saved, weights_only=True)
    x = torch.randn(2, 3, 21, 21)
    assert torch.equal(model_from_record(entry["record"], entry["state_dict"]).eval()(x), model(x))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="piecewise_linear"):
        DiscoFilterBasis(3, 0.1, basis="piecewise_linear")
    with pytest.raises(ValueError, match="radius"):
        DiscoConv(1, 1, 2, radius=0.0)
    with pytest.raises(ValueError, match="unknown basis"):
        DiscoFilterBasis(2, 0.1, basis="zernike")
    with pytest.raises(ValueError, match="kernel_size"):
        DifferentialConv(1, 1, 2, kernel_size=4)
    with pytest.raises(ValueError, match="spatial axes"):
        DiscoConv(2, 1, 2, radius=0.1)(torch.randn(1, 2, 8))
    with pytest.raises(ValueError, match="quadrature_weights"):
        SparseDiscoConv(1, 1, np.zeros((5, 2)), np.ones(4), 0.1)


def _holed_square_mesh(n: int):
    """Triangulated [0, 1]² grid (n cells per side) without the cells of the central square."""
    g = np.linspace(0, 1, n + 1)
    X, Y = np.meshgrid(g, g, indexing="ij")
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    hole = range(n // 4, 3 * n // 4)
    tris = []
    for i in range(n):
        for j in range(n):
            if i in hole and j in hole:
                continue
            a, b, c, d = idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]
            tris += [(a, b, c), (a, c, d)]
    return np.stack([X.ravel(), Y.ravel()], 1), np.array(tris)


def test_mesh_faces_and_lumped_weights_from_edges():
    """Faces recovered from the edges of a mesh with a hole (no Delaunay fill-in), a non-face
    3-cycle around a degree-3 vertex rejected, weights summing to the area."""
    points, tris = _holed_square_mesh(8)
    edges = np.unique(np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [0, 2]]]), axis=1), axis=0)
    found = triangles_from_edges(points, edges)
    assert {tuple(sorted(t)) for t in found} == {tuple(sorted(t)) for t in tris}
    weights = lumped_vertex_weights(points, found)
    assert weights.sum() == pytest.approx(1.0 - 0.5 ** 2)
    split = triangles_from_edges([[0, 0], [1, 0], [0, 1], [0.3, 0.3]], [[0, 1], [1, 2], [0, 2], [0, 3], [1, 3], [2, 3]])
    assert sorted(map(tuple, np.sort(split, axis=1))) == [(0, 1, 3), (0, 2, 3), (1, 2, 3)]
    with pytest.raises(ValueError, match="edges"):
        triangles_from_edges(points, np.array([[0, len(points)]]))


def test_sparse_disco_on_a_mesh_with_a_hole():
    """Mesh path end to end: faces from edges, lumped weights, the DISCO integral away from the
    hole and the boundary equals the convolution's closed form."""
    points, tris = _holed_square_mesh(64)
    edges = np.unique(np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [0, 2]]]), axis=1), axis=0)
    used = np.unique(edges)
    weights = lumped_vertex_weights(points, triangles_from_edges(points, edges))[used]
    points = points[used]
    radius, k = 0.1, (2.0, 1.0)
    layer = SparseDiscoConv(1, 1, points, weights, radius, kernel_shape=[3]).double()
    with torch.no_grad():
        layer.weight.fill_(0.0)
        layer.weight[0, 0, 0] = layer.basis.integrals[0] / layer.weight_scale
    u = torch.from_numpy(np.cos(2 * math.pi * (k[0] * points[:, 0] + k[1] * points[:, 1])))
    response = _hankel_response(lambda r: max(0.0, 1 - 2 * r / radius), radius, math.hypot(*k))
    far = np.all((points > radius) & (points < 1 - radius), axis=1) \
        & ~np.all((points > 0.25 - radius) & (points < 0.75 + radius), axis=1)
    with torch.no_grad():
        out = layer(u[None, None])[0, 0].numpy()
    assert np.abs(out - response * u.numpy())[far].max() / response < 0.02
