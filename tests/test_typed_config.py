"""The config dialect's helpers that the command line uses: overrides and TOML output."""

import math
import tomllib
from pathlib import Path

import pytest

from fem_ms.typed_config import toml_text, with_overrides


def test_toml_text_reads_back_as_the_data():
    data = {"name": 'a "quoted" name', "path": Path("data/x.h5"), "samples": 3, "lr": 1e-3, "huge": math.inf,
            "flag": False, "levels": (4, 8), "unset": None,
            "model": {"width": 8, "options": {"kind": "fno"}}, "train": {"epochs": 1}}
    text = toml_text(data)
    assert text.startswith('name = "a \\"quoted\\" name"\n') and "unset" not in text
    expected = {**data, "path": "data/x.h5", "levels": [4, 8]}
    del expected["unset"]  # TOML has no null
    assert tomllib.loads(text) == expected


def test_toml_text_names_a_value_it_cannot_write():
    with pytest.raises(TypeError, match="key 'when' holds complex"):
        toml_text({"when": 1j})


def test_overrides_replace_keys_and_reach_into_tables():
    data = {"samples": 10, "train": {"epochs": 5, "lr": 0.1}}
    assert with_overrides(data, {"samples": 2, "train.epochs": 1, "model.width": 4}) == {
        "samples": 2, "train": {"epochs": 1, "lr": 0.1}, "model": {"width": 4}}
    assert data == {"samples": 10, "train": {"epochs": 5, "lr": 0.1}}  # a copy: the source is left as it was
    with pytest.raises(ValueError, match="override samples.count: 'samples' is a value, not a table"):
        with_overrides(data, {"samples.count": 1})
