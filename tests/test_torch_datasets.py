"""The fem_ms_torch Datasets read what fem_ms.data writes."""

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.loader import DataLoader as GraphLoader

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
    n = item.num_nodes
    assert item.pos.shape == item.x.shape == item.y.shape == (n, 2) and item.pressure.shape == (n,)
    with h5py.File(path) as fh:  # x the snapshot t, y the next (trajectory 1 is the training one)
        t = int(fh["splits/train"][0])
        np.testing.assert_allclose(item.x.numpy(), fh["mesh_1/velocity"][t, 1], rtol=1e-6)
        np.testing.assert_allclose(item.y.numpy(), fh["mesh_1/velocity"][t, 2], rtol=1e-6)
    ei = item.edge_index
    assert ei.shape[0] == 2 and ei.max() < n
    assert set(map(tuple, ei.T.tolist())) == set(map(tuple, ei.flip(0).T.tolist()))  # undirected
    batch = next(iter(GraphLoader(ds, batch_size=2)))  # PyG's loader: the disjoint union
    assert batch.num_graphs == 2 and batch.x.shape == (2 * n, 2)
    torch.testing.assert_close(batch.edge_index[:, ei.shape[1]:], ei + n)
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


def test_every_reader_serves_the_validation_split(tmp_path):
    from fem_ms_torch.gpo import load_problem
    from fem_ms_torch.mlmc import darcy_levels

    config = MultilevelConfig(name="m", samples=5, levels=(4, 8), train_fraction=0.6, validation_fraction=0.2)
    path = generate(config, tmp_path, progress=False)
    assert [len(MultilevelDataset(path, 8, split)) for split in ("train", "validation", "test")] == [3, 1, 1]
    train, stats = darcy_levels(path, [4, 8], "train")
    validation, _ = darcy_levels(path, [4, 8], "validation", stats)
    assert [len(level) for level in validation] == [1, 1] and len(train[1]) == 3
    item = MultilevelDataset(path, 8, "validation")[0]
    torch.testing.assert_close(validation[1].targets[0], item["u"] / stats.output_scale, rtol=1e-6, atol=0)
    train = load_problem(path, resolution=8)
    problem = load_problem(path, "validation", resolution=8, normalisation=train.normalisation)
    assert problem.a.shape[0] == 1
    with pytest.raises(ValueError, match="has no split 'dev'"):
        MultilevelDataset(path, 8, "dev")


def test_float32_files_give_the_same_float32_items(tmp_path):
    config = MultilevelConfig(name="m", samples=2, levels=(4, 8), forcing="random")
    double = generate(config, tmp_path / "double", progress=False)
    single = generate(MultilevelConfig(**{**vars(config), "storage_dtype": "float32"}), tmp_path / "single",
                      progress=False)
    for split in ("train", "test"):
        a, b = MultilevelDataset(double, 8, split), MultilevelDataset(single, 8, split)
        for i in range(len(a)):
            for field, value in a[i].items():
                torch.testing.assert_close(b[i][field], value, rtol=0, atol=0)


def test_a_damaged_file_is_reported_by_the_torch_dataset(tmp_path):
    import h5py

    from fem_ms.data import CorruptDatasetError

    path = generate(GMsFEMBasisConfig(name="b", samples=2, fine=12, coarse=3, n_basis=3, train_fraction=1.0),
                    tmp_path, progress=False)
    with h5py.File(path, "r") as fh:
        info = fh["full/kappa"].id.get_chunk_info(1)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + 8)
        fh.write(b"\0\1\2\3")
    ds = GMsFEMBasisDataset(path, "full")
    ds[0]
    with pytest.raises(CorruptDatasetError, match="b.h5: dataset 'full/kappa' cannot be read"):
        next(iter(DataLoader(ds, batch_size=len(ds), num_workers=1)))


def test_items_as_x_y_dicts_train_with_neuraloperator_and_the_stored_normaliser(tmp_path):
    """``dataset.xy()`` gives neuraloperator's ``{"x", "y"}`` items; the normaliser stored with a
    model becomes neuraloperator's DefaultDataProcessor, which its Trainer applies."""
    from neuralop import LpLoss, Trainer
    from neuralop.models import FNO

    from fem_ms.data import BurgersConfig
    from fem_ms_torch.checkpoints import Checkpoint, model_entry
    from fem_ms_torch.data import BurgersDataset
    from fem_ms_torch.normalisation import Normaliser
    from fem_ms_torch.processing import data_processor, load_data_processor

    path = generate(BurgersConfig(name="b", samples=6, points=32, train_fraction=0.5, validation_fraction=0.0),
                    tmp_path, progress=False)
    dataset = BurgersDataset(path)
    xy = dataset.xy()
    assert len(xy) == len(dataset) == 3
    for i in range(len(xy)):
        torch.testing.assert_close(xy[i]["x"], dataset[i]["u0"], rtol=0, atol=0)
        torch.testing.assert_close(xy[i]["y"], dataset[i]["u"], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"no field 'kappa' \(for 'x'\); fields: \['u', 'u0'\]"):
        dataset.xy("kappa")

    whole = next(iter(DataLoader(xy, batch_size=len(xy))))
    normaliser = Normaliser.fit(whole["x"], whole["y"])
    torch.manual_seed(0)
    model = FNO(n_modes=(4,), in_channels=1, out_channels=1, hidden_channels=4, n_layers=1)
    checkpoint = Checkpoint(tmp_path / "model.pt", "standalone", {"a": 1})
    checkpoint.update("model", model_entry(model, normaliser))
    processor = load_data_processor(tmp_path / "model.pt")

    batch = {key: value.clone() for key, value in whole.items()}
    processor.train()
    pre = processor.preprocess(batch)  # training: inputs and targets standardised
    torch.testing.assert_close(pre["x"], normaliser.normalise_inputs(whole["x"]))
    torch.testing.assert_close(pre["y"], normaliser.normalise_outputs(whole["y"]))
    processor.eval()
    out, _ = processor.postprocess(pre["y"].clone(), pre)  # evaluation: outputs in physical units
    torch.testing.assert_close(out, whole["y"], rtol=1e-5, atol=1e-6)

    loss = LpLoss(d=1, p=2)

    def training_loss():
        with torch.no_grad():
            return float(loss(model(normaliser.normalise_inputs(whole["x"])), normaliser.normalise_outputs(whole["y"])))

    before = training_loss()
    trainer = Trainer(model=model, n_epochs=5, data_processor=data_processor(normaliser), device="cpu",
                      verbose=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer.train(DataLoader(xy, batch_size=3), {}, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 10),
                  training_loss=loss)
    assert training_loss() < before

    bare = tmp_path / "bare.pt"
    Checkpoint(bare, "standalone", {"a": 1}).update("model", model_entry(model))
    with pytest.raises(ValueError, match="saved without a normaliser"):
        load_data_processor(bare)
