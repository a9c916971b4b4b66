"""The vectorised offline paths (patch gathers, R from its cached pattern, Rᵀ on one rank, the
batched independence check) against the per-neighbourhood computations they replace."""

import numpy as np
import pytest
import scipy.sparse as sp

import firedrake as fd

from fem_ms import structured_hierarchy
from fem_ms.gmsfem import DegenerateSpaceError, LocalBases, MultiscaleSpace
from fem_ms.gmsfem.space import _check_independent, _restriction_pattern


@pytest.fixture(scope="module")
def space():
    pair = structured_hierarchy(3, 12, dim=2, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    x, y = fd.SpatialCoordinate(pair.fine)
    bump = 1 + 50 * fd.exp(-20 * ((x - 0.4)**2 + (y - 0.6)**2))
    kappa = fd.Function(fd.FunctionSpace(pair.fine, "DG", 0)).interpolate(bump)
    return MultiscaleSpace(pair, V, kappa, n_basis=3)


def _csr(mat):
    indptr, indices, data = mat.getValuesCSR()
    return sp.csr_matrix((data, indices, indptr), shape=mat.getSize())


def _reference_restriction(space):
    """R by the per-neighbourhood loop the cached pattern replaced."""
    rows, cols, vals = [], [], []
    for i in space.owned:
        nbh = space.neighbourhoods[i]
        free = ~space.geometry.dirichlet[nbh.dofs]
        for j in range(space.n_basis):
            rows.append(np.full(free.sum(), i * space.n_basis + j))
            cols.append(nbh.dofs[free])
            vals.append(nbh.chi[free] * np.asarray(space.bases.vectors[i])[free, j])
    shape = (space.dimension, space.V.dim())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)


def test_patch_gathers_equal_the_per_neighbourhood_ones(space):
    patches = space.patches
    for kind in ("full", "half", "corner"):
        indices = [n.index for n in space.neighbourhoods if n.kind == kind]
        stacked = patches.kappa_patches(indices)
        assert np.array_equal(stacked, np.stack([patches.kappa_patch(i) for i in indices]))
        to_dofs = patches.grid_to_dofs(indices)
        grids = np.random.default_rng(0).standard_normal((len(indices), 2, *(n + 1 for n in stacked.shape[1:])))
        gathered = np.take_along_axis(grids.reshape(len(indices), 2, -1), to_dofs[:, None], 2)
        for k, i in enumerate(indices):
            assert np.array_equal(gathered[k], grids[k][(slice(None),) + patches.grid_positions(i)])


def test_patch_gathers_refuse_mixed_kinds(space):
    mixed = [space.neighbourhoods[0].index, next(n.index for n in space.neighbourhoods if n.kind == "full")]
    with pytest.raises(ValueError, match="different shapes"):
        space.patches.kappa_patches(mixed)


def test_restriction_and_its_transpose_equal_the_loop(space):
    reference = _reference_restriction(space)
    R, P = _csr(space.R), _csr(space._P)
    assert abs(R - reference).max() == 0.0
    assert abs(P - reference.T).max() == 0.0


def test_batched_independence_check_flags_a_dependent_neighbourhood(space):
    vectors = {i: np.array(v) for i, v in space.bases.vectors.items()}
    bad = space.owned[4]
    vectors[bad][:, 2] = 2.0 * vectors[bad][:, 1]
    bases = LocalBases(vectors)
    pattern = _restriction_pattern(space.layout, space.owned, space.n_basis)
    with pytest.raises(DegenerateSpaceError, match=f"neighbourhood {bad} .*span 2 dimensions"):
        _check_independent(pattern.values(bases), pattern, bases, space.neighbourhoods, space.geometry, "test")
    # the untouched bases pass
    _check_independent(pattern.values(space.bases), pattern, space.bases, space.neighbourhoods, space.geometry, "x")


def test_entry_points_are_read_once_and_again_on_request(monkeypatch):
    from fem_ms import plugins

    group = plugins.BASIS_PROVIDERS
    first = plugins.registered(group)
    reads = []
    real = plugins.entry_points
    monkeypatch.setattr(plugins, "entry_points", lambda **kw: reads.append(kw) or real(**kw))
    assert [ep.name for ep in plugins.registered(group)] == [ep.name for ep in first] and not reads
    assert [ep.name for ep in plugins.registered(group, refresh=True)] == [ep.name for ep in first]
    assert reads == [{"group": group}]
    from fem_ms.gmsfem.providers import get_provider

    with pytest.raises(ValueError, match="unknown basis provider 'no-such'"):
        get_provider("no-such")
    assert len(reads) == 2  # an unknown name reads the metadata again before it is refused
