import numpy as np
import pytest

import firedrake as fd

from fem_ms.coefficients import (
    GaussianRandomForcing,
    KLExpansion,
    cell_field,
    gaussian_to_kappa,
    paper_kle,
    vertex_field,
)


def test_kle_eigenvalues_match_dense_nystrom():
    """The tensor-product KL eigenvalues equal those of the dense covariance operator."""
    n, l = (12, 9), (0.15, 0.4)
    kle = KLExpansion(n, l, variance=2.0, energy=1.0)
    xs = np.stack(np.meshgrid(*[(np.arange(m) + 0.5) / m for m in n], indexing="ij"), -1).reshape(-1, 2)
    d2 = sum(((xs[:, None, d] - xs[None, :, d]) / l[d]) ** 2 for d in range(2))
    dense = np.linalg.eigvalsh(2.0 * np.exp(-d2) / np.prod(n))[::-1]
    m = kle.n_modes
    np.testing.assert_allclose(kle.eigenvalues, dense[:m], rtol=1e-8, atol=1e-12)


def test_kle_modes_orthonormal_and_energy():
    kle = KLExpansion((20, 16), (0.05, 0.3), variance=2.0, energy=0.9)
    phi = kle.modes().reshape(kle.n_modes, -1)
    gram = phi @ phi.T / phi.shape[1]  # L2 inner products by the midpoint rule
    np.testing.assert_allclose(gram, np.eye(kle.n_modes), atol=1e-10)
    assert kle.energy_captured >= 0.9
    # minimal: one mode fewer would miss the target
    assert (kle.eigenvalues[:-1].sum() / 2.0) < 0.9
    # exact identity: the grid-average of the truncated variance is Σλ (= σ² · captured energy)
    var = np.mean([kle.covariance(i, i) for i in np.ndindex(*kle.cells_per_side)])
    assert var == pytest.approx(2.0 * kle.energy_captured, rel=1e-10)


def test_kle_empirical_covariance_matches_within_sampling_error():
    kle = KLExpansion((16, 16), (0.1, 0.3), variance=2.0, energy=0.999)
    n = 3000
    Y = np.stack([kle.sample_gaussian(s) for s in range(n)]).reshape(n, -1)
    pairs = [((3, 4), (3, 4)), ((3, 4), (5, 4)), ((0, 0), (2, 6)), ((8, 8), (12, 9)), ((15, 0), (0, 15))]
    for i, j in pairs:
        a, b = np.ravel_multi_index(i, (16, 16)), np.ravel_multi_index(j, (16, 16))
        emp = np.mean(Y[:, a] * Y[:, b])  # zero-mean field
        exact = kle.exact_covariance(i, j)
        # standard error of a sample covariance of Gaussians: sqrt((C_ii C_jj + C_ij²)/n)
        se = np.sqrt((kle.exact_covariance(i, i) * kle.exact_covariance(j, j) + exact**2) / n)
        assert abs(emp - exact) < 4.5 * se + 2e-3, (i, j, emp, exact, se)
    assert abs(Y.mean()) < 0.05


def test_kle_reproducible_and_seed_dependent():
    kle = paper_kle((40, 40))
    np.testing.assert_array_equal(kle.sample_kappa(7), kle.sample_kappa(7))
    assert not np.allclose(kle.sample_kappa(7), kle.sample_kappa(8))


def test_kappa_contrast_and_scale():
    kle = paper_kle((30, 30))
    k = kle.sample_kappa(0, contrast=9600.0)
    assert k.min() == pytest.approx(1.0) and k.max() == pytest.approx(9600.0)
    Y = kle.sample_gaussian(0)
    np.testing.assert_allclose(kle.sample_kappa(0, contrast=None, scale=1.5), np.exp(1.5 * Y))
    with pytest.raises(ValueError, match="exactly one"):
        gaussian_to_kappa(Y, contrast=10.0, scale=1.0)
    with pytest.raises(ValueError, match="contrast"):
        gaussian_to_kappa(Y, contrast=0.5)


def test_kle_3d_paper_parameters():
    kle = paper_kle((10, 10, 10), energy=0.9)
    Y = kle.sample_gaussian(1)
    assert Y.shape == (10, 10, 10) and np.isfinite(Y).all()
    assert kle.energy_captured >= 0.9


@pytest.mark.parametrize("bad, match", [
    (dict(cells_per_side=(10, 0), correlation_lengths=(0.1, 0.1)), "cells_per_side must be a positive integer"),
    (dict(cells_per_side=(10, 10), correlation_lengths=(0.1,)), "correlation_lengths: 1 lengths for a 2D grid"),
    (dict(cells_per_side=(10, 10), correlation_lengths=(0.1, -1)), "positive"),
    (dict(cells_per_side=(10, 10), correlation_lengths=(0.1, 0.1), energy=1.5), "energy"),
    (dict(cells_per_side=(10, 10), correlation_lengths=(0.1, 0.1), variance=0), "variance"),
])
def test_kle_bad_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        KLExpansion(**bad)


def test_kle_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        paper_kle((10, 10)).sample_gaussian(-1)


def test_forcing_variance_and_reproducibility():
    g = GaussianRandomForcing((16, 16), gamma=3.0, alpha=1.0, beta=1.5)
    F = np.stack([g.sample(s) for s in range(2000)])
    assert F.shape[1:] == (17, 17)
    for idx in [(0, 0), (5, 9), (16, 3)]:
        var = g.pointwise_variance(idx)
        emp = F[(slice(None),) + idx].var()
        # relative standard error of a Gaussian sample variance: sqrt(2/n)
        assert abs(emp / var - 1) < 4.5 * np.sqrt(2 / 2000)
    np.testing.assert_array_equal(g.sample(3), g.sample(3))


def test_fields_on_meshes_match_grid_values():
    n = 8
    values = np.arange(n * n, dtype=float).reshape(n, n) + 1.0
    for quad in (True, False):
        mesh = fd.UnitSquareMesh(n, n, quadrilateral=quad)
        k = cell_field(mesh, values)
        # ∫ κ = mean of the grid values (each grid cell has area 1/n²)
        assert fd.assemble(k * fd.dx) == pytest.approx(values.mean())
        x, y = fd.SpatialCoordinate(mesh)
        # the value at cell (i, j) is values[i, j] with i along x: check a weighted moment too
        xi = (np.arange(n) + 0.5) / n
        assert fd.assemble(k * x * fd.dx) == pytest.approx(np.mean(values * xi[:, None]))
        V = fd.FunctionSpace(mesh, "CG", 1)
        vx = np.add.outer(np.arange(n + 1) / n, 2 * np.arange(n + 1) / n)  # x + 2y on vertices
        f = vertex_field(V, vx)
        assert fd.errornorm(x + 2 * y, f) < 1e-12
        with pytest.raises(ValueError, match="do not match"):
            cell_field(mesh, values[:4, :4])
        with pytest.raises(ValueError, match="do not match"):
            vertex_field(V, vx[:5, :5])


def test_block_geometric_mean():
    from fem_ms.coefficients import block_geometric_mean

    values = np.random.default_rng(0).uniform(1, 100, size=(4, 6, 2))
    coarse = block_geometric_mean(values, 2)
    assert coarse.shape == (2, 3, 1)
    for i, j in np.ndindex(2, 3):
        block = values[2 * i:2 * i + 2, 2 * j:2 * j + 2, :]
        assert coarse[i, j, 0] == pytest.approx(np.prod(block) ** (1 / block.size))
    with pytest.raises(ValueError, match="not divisible"):
        block_geometric_mean(values, 4)


@pytest.mark.parametrize("name", sorted(__import__("fem_ms.field_families", fromlist=["FAMILIES"]).FAMILIES))
@pytest.mark.parametrize("cells", [(40, 40), (12, 12, 12)], ids=["2D", "3D"])
def test_field_families_are_seeded_and_in_range(name, cells):
    from fem_ms.field_families import family

    f = family(name)
    a, b, c = f.sample(cells, 3), f.sample(cells, 3), f.sample(cells, 4)
    assert a.shape == cells and np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 1.0 - 1e-12 and a.max() <= 1e6 * (1 + 1e-12)
    if name in ("inclusions", "channels"):
        assert set(np.unique(a)) == {1.0, 9600.0}
    assert f.in_distribution == (name == "kle")


def test_unknown_field_family_lists_them():
    from fem_ms.field_families import family

    with pytest.raises(ValueError, match="unknown field family 'waves'.*inclusions"):
        family("waves")
