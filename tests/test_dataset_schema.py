"""The dataset schema: files that describe themselves, checksums, format versions, float32
storage, the splits, and docs/datasets.md in step with it."""

import json
import re
import shutil

import h5py
import numpy as np
import pytest

from fem_ms.data import FORMAT_VERSION, CorruptDatasetError, DatasetFile, GMsFEMBasisConfig, MultilevelConfig, generate
from fem_ms.data.schema import LOCATIONS, SCHEMAS, create_dataset, split_rows

BASIS = GMsFEMBasisConfig(name="basis", samples=2, fine=12, coarse=3, n_basis=3)
LEVELS = MultilevelConfig(name="levels", samples=5, levels=(4, 8), forcing="random", train_fraction=0.6,
                          validation_fraction=0.2)


@pytest.fixture(scope="module")
def basis_file(tmp_path_factory):
    return generate(BASIS, tmp_path_factory.mktemp("basis"), progress=False)


@pytest.fixture(scope="module")
def levels_file(tmp_path_factory):
    return generate(LEVELS, tmp_path_factory.mktemp("levels"), progress=False)


def doc_tables(text: str) -> dict[str, list[tuple[str, ...]]]:
    """The first table after each ``### `kind` `` heading of docs/datasets.md (and the splits
    table, under the key "splits"), as rows of cells."""
    tables = {}
    for name, body in re.findall(r"\n### `(\w+)`\n(.*?)(?=\n### |\Z)", text, flags=re.S):
        tables[name] = _first_table(body)
    tables["splits"] = _first_table(text[text.index("Every kind has the splits"):])
    return tables


def _first_table(text: str) -> list[tuple[str, ...]]:
    lines = text[text.index("| dataset |"):].split("\n\n")[0].splitlines()
    return [tuple(cell.strip() for cell in line.strip("|").split(" | ")) for line in lines[2:]]


def test_docs_tables_match_the_schema(repo):
    tables = doc_tables((repo / "docs" / "datasets.md").read_text())
    assert sorted(tables) == sorted([*SCHEMAS, "splits"])
    for kind, schema in SCHEMAS.items():
        assert tables[kind] == schema.rows(), f"docs/datasets.md's {kind} table differs from fem_ms.data.schema"
    assert tables["splits"] == split_rows()


def test_the_schema_refuses_an_undeclared_dataset(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        with pytest.raises(KeyError, match="'level_4/v' is not a dataset of the 'multilevel' schema"):
            create_dataset(fh, "multilevel", "level_4/v", "float64", data=np.zeros(3))
        with pytest.raises(TypeError, match="'kappa_seed' is declared int"):
            create_dataset(fh, "multilevel", "kappa_seed", "float64", data=np.zeros(3))
        with pytest.raises(ValueError, match="has axes"):
            create_dataset(fh, "multilevel", "level_4/u", "float64", data=np.zeros(3))


def test_files_describe_themselves(basis_file, levels_file):
    for path in (basis_file, levels_file):
        data = DatasetFile(path)
        assert data.format_version == FORMAT_VERSION
        data.verify()
        with h5py.File(path, "r") as fh:
            assert fh.attrs["dataset_name"] == data.config["name"] and fh.attrs["n_samples"] == data.n_samples
    data = DatasetFile(basis_file, "gmsfem_basis")
    assert data.members() == ["full", "half", "corner"]
    info = data.describe("basis", patch_kind="half")
    assert info["axes"] == ("sample", "patch", "basis", "i", "j") and info["location"] == "vertices"
    assert info["sample_varying"] and not info["time_varying"] and "eigenvectors" in info["description"]
    assert data.describe("kappa", patch_kind="half")["location"] == "cells"
    assert data.describe("chi", patch_kind="full")["axes"] == ("patch", "i", "j")
    info = DatasetFile(levels_file).describe("x", level=8)
    assert info["axes"] == ("x",) and not info["sample_varying"] and info["location"] in LOCATIONS


def test_validation_split(levels_file):
    data = DatasetFile(levels_file, "multilevel")
    assert data.split_names == ["train", "validation", "test"]
    assert [list(data.split(name)) for name in data.split_names] == [[0, 1, 2], [3], [4]]
    np.testing.assert_array_equal(data.read("u", data.split("validation"), level=8)[0], data.read("u", 3, level=8))
    with pytest.raises(ValueError, match="has no split 'dev'; it has \\['train', 'validation', 'test'\\]"):
        data.split("dev")


def test_reader_errors_name_the_problem(tmp_path, levels_file):
    data = DatasetFile(levels_file)
    with pytest.raises(ValueError, match="has no level 16; levels: \\[4, 8\\]"):
        data.read("u", level=16)
    with pytest.raises(ValueError, match="give level="):
        data.read("u")
    with pytest.raises(KeyError, match="no field 'v'"):
        data.read("v", level=4)
    with pytest.raises(TypeError, match="selected by level=, not \\['mesh'\\]"):
        data.read("u", mesh=4)
    with pytest.raises(ValueError, match="holds a 'multilevel' dataset, not 'burgers'"):
        DatasetFile(levels_file, "burgers")
    with pytest.raises(FileNotFoundError, match="dataset not found"):
        DatasetFile(tmp_path / "none.h5")
    (tmp_path / "noise.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(OSError, match="noise.h5 is not a readable HDF5 dataset file"):
        DatasetFile(tmp_path / "noise.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as fh:
        fh["a"] = np.zeros(2)
    with pytest.raises(ValueError, match="plain.h5 is not a fem-ms dataset"):
        DatasetFile(tmp_path / "plain.h5")


def _flip_byte(path, dataset: str, chunk: int = 0) -> None:
    """Invert one byte in the middle of the stored chunk ``chunk`` of ``dataset``."""
    with h5py.File(path, "r") as fh:
        info = fh[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([byte ^ 0xFF]))


def test_flipped_bytes_are_reported_with_file_and_dataset(tmp_path, basis_file):
    path = tmp_path / "damaged.h5"
    shutil.copy(basis_file, path)
    with h5py.File(path, "r") as fh:  # the case of issue 24: an uncompressed dataset
        assert fh["corner/chi"].compression is None
    _flip_byte(path, "corner/chi")
    data = DatasetFile(path)
    with pytest.raises(CorruptDatasetError, match="damaged.h5: dataset 'corner/chi' cannot be read.*Fletcher32"):
        data.read("chi", patch_kind="corner")
    with pytest.raises(CorruptDatasetError, match="'corner/chi'"):
        data.verify()
    np.testing.assert_array_equal(data.read("chi", patch_kind="full"), DatasetFile(basis_file).read("chi",
                                                                                                    patch_kind="full"))
    _flip_byte(path, "half/basis", chunk=1)  # compressed, one sample per chunk
    data.read("basis", 0, patch_kind="half")
    with pytest.raises(CorruptDatasetError, match="damaged.h5: dataset 'half/basis' cannot be read"):
        data.read("basis", 1, patch_kind="half")


def _as_format_1(source, target) -> None:
    """``source`` rewritten as fem-ms wrote files before format versions: no format_version, no
    validation split, no descriptions, no checksums, a config without the newer keys."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        config = json.loads(src.attrs["config"])
        for key in ("validation_fraction", "storage_dtype"):
            del config[key]
        dst.attrs["kind"] = src.attrs["kind"]
        dst.attrs["config"] = json.dumps(config, sort_keys=True)

        def copy(name, obj):
            if isinstance(obj, h5py.Dataset) and name != "splits/validation":
                dst.create_dataset(name, data=obj[()])
        src.visititems(copy)


def test_format_1_files_still_read(tmp_path, levels_file):
    old = MultilevelConfig(**{k: v for k, v in vars(LEVELS).items() if k != "validation_fraction"})
    new = generate(old, tmp_path / "new", progress=False)
    (tmp_path / "old").mkdir()
    path = tmp_path / "old" / "levels.h5"
    _as_format_1(new, path)
    with pytest.warns(UserWarning, match="format version 1 .*fem-ms generate CONFIG --overwrite"):
        data = DatasetFile(path, "multilevel")
    assert data.format_version == 1 and len(data.split("validation")) == 0
    np.testing.assert_array_equal(data.read("u", level=8), DatasetFile(new).read("u", level=8))
    data.verify()
    # generate keeps a format-1 file of the same config, and rewrites it when told to
    assert generate(old, tmp_path / "old", progress=False) == path
    with pytest.warns(UserWarning, match="format version 1"):
        assert DatasetFile(path).format_version == 1
    generate(old, tmp_path / "old", progress=False, overwrite=True)
    assert DatasetFile(path).format_version == FORMAT_VERSION
    np.testing.assert_array_equal(DatasetFile(path).read("u", level=8), DatasetFile(new).read("u", level=8))


def test_newer_format_is_refused_with_the_fix(tmp_path, levels_file):
    path = tmp_path / "future.h5"
    shutil.copy(levels_file, path)
    with h5py.File(path, "r+") as fh:
        fh.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"format version {FORMAT_VERSION + 1}; this fem-ms reads versions 1 to "
                                         f"{FORMAT_VERSION}: update fem-ms, or regenerate it with `fem-ms generate"):
        DatasetFile(path)


def test_float32_storage(tmp_path, levels_file):
    single = generate(MultilevelConfig(**{**vars(LEVELS), "storage_dtype": "float32"}), tmp_path, progress=False)
    a, b = DatasetFile(levels_file), DatasetFile(single)
    b.verify()
    for field in ("kappa", "u", "f"):
        x, y = a.read(field, level=8), b.read(field, level=8)
        assert x.dtype == np.float64 and y.dtype == np.float32
        np.testing.assert_array_equal(y, x.astype(np.float32))  # the same samples, rounded once
    assert b.read("x", level=8).dtype == np.float64  # geometry keeps its precision
    np.testing.assert_array_equal(b.read("kappa_seed"), a.read("kappa_seed"))
