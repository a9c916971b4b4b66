"""Checkpoint files: atomic replacement, format tags, weights-only loading."""

import pytest
import torch

from fem_ms_torch import checkpoints
from fem_ms_torch.checkpoints import load_checkpoint_file, save_checkpoint_file


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint_file(path, {"step": 1, "w": torch.ones(3)}, "fmt/1")

    def killed(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint_file(path, {"step": 2, "w": torch.zeros(3)}, "fmt/1")
    monkeypatch.undo()
    data = load_checkpoint_file(path, "fmt/1", "a test")
    assert data["step"] == 1 and torch.equal(data["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left


def test_format_and_missing_file_errors(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint_file(path, {"x": 1}, "fmt/1")
    with pytest.raises(ValueError, match="is not a GPO checkpoint"):
        load_checkpoint_file(path, "fmt/2", "a GPO")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint_file(tmp_path / "none.pt", "fmt/1", "a GPO")


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "fmt/1", "obj": object()}, path)  # weights_only refuses unknown globals
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint_file(path, "fmt/1", "a test")
