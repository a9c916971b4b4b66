"""MP-PDE graph network and the P1 transfer between unrelated triangle meshes."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from fem_ms_torch.graph import MPPDE, p1_interpolation
from fem_ms_torch.mlmc import GraphLevel


def _square_mesh(n, jitter=0.0, seed=0):
    """A triangulated unit square with n cells per side (interior vertices optionally jittered)."""
    x = np.linspace(0, 1, n + 1)
    points = np.array([(a, b) for b in x for a in x])
    if jitter:
        inner = (points > 0).all(1) & (points < 1).all(1)
        points[inner] += np.random.default_rng(seed).uniform(-jitter, jitter, (inner.sum(), 2)) / n
    cells = []
    for j in range(n):
        for i in range(n):
            v = j * (n + 1) + i
            cells += [(v, v + 1, v + n + 2), (v, v + n + 2, v + n + 1)]
    return points, np.array(cells)


def _edges(cells):
    e = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [0, 2]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    return torch.as_tensor(np.concatenate([e, e[:, ::-1]]).T.copy(), dtype=torch.long)


def test_p1_transfer_is_exact_for_linear_fields_and_converges_at_second_order():
    source, cells = _square_mesh(7, jitter=0.3)
    target, _ = _square_mesh(11, jitter=0.3, seed=1)
    matrix = p1_interpolation(source, cells, target)
    np.testing.assert_allclose(matrix.sum(axis=1).A1, 1.0, atol=1e-12)
    def linear(p):
        return 2.0 - 3.0 * p[:, 0] + 0.5 * p[:, 1]

    np.testing.assert_allclose(matrix @ linear(source), linear(target), atol=1e-12)
    # a smooth field: the interpolation error falls like h² (rate ≈ 2 on halving h)
    def smooth(p):
        return np.sin(3 * p[:, 0]) * np.cos(2 * p[:, 1])

    errors = []
    for n in (8, 16, 32):
        src, c = _square_mesh(n, jitter=0.2)
        errors.append(np.abs(p1_interpolation(src, c, target) @ smooth(src) - smooth(target)).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 1.7), rates
    # a point outside the source mesh takes its nearest vertex's value
    outside = p1_interpolation(source, cells, np.array([[1.2, 0.5]]))
    assert outside.nnz == 1 and outside[0].toarray().max() == 1.0
    with pytest.raises(ValueError, match="cells must be"):
        p1_interpolation(source, cells + 100, target)


def _graph_level(n, samples, seed):
    points, cells = _square_mesh(n, jitter=0.2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, len(points), 2, generator=g)
    return GraphLevel(torch.as_tensor(points, dtype=torch.float32), _edges(cells), x, torch.zeros_like(x))


def test_mppde_batch_is_the_disjoint_union_of_its_graphs():
    torch.manual_seed(0)
    model = MPPDE(channels=2, history=1, bundle=2, hidden=16, steps=3).eval()
    level = _graph_level(5, 3, seed=0)
    args, _ = level.batch(torch.tensor([2, 0, 1]), "cpu")
    out = model(*args)
    assert out.shape == (3 * 36, 4)
    for k, j in enumerate([2, 0, 1]):
        single, _ = level.batch(torch.tensor([j]), "cpu")
        torch.testing.assert_close(out[k * 36:(k + 1) * 36], model(*single), rtol=1e-5, atol=1e-5)


def test_mppde_on_a_pyg_batch_of_different_meshes_equals_each_graph_alone():
    """Graphs of different sizes in one torch_geometric batch (PyG's DataLoader): node offsets in
    edge_index and the per-graph instance norm keep the graphs apart."""
    torch.manual_seed(3)
    model = MPPDE(channels=2, hidden=16, steps=3).eval()
    graphs = [_graph_level(n, 1, seed=n).graph(0) for n in (3, 6, 4)]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    assert isinstance(batch, Batch) and batch.num_graphs == 3
    out = model(batch.x, batch.pos, batch.edge_index, batch.batch)
    for k, graph in enumerate(graphs):
        alone = model(graph.x, graph.pos, graph.edge_index, torch.zeros(graph.num_nodes, dtype=torch.long))
        torch.testing.assert_close(out[batch.ptr[k]:batch.ptr[k + 1]], alone, rtol=1e-5, atol=1e-5)
    # the per-graph norm, against its formula graph by graph: (h − mean) / √(var + 1e-5), the
    # mean and the biased variance of each hidden channel over the graph's nodes
    layer = model.layers[0]
    h = model.encoder(torch.cat([batch.x, batch.pos], dim=-1))
    pre = h + layer.propagate(batch.edge_index, h=h, u=batch.x, pos=batch.pos)
    normalised = layer(h, batch.x, batch.pos, batch.edge_index, batch.batch)
    for k in range(3):
        block = pre[batch.ptr[k]:batch.ptr[k + 1]]
        expected = (block - block.mean(0)) / torch.sqrt(block.var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(normalised[batch.ptr[k]:batch.ptr[k + 1]], expected, rtol=1e-4, atol=1e-5)


def test_mppde_is_equivariant_to_node_relabelling_and_runs_on_any_mesh():
    torch.manual_seed(1)
    model = MPPDE(channels=2, hidden=16, steps=2).eval()
    level = _graph_level(4, 1, seed=2)
    (x, pos, edges, graph), _ = level.batch(torch.tensor([0]), "cpu")
    perm = torch.randperm(len(x))
    inverse = torch.argsort(perm)
    permuted = model(x[perm], pos[perm], inverse[edges], graph)
    torch.testing.assert_close(permuted, model(x, pos, edges, graph)[perm], rtol=1e-5, atol=1e-5)
    other = _graph_level(9, 1, seed=3)                 # another resolution, the same weights
    args, _ = other.batch(torch.tensor([0]), "cpu")
    assert model(*args).shape == (100, 2)
    with pytest.raises(ValueError, match="expected x"):
        model(x[:, :1], pos, edges, graph)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        MPPDE(hidden=0)
