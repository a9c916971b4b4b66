"""The training core (exact resume, validation, metrics, non-finite losses, time budget), the
normaliser, and the typed configs of the three training commands."""

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fem_ms.typed_config import at_least, check_fields, load_config
from fem_ms_torch.basis.config import TrainBasisConfig
from fem_ms_torch.checkpoints import Checkpoint, load_checkpoint
from fem_ms_torch.gpo.config import TrainGPOConfig
from fem_ms_torch.mlmc.config import TrainMLMCConfig
from fem_ms_torch.normalisation import Normaliser
from fem_ms_torch.training import NonFiniteLossError, Trainer, metrics_path

from .interruption import killed_after_saves


class Regression(Trainer):
    """y ≈ MLP(x) with dropout (so that training draws random numbers), shuffled mini-batches."""

    def __init__(self, x, y, checkpoint=None, **kwargs):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
        super().__init__(model, checkpoint=checkpoint, device="cpu", progress=False, desc="regression", **kwargs)
        self.x, self.y = x, y

    def batches(self, epoch):
        return torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch)).split(5)

    def compute_loss(self, idx):
        return (self.model(self.x[idx]) - self.y[idx]).square().mean(), len(idx)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(23, 3, generator=g)
    return x, x.sum(1, keepdim=True).sin() + 0.1 * torch.randn(23, 1, generator=g)


def _run(data, path, **kwargs):
    trainer = Regression(*data, checkpoint=Checkpoint(path, "regression", {"case": 1}), **{"epochs": 5, **kwargs})
    trainer.train()
    return trainer


def test_an_interrupted_run_resumes_to_the_same_weights_and_metrics(data, tmp_path):
    straight = _run(data, tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt), killed_after_saves(2):
        _run(data, tmp_path / "b.pt")
    resumed = _run(data, tmp_path / "b.pt")
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # dropout's random numbers resumed too
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]
    # AdamW with a cosine schedule over the run: the learning rate of each epoch
    assert [r["lr"] for r in straight.history] == pytest.approx(
        [0.5e-3 * (1 + math.cos(math.pi * e / 5)) for e in range(5)], rel=1e-12)
    with open(metrics_path(tmp_path / "b.pt")) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]  # the interrupted session's rows not repeated
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in straight.history]
    assert isinstance(straight.optimizer, torch.optim.AdamW) and straight.optimizer.defaults["weight_decay"] == 0.01


def test_validation_every_n_epochs_leaves_training_unchanged(data, tmp_path):
    x, y = data
    calls = []

    def validation(model):
        calls.append(model.training)
        return {"loss": float((model(x) - y).square().mean())}

    plain = _run(data, tmp_path / "a.pt")
    validated = _run(data, tmp_path / "b.pt", validation=validation, validate_every=2)
    assert [r.get("val_loss") is not None for r in validated.history] == [False, True, False, True, True]
    assert calls == [False, False, False]  # evaluated in eval mode: no dropout
    for p, q in zip(plain.model.parameters(), validated.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with pytest.raises(NonFiniteLossError, match="regression: the validation loss at epoch 1 is nan"):
        _run(data, tmp_path / "c.pt", validation=lambda model: {"loss": float("nan")})


def test_a_non_finite_loss_names_the_epoch_and_the_step(data, tmp_path):
    x, y = data
    y = y.clone()
    y[7] = float("inf")
    trainer = Regression(x, y, epochs=3)
    step = next(k for k, idx in enumerate(trainer.batches(0)) if 7 in idx.tolist())
    with pytest.raises(NonFiniteLossError, match=f"regression: the loss at epoch 1, step {step + 1} is inf"):
        trainer.train()


def test_a_time_budget_stops_after_an_epoch_and_the_rerun_continues(data, tmp_path):
    straight = _run(data, tmp_path / "a.pt")
    assert len(_run(data, tmp_path / "b.pt", max_seconds=0.0).history) == 1
    resumed = _run(data, tmp_path / "b.pt")
    assert len(resumed.history) == 5
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_the_normaliser_fits_inverts_and_round_trips():
    g = torch.Generator().manual_seed(2)
    kappa = torch.exp(2 + 3 * torch.randn(40, 2, 5, 5, generator=g, dtype=torch.float64))
    u = 5 + 2 * torch.randn(40, 7, generator=g, dtype=torch.float64)
    per_channel = Normaliser.fit(kappa, u, log_inputs=True, per_channel=True)
    z = per_channel.normalise_inputs(kappa)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(z.std((0, 2, 3)), torch.ones(2, dtype=torch.float64))  # sample standard deviations
    assert torch.allclose(per_channel.denormalise_inputs(z), kappa)
    assert per_channel.normalise_outputs(u).mean().abs() < 1e-12
    assert torch.allclose(per_channel.denormalise_outputs(per_channel.normalise_outputs(u)), u)
    scaled = Normaliser.fit(kappa[:, 0], u, log_inputs=True, output_scaling="max_abs")
    assert scaled.output_mean == 0 and scaled.output_scale == float(u.abs().max())
    assert isinstance(scaled.input_mean, float) and scaled.log_input_stats == (scaled.input_mean, scaled.input_std)
    assert np.allclose(per_channel.normalise_inputs(kappa.numpy()), z.numpy())  # arrays as tensors
    for normaliser in (per_channel, scaled):
        assert Normaliser.from_dict(normaliser.to_dict()) == normaliser
    with pytest.raises(ValueError, match="log_inputs needs positive inputs"):
        Normaliser.fit(-kappa, log_inputs=True)
    with pytest.raises(ValueError, match="input_std must be positive"):
        Normaliser(0.0, 0.0)
    with pytest.raises(ValueError, match="2 channel statistics for inputs of shape \\(4, 3\\)"):
        per_channel.normalise_inputs(torch.ones(4, 3))
    with pytest.raises(ValueError, match="has keys"):
        Normaliser.from_dict({"input_mean": 0.0})


def _toml(tmp_path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, error, message", [
    ('dataset = "d.h5"\nout = "m.pt"\nepoch = 3\n', ValueError, r"unknown key 'epoch' \(did you mean 'epochs'\?\)"),
    ('dataset = "d.h5"\nout = "m.pt"\nlr = "high"\n', TypeError, r"key 'lr' must be a number, got 'high' \(str\)"),
    ('dataset = "d.h5"\nout = "m.pt"\nepochs = 0\n', ValueError, "key 'epochs' must be >= 1, got 0"),
    ('dataset = "d.h5"\nout = "m.pt"\nprogress = 1\n', TypeError, "key 'progress' must be true or false"),
    ('dataset = "d.h5"\nout = "m.pt"\nkinds = ["full", 2]\n', TypeError,
     r"key 'kinds' must be a list \(each item a string\) or None, got \['full', 2\]"),
    ('dataset = "d.h5"\nout = "m.pt"\narchitecture = "fnoo"\n', ValueError, "unknown model 'fnoo'; available"),
    ('dataset = "d.h5"\nout = "m.pt"\narchitecture = "mppde"\n', ValueError, "'mppde' is not a grid operator"),
    ('out = "m.pt"\n', ValueError, "missing key 'dataset'"),
    ('kind = "train_gpo"\ndataset = "d.h5"\nout = "m.pt"\n', ValueError, "kind must be 'train_basis'"),
    ('dataset = "d.h5"\nout = ', ValueError, "not valid TOML"),
    ('dataset = "d.h5"\nout = "m.pt"\nloss = "sal-pr"\nn_vectors = 0\n', ValueError, "key 'n_vectors' must be >= 1"),
    ('dataset = "d.h5"\nout = "m.pt"\nloss = "sal-pr"\nn_vectors = 2.5\n', TypeError,
     "key 'n_vectors' must be an integer or None"),
    ('dataset = "d.h5"\nout = "m.pt"\nloss = "sal-pr"\npr_weight = -1\n', ValueError, "key 'pr_weight' must be >= 0"),
    ('dataset = "d.h5"\nout = "m.pt"\nn_vectors = 5\n', ValueError,
     "n_vectors is a setting of loss 'sal-pr', not of 'sal'"),
    ('dataset = "d.h5"\nout = "m.pt"\nloss = "rbfl2"\npr_weight = 0.5\n', ValueError,
     "pr_weight is a setting of loss 'sal-pr', not of 'rbfl2'"),
])
def test_train_basis_config_errors_name_the_file_and_the_key(tmp_path, text, error, message):
    path = _toml(tmp_path, text)
    with pytest.raises(error, match=message) as info:
        TrainBasisConfig.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, error, message", [
    ('[model]\nwidth = 8\n', ValueError, "missing key 'data'"),
    ('[data]\nkind = "multilevel"\nlevels = [4]\n', ValueError, r"train-mlmc config \[data\]: missing key 'path'"),
    ('[data]\nkind = "grid"\npath = "d.h5"\nlevels = [4]\n', TypeError,
     r"\[data\]: key 'kind' must be one of 'multilevel', 'cylinder_flow', got 'grid'"),
    ('[data]\nkind = "multilevel"\npath = "d.h5"\nlevels = [4]\n[train]\nbatch = 3\n', ValueError,
     r"\[train\]: unknown key 'batch'"),
    ('[data]\nkind = "multilevel"\npath = "d.h5"\nlevels = [4]\n[mlmc]\ndelta = 0.5\n', ValueError,
     r"\[mlmc\]: key 'delta' must be >= 1"),
    ('[data]\nkind = "multilevel"\npath = "d.h5"\nlevels = [4]\n[train]\nepochs = "high"\n', TypeError,
     r"\[train\]: key 'epochs' must be an integer, got 'high'"),
    ('[data]\nkind = "cylinder_flow"\npath = "d.h5"\nlevels = [1]\n[model]\narchitecture = "fno"\n', ValueError,
     "mesh data \\(cylinder_flow\\) need architecture 'mppde'"),
    ('[data]\nkind = "multilevel"\npath = "d.h5"\nlevels = [4]\n[sgd]\nlr = 1\n', ValueError, "unknown key 'sgd'"),
])
def test_train_mlmc_config_errors_name_the_section_and_the_key(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        TrainMLMCConfig.load(_toml(tmp_path, text))


def test_configs_take_keywords_and_echo_into_checkpoints(tmp_path):
    config = TrainGPOConfig(dataset="d.h5", out=tmp_path / "m.pt", model="svgp", lr=1, progress=False)
    assert config.lr == 1.0 and isinstance(config.lr, float) and isinstance(config.dataset, Path)
    identity = config.identity()  # plain data, the dataset absolute, no runtime settings
    assert identity["dataset"] == str(Path("d.h5").resolve()) and "progress" not in identity and "out" not in identity
    assert "variational" not in identity  # a LoGoS-only setting does not identify an SVGP run
    torch.save(identity, tmp_path / "x.pt")
    assert torch.load(tmp_path / "x.pt", weights_only=True) == identity
    with pytest.raises(TypeError, match="key 'n_train' must be an integer or None, got 2.5"):
        TrainGPOConfig(dataset="d.h5", out="m.pt", n_train=2.5)


def test_demo_training_configs_are_valid(repo):
    configs = sorted((repo / "demos" / "configs" / "train").glob("*.toml"))
    assert [p.stem for p in configs] == ["basis", "gpo", "mlmc"]
    kinds = {"basis": TrainBasisConfig, "gpo": TrainGPOConfig, "mlmc": TrainMLMCConfig}
    for path in configs:
        kinds[path.stem].load(path)


def test_the_shared_checks_name_a_wrongly_typed_key():
    """The checks live in fem_ms (no torch): any typed config of the package can use them."""

    @dataclasses.dataclass(frozen=True)
    class KLE:
        energy: float = 0.95
        modes: int = dataclasses.field(default=4, metadata=at_least(1))

        def __post_init__(self):
            check_fields(self, "dataset config")

    with pytest.raises(TypeError, match=r"dataset config: key 'energy' must be a number, got 'high' \(str\)"):
        load_config(KLE, {"energy": "high"}, "dataset config")
    with pytest.raises(ValueError, match="key 'energy' must be finite"):
        KLE(energy=float("nan"))
    assert load_config(KLE, {"modes": 2}, "dataset config") == KLE(0.95, 2)


def test_checkpoint_config_is_the_runs_identity(tmp_path):
    config = TrainBasisConfig(dataset="d.h5", out=tmp_path / "m.pt", epochs=2, progress=False)
    Checkpoint(tmp_path / "m.pt", "basis", config.identity()).update("full", {"record": None, "state_dict": {},
                                                                             "normaliser": None})
    stored = load_checkpoint(tmp_path / "m.pt")["config"]
    assert stored == config.identity() and stored["epochs"] == 2
    # runtime settings may differ on resume; settings that change the weights may not
    Checkpoint(tmp_path / "m.pt", "basis", dataclasses.replace(config, device="cpu", validate_every=3).identity())
    with pytest.raises(FileExistsError, match="other settings"):
        Checkpoint(tmp_path / "m.pt", "basis", dataclasses.replace(config, lr=1e-2).identity())


def test_sal_pr_settings_identify_a_run_only_where_set(tmp_path):
    """n_vectors and pr_weight are part of a SAL-PR run's identity; left unset they are absent
    from it, so that checkpoints written before they were keys still resume."""
    config = TrainBasisConfig(dataset="d.h5", out=tmp_path / "m.pt", loss="sal-pr", progress=False)
    assert "n_vectors" not in config.identity() and "pr_weight" not in config.identity()
    assert config.loss_options() == {}
    five = dataclasses.replace(config, n_vectors=5, pr_weight=2)
    assert five.identity()["n_vectors"] == 5 and five.identity()["pr_weight"] == 2.0
    assert five.loss_options() == {"n_vectors": 5, "pr_weight": 2.0}
    Checkpoint(tmp_path / "m.pt", "basis", five.identity()).update("full", {"record": None, "state_dict": {},
                                                                           "normaliser": None})
    with pytest.raises(FileExistsError, match="other settings"):
        Checkpoint(tmp_path / "m.pt", "basis", dataclasses.replace(five, n_vectors=20).identity())


def test_an_empty_validation_split_is_named():
    from fem_ms_torch.training import check_validation_split

    with pytest.raises(ValueError, match="d.h5: the 'validation' split is empty"):
        check_validation_split(0, "d.h5", "validation")
    check_validation_split(3, "d.h5", "validation")


TINY_DATASET = {"basis": "gmsfem_basis", "mlmc": "multilevel", "gpo": "burgers"}
# what makes each example run one epoch in seconds on its tiny dataset: the data, one epoch,
# small models; everything else is the example's own
TINY_RUN = {
    "basis": {"epochs": 1, "width": 4, "depth": 1, "modes": 2, "batch_size": 4, "progress": False},
    "mlmc": {"data.levels": [4, 8, 16], "model.width": 4, "model.modes": 2, "mlmc.batch_size": 2,
             "train.epochs": 1, "train.progress": False},
    "gpo": {"epochs": 1, "batch_size": 6, "n_train": 12, "calibration": 6, "progress": False,
            "options.width": 4, "options.wavelet_levels": 2, "options.inducing": 4, "options.neighbours": 4},
}


@pytest.mark.parametrize("command", sorted(TINY_DATASET))
def test_example_training_configs_run_an_epoch_on_the_tiny_datasets(repo, tmp_path, monkeypatch, command):
    """demos/configs/train/COMMAND.toml through ``fem-ms train-COMMAND``, on the tiny dataset of
    its kind (demos/configs/tiny/), with the settings of :data:`TINY_RUN` replaced."""
    import sys
    import tomllib

    from fem_ms.cli import main
    from fem_ms.data import generate
    from fem_ms.data import load_config as load_dataset_config
    from fem_ms.typed_config import toml_text, with_overrides

    dataset = generate(load_dataset_config(repo / "demos" / "configs" / "tiny" / f"{TINY_DATASET[command]}.toml"),
                       tmp_path, progress=False)
    out = tmp_path / f"{command}.pt"
    paths = {"mlmc": {"data.path": str(dataset), "train.checkpoint": str(out)}}.get(
        command, {"dataset": str(dataset), "out": str(out)})
    example = tomllib.loads((repo / "demos" / "configs" / "train" / f"{command}.toml").read_text())
    config = tmp_path / "config.toml"
    config.write_text(toml_text(with_overrides(example, {**paths, **TINY_RUN[command]})))
    monkeypatch.setattr(sys, "argv", ["fem-ms"])  # main hands PETSc its options through sys.argv
    assert main(["-q", f"train-{command}", str(config)]) == 0
    runs = load_checkpoint(out)["runs"]
    assert runs and all(len(run["history"]) == 1 for run in runs.values())  # one epoch of every model
