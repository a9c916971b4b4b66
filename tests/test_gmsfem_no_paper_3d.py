"""The 3D path of the GMsFEM-NO paper benchmark (``table4``): SLEPc GMsFEM of the paper's problems on a unit cube."""

import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kappa_scale", [None, 0.35])
def test_3d_evaluate_gives_finite_errors_in_both_conventions(kappa_scale):
    from benchmarks.compare import Method
    from benchmarks.gmsfem_no_paper.paper import evaluate

    # a second SLEPc space under another label goes through the path of a learned method
    rows = evaluate(6, 2, ["diffusion/f=1", "diffusion/random f", "richards/f=1"], 1, kappa_scale, 1.0, dim=3,
                    methods=[Method("slepc", "slepc", {"progress": False}, 8),
                             Method("again", "slepc", {"progress": False}, 8)])
    assert [(r["problem"], r["forcing"], r["method"]) for r in rows] == [
        (p, f, m) for p, f in (("diffusion", "f=1"), ("diffusion", "random f"), ("richards", "f=1"))
        for m in ("slepc", "again")]
    for row in rows:
        assert row["samples"] == 1 and not row.get("failed")
        assert math.isfinite(row["l2_mean_pct"]) and math.isfinite(row["h1_mean_pct"])
        assert 0 < row["l2_mean_pct"] < 100 and row["fine"] == 6 and row["coarse"] == 2
    by = {(r["problem"], r["forcing"], r["method"]): r for r in rows}
    for p, f, _ in by:
        assert by[p, f, "again"]["l2_mean_pct"] == pytest.approx(by[p, f, "slepc"]["l2_mean_pct"], rel=1e-6)
    # the random forcing is another problem than f = 1
    assert by["diffusion", "random f", "slepc"]["l2_mean_pct"] != by["diffusion", "f=1", "slepc"]["l2_mean_pct"]


@pytest.mark.parametrize("options, match", [
    ({"dim": 4}, "dim"),
    ({"dim": 3, "kappa_scale": None, "kappa_level": 0.1}, "kappa_level"),
    ({"dim": 3, "cases": ["diffusion/f=2"]}, "unknown case"),
])
def test_3d_evaluate_refuses_bad_input(options, match):
    from benchmarks.gmsfem_no_paper.paper import evaluate

    arguments = {"cases": ["diffusion/f=1"], "kappa_scale": 0.35, **options}
    with pytest.raises(ValueError, match=match):
        evaluate(6, 2, arguments.pop("cases"), 1, arguments.pop("kappa_scale"), 1.0, **arguments)


def test_method_labels_must_be_distinct():
    from benchmarks.compare import Method
    from benchmarks.gmsfem_no_paper.paper import evaluate

    with pytest.raises(ValueError, match="labels"):
        evaluate(6, 2, ["diffusion/f=1"], 1, 0.35, 1.0, dim=3, methods=[Method("a"), Method("a")])


def test_table4_targets_are_the_same_list_whatever_ran():
    from benchmarks.gmsfem_no_paper import table4

    document = json.loads((REPO / "benchmarks/results/gmsfem_no_paper.json").read_text())
    names = [t["name"] for t in table4.targets(document)]
    empty = table4.targets({})
    assert [t["name"] for t in empty] == names
    assert all(t["measured"] is None and t["met"] is None for t in empty)


@pytest.mark.parametrize("suffix", ["", "_quick"])
def test_committed_table4_configs_load(suffix):
    """The committed TOMLs of Table 4's 3D training are a data set and a training the package's
    commands read (relative paths: they run on any machine)."""
    from fem_ms.data import load_config
    from fem_ms_torch.basis.config import TrainBasisConfig

    configs = REPO / "benchmarks" / "configs"
    data = load_config(configs / f"table4_dataset{suffix}.toml")
    train = TrainBasisConfig.load(configs / f"table4_train_basis{suffix}.toml")
    assert (data.dim, data.convention) == (3, "paper")
    assert str(train.dataset) == f"{data.name}.h5" and not train.out.is_absolute()
