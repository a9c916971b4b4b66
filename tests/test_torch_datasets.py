"""The fem_ms_torch Datasets read what fem_ms.data writes."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig, generate
from fem_ms_torch.data import GMsFEMBasisDataset, MultilevelDataset


def test_basis_dataset(tmp_path):
    path = generate(GMsFEMBasisConfig(name="b", samples=3, fine=12, coarse=3, n_basis=3), tmp_path, progress=False)
    train = GMsFEMBasisDataset(path, "half", "train")
    assert len(train) == 2 * 8 and len(GMsFEMBasisDataset(path, "half", "test")) == 8
    item = train[9]
    assert item["kappa"].shape == (1, 8, 4) and item["basis"].shape == (3, 9, 5)
    assert item["kappa"].dtype == torch.float32 and torch.all(item["kappa"] >= 1)
    batch = next(iter(DataLoader(train, batch_size=4, num_workers=2)))
    assert batch["basis"].shape == (4, 3, 9, 5)
    whole = train.tensors()
    for i in range(len(train)):  # row i of the in-memory split is item i, across samples too
        for field, value in train[i].items():
            torch.testing.assert_close(whole[field][i], value, rtol=0, atol=0)
    assert len(whole["basis"]) == len(train)
    with pytest.raises(ValueError, match="unknown fields"):
        train.tensors(("u",))
    with pytest.raises(ValueError, match="no patch kind 'quarter'; patch kinds: \\['full', 'half', 'corner'\\]"):
        GMsFEMBasisDataset(path, "quarter")
    with pytest.raises(ValueError, match="not 'multilevel'"):
        MultilevelDataset(path, 8)


def test_multilevel_dataset(tmp_path):
    path = generate(MultilevelConfig(name="m", samples=2, levels=(4, 8), forcing="random",
                                     train_fraction=1.0), tmp_path, progress=False)
    ds = MultilevelDataset(path, 8)
    item = ds[1]
    assert item["kappa"].shape == (1, 8, 8) and item["u"].shape == (1, 9, 9) and item["f"].shape == (1, 9, 9)
    coarse = MultilevelDataset(path, 4)[1]
    np.testing.assert_array_equal(coarse["f"].numpy(), item["f"].numpy()[:, ::2, ::2])
    with pytest.raises(ValueError, match="no level 16"):
        MultilevelDataset(path, 16)


def test_cylinder_graph_dataset(tmp_path):
    from fem_ms.data import CylinderFlowConfig
    from fem_ms_torch.data import CylinderFlowGraphDataset

    cfg = CylinderFlowConfig(name="c", samples=2, meshes=(1,), t_end=0.75, dt=0.25, save_every=1,
                             train_fraction=0.5)
    path = generate(cfg, tmp_path, progress=False)
    ds = CylinderFlowGraphDataset(path, mesh=1)
    assert len(ds) == 1 * 2  # one training trajectory, 3 snapshots → 2 pairs
    item = ds[1]
    n = item["pos"].shape[0]
    assert item["velocity"].shape == item["target"].shape == (n, 2)
    ei = item["edge_index"]
    assert ei.shape[0] == 2 and ei.max() < n
    assert set(map(tuple, ei.T.tolist())) == set(map(tuple, ei.flip(0).T.tolist()))  # undirected
    with pytest.raises(ValueError, match="no mesh 4"):
        CylinderFlowGraphDataset(path, mesh=4)


def test_darcy_notch_dataset(tmp_path):
    from fem_ms.data import DarcyNotchConfig
    from fem_ms_torch.data import DarcyNotchDataset

    path = generate(DarcyNotchConfig(name="d", samples=2, mesh_size=0.1, grid=9, train_fraction=1.0),
                    tmp_path, progress=False)
    item = DarcyNotchDataset(path)[0]
    assert item["pressure_grid"].shape == item["mask"].shape == (1, 9, 9)
    assert torch.all(item["pressure_grid"][item["mask"] == 0] == 0)
