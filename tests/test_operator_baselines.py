"""benchmarks.operator_baselines: its targets follow from the stored error rows (committed files
and hand-made rows that must pass or fail), and the standalone trainer it drives trains any
registered grid operator."""

import json

import numpy as np
import pytest

from benchmarks.operator_baselines import KERNEL, NO, SLEPC, targets
from benchmarks.record import RESULTS, check_targets

COMMITTED = sorted(RESULTS.glob("operator_baselines*.json"))


def test_a_result_is_committed():
    assert COMMITTED, "benchmarks/results/operator_baselines_quick.json (or the full run) is not committed"


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_targets_of_the_committed_result(path):
    document = json.loads(path.read_text())
    derived = targets(document)
    check_targets(derived, path.name)
    assert derived == document["targets"]
    assert path.with_suffix(".png").is_file(), f"{path.name}: its figure is not committed"
    models = {r["model"] for r in document["errors"]}
    assert {SLEPC, NO, "F-FNO"} <= models
    for row in document["errors"]:  # every figure the table shows was measured
        assert row["test_l2_pct"] is not None and np.isfinite(row["test_l2_pct"]), row
        assert row["cost_cpu_s"] >= row["data_cpu_s"] >= 0, row


def _row(model, rule, problem, forcing, test, train=None):
    return {"model": model, "rule": rule, "problem": problem, "forcing": forcing, "test_l2_pct": test,
            "test_h1_pct": 2 * test, "train_l2_pct": train, "train_h1_pct": None if train is None else 2 * train}


def _payload(no_error, ood_error, pcanet_test):
    rows = []
    for problem in ("diffusion", "richards"):
        for forcing, base in (("f=1", 5.0), ("random f", 15.0)):
            rows.append(_row(SLEPC, "-", problem, forcing, base, 5.0))
            rows.append(_row(NO, "b", problem, forcing, base * no_error, 5.0))
        rows.append(_row("F-FNO", "a", problem, "f=1", 10.0, 8.0))
        rows.append(_row("F-FNO", "a", problem, "random f", ood_error, 8.0))
        rows.append(_row("PCANet", "a", problem, "f=1", pcanet_test, 4.0))
    return {"setup": {"test_samples": 3, "epochs": 2, "operators": ["F-FNO"]}, "errors": rows}


def test_targets_judge_the_rows():
    met = {t["name"]: t for t in targets(_payload(no_error=1.04, ood_error=500.0, pcanet_test=20.0))}
    assert met["GMsFEM-NO within 5 % of GMsFEM's error in every cell"]["met"] is True
    assert met["standalone F-FNO degrades out of distribution"]["measured"] == pytest.approx(50.0)
    assert met["standalone F-FNO degrades out of distribution"]["met"] is True
    assert met["GMsFEM-NO more accurate than standalone F-FNO out of distribution"]["met"] is True
    assert met["PCANet overfits (test error ≫ train error)"]["measured"] == pytest.approx(5.0)
    assert met[f"{KERNEL} overfits (test error ≫ train error)"]["met"] is None  # no rows: not measured
    missed = {t["name"]: t for t in targets(_payload(no_error=1.2, ood_error=30.0, pcanet_test=6.0))}
    assert missed["GMsFEM-NO within 5 % of GMsFEM's error in every cell"]["measured"] == pytest.approx(20.0)
    assert not any(missed[name]["met"] for name in (
        "GMsFEM-NO within 5 % of GMsFEM's error in every cell", "standalone F-FNO degrades out of distribution",
        "PCANet overfits (test error ≫ train error)"))


@pytest.mark.torch
def test_standalone_trainer_builds_the_named_operator(tmp_path):
    import torch

    from fem_ms.data import MultilevelConfig, generate
    from fem_ms_torch.checkpoints import load_checkpoint
    from fem_ms_torch.standalone import StandaloneSolver, train_standalone

    data = generate(MultilevelConfig(name="m", samples=3, levels=(8,), train_fraction=1.0), tmp_path, progress=False)
    kwargs = dict(epochs=2, batch_size=2, width=4, depth=1, modes=2, progress=False)
    out = train_standalone(data, 8, tmp_path / "fno.pt", architecture="neuralop:FNO", **kwargs)
    assert load_checkpoint(out)["models"]["model"]["record"]["name"] == "neuralop:FNO"
    u = StandaloneSolver(out)(np.ones((8, 8)), np.ones((9, 9)))
    assert u.shape == (9, 9) and torch.isfinite(u).all()
    with pytest.raises(FileExistsError, match="other settings"):  # another architecture is another run
        train_standalone(data, 8, out, architecture="ffno", **kwargs)
    with pytest.raises(ValueError, match="unknown model 'no-such-operator'"):
        train_standalone(data, 8, tmp_path / "x.pt", architecture="no-such-operator", **kwargs)


def test_the_docs_table_is_the_committed_comparison(repo):
    """docs/benchmarks.md's baseline table holds the rows :func:`comparison_table` renders from the
    file the section names."""
    import re

    from benchmarks.operator_baselines import comparison_table

    text = (repo / "docs" / "benchmarks.md").read_text()
    section = text.split("## Operator and reduced-order baselines (paper Tables 7 and 10)", 1)[1].split("\n## ", 1)[0]
    name = re.search(r"`(operator_baselines[\w]*\.json)`", section).group(1)
    documented = [line for line in section.splitlines() if line.startswith("| ") and " % " in line]
    assert documented == comparison_table(json.loads((RESULTS / name).read_text()))
