"""Checkpoint files: atomic replacement, one format for every trainer, weights-only loading,
clear errors for foreign, damaged and retired files, and old GMsFEM-NO files still usable."""

import os

import numpy as np
import pytest
import torch

from fem_ms_torch import checkpoints
from fem_ms_torch.checkpoints import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    load_checkpoint,
    load_model,
    model_entry,
    stored_normaliser,
)
from fem_ms_torch.normalisation import Normaliser
from fem_ms_torch.registry import build_operator


def _write(path, config=None, key="model"):
    checkpoint = Checkpoint(path, "standalone", config or {"a": 1})
    torch.manual_seed(0)
    model = build_operator("ffno", 3, 1, 2, width=4, depth=1, modes=2)
    checkpoint.update(key, model_entry(model, Normaliser(1.0, 2.0, log_inputs=True)), {"epochs_done": 1})
    return model


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    model = _write(path)

    def killed(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    checkpoint = Checkpoint(path, "standalone", {"a": 1})
    monkeypatch.setattr(checkpoints.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.update("model", {"record": None, "state_dict": {}, "normaliser": None}, {"epochs_done": 2})
    monkeypatch.undo()
    data = load_checkpoint(path)
    assert data["runs"]["model"]["epochs_done"] == 1
    assert torch.equal(data["models"]["model"]["state_dict"]["lift.weight"], model.lift.weight.detach())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left
    assert os.stat(path).st_mode & 0o044  # readable by others under the usual umask, unlike mkstemp's 0600


def test_a_checkpoint_rebuilds_its_model_and_normaliser(tmp_path):
    path = tmp_path / "c.pt"
    model = _write(path)
    data = load_checkpoint(path)
    assert data["format"] == FORMAT and data["format_version"] == FORMAT_VERSION and data["trainer"] == "standalone"
    x = torch.rand(2, 3, 9, 9)
    assert torch.equal(load_model(path)(x), model.eval()(x))
    assert stored_normaliser(data, path) == Normaliser(1.0, 2.0, log_inputs=True)
    with pytest.raises(ValueError, match="has no model 'full'; it has \\['model'\\]"):
        load_model(path, key="full")


def test_another_run_is_never_continued(tmp_path):
    path = tmp_path / "c.pt"
    _write(path)
    with pytest.raises(FileExistsError, match="other settings"):
        Checkpoint(path, "standalone", {"a": 2})
    with pytest.raises(FileExistsError, match="other settings"):
        Checkpoint(path, "gpo", {"a": 1})


def test_missing_foreign_and_damaged_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="is not a fem-ms checkpoint") as info:
        load_checkpoint(noise)
    assert "weights_only=False" not in str(info.value)  # never the unsafe advice
    torch.save({"weights": torch.ones(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="is not a fem-ms checkpoint \\(no format tag\\)"):
        load_checkpoint(tmp_path / "plain.pt")
    torch.save({"format": "other/1"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a fem-ms checkpoint \\(format 'other/1'\\)"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match=f"format version {FORMAT_VERSION + 1}; .* reads version {FORMAT_VERSION}"):
        load_checkpoint(tmp_path / "newer.pt")


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "obj": object()}, path)  # weights_only refuses unknown globals
    with pytest.raises(ValueError, match="is not a fem-ms checkpoint: it holds objects other than tensors") as info:
        load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)


@pytest.mark.parametrize("old, command", [("fem-ms/mlmc/1", "fem-ms train-mlmc"), ("fem-ms/gpo/3", "fem-ms train-gpo")])
def test_retired_formats_name_the_command_that_retrains_them(tmp_path, old, command):
    path = tmp_path / "old.pt"
    torch.save({"format": old, "settings": {}, "state_dict": {}}, path)
    with pytest.raises(ValueError, match=f"retired checkpoint format '{old}'; retrain it with `{command}`"):
        load_checkpoint(path)


def test_gmsfem_no_1_checkpoints_still_predict_but_are_not_continued(tmp_path):
    """A file as train_basis wrote it before this format: one FFNO per kind with its log-κ
    statistics. The learned provider and load_model read it; a training run refuses to continue it."""
    torch.manual_seed(0)
    model = build_operator("ffno", 3, 2, 2, width=4, depth=1, modes=2)
    old_config = dict(in_channels=3, out_channels=2, dim=2, width=4, depth=1, modes=[2, 2], share_weights=False)
    path = tmp_path / "old.pt"
    torch.save({"format": "fem-ms/gmsfem-no/1", "settings": {"exact_constant": True}, "n_basis": 3, "dim": 2,
                "kinds": {"full": {"model": old_config, "state_dict": model.state_dict(), "log_kappa_mean": 1.5,
                                   "log_kappa_std": 0.5}}, "done": {"full": 1}}, path)
    data = load_checkpoint(path)
    assert data["converted_from"] == "fem-ms/gmsfem-no/1" and data["meta"]["exact_constant"]
    x = torch.rand(1, 3, 7, 7)
    assert torch.equal(load_model(path, key="full")(x), model.eval()(x))
    assert stored_normaliser(data, path, "full").log_input_stats == (1.5, 0.5)
    from fem_ms_torch.basis.provider import LearnedBasisProvider

    provider = LearnedBasisProvider(path, device="cpu")
    assert provider.meta["n_basis"] == 3 and provider.normalisers["full"].log_input_stats == (1.5, 0.5)
    with pytest.raises(FileExistsError, match="retired format 'fem-ms/gmsfem-no/1' and cannot be continued"):
        Checkpoint(path, "basis", {})
