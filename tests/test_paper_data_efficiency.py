"""The ``data-efficiency`` (Table 8) and ``ood`` (Table 13) sub-commands of benchmarks.gmsfem_no_paper."""

import argparse
import json
from pathlib import Path

import pytest

from benchmarks.gmsfem_no_paper import commands, data_efficiency, ood

REPO = Path(__file__).resolve().parent.parent


def _row(model, n, problem, forcing, l2):
    return {"model": model, "train_samples": n, "problem": problem, "forcing": forcing, "samples": 2,
            "l2_mean_pct": l2, "h1_mean_pct": 10 * l2 if l2 is not None else None}


def _table8(no_small, ffno_small_ood):
    rows = []
    for n, no, ffno in ((4, no_small, ffno_small_ood), (8, 2.0, 50.0)):
        rows += [_row(data_efficiency.NO, n, "diffusion", "f=1", no), _row(data_efficiency.NO, n, "diffusion",
                                                                           "random f", 1.5 * no),
                 _row(data_efficiency.FFNO, n, "diffusion", "f=1", 5.0),
                 _row(data_efficiency.FFNO, n, "diffusion", "random f", ffno),
                 {**_row(data_efficiency.NO, n, "richards", "random f", None), "unsolvable": "w"}]
    return {"table8": {"sizes": [4, 8], "test_samples": 2, "fine": 100, "coarse": 5, "epochs": 1, "width": 8,
                       "modes": 4, "unsolvable": ["richards/random f"], "rows": rows}}


def test_sub_commands_are_discovered_in_their_order():
    names = list(commands())
    assert names.index("classical") < names.index("data-efficiency") < names.index("ood")
    assert (commands()["data-efficiency"].ORDER, commands()["ood"].ORDER) == (4, 5)


def test_table8_targets_from_the_rows():
    efficiency, ood_margin = data_efficiency.targets(_table8(no_small=2.8, ffno_small_ood=60.0))
    # the worst cell: 2.8 / 2.0 in both diffusion cells
    assert efficiency["measured"] == pytest.approx(1.4) and efficiency["met"] is True
    assert ood_margin["measured"] == pytest.approx(60.0 / 4.2) and ood_margin["met"] is True  # 4 κ, random f
    efficiency, ood_margin = data_efficiency.targets(_table8(no_small=4.0, ffno_small_ood=5.0))
    assert efficiency["measured"] == pytest.approx(2.0) and efficiency["met"] is False
    assert ood_margin["measured"] == pytest.approx(5.0 / 6.0) and ood_margin["met"] is False


def test_absent_sections_give_the_same_target_names_without_a_measurement():
    for module, payload in ((data_efficiency, _table8(2.0, 60.0)), (ood, {"table13": {"rows": []}})):
        empty = module.targets({})
        assert [t["name"] for t in empty] == [t["name"] for t in module.targets(payload)]
        assert all(t["measured"] is None and t["met"] is None for t in empty)
    assert len(ood.targets({})) == 8  # four directions at two grids


def test_table13_targets_judge_each_direction():
    rows = [{"fine": 100, "problem": "diffusion", "train_forcing": "f=1", "convention": "paper", "train_samples": 4,
             "epochs": 1, "test_samples": 2, "in_l2_pct": 2.0, "ood_l2_pct": 30.0, "ood_over_in": 15.0,
             "paper_ood_l2_pct": 218.0},
            {"fine": 250, "problem": "richards", "train_forcing": "random f", "convention": "default",
             "train_samples": 4, "epochs": 1, "test_samples": 2, "in_l2_pct": 2.0, "ood_l2_pct": 10.0,
             "ood_over_in": 5.0, "paper_ood_l2_pct": 6554.0}]
    records = {t["name"]: t for t in ood.targets({"table13": {"rows": rows}})}
    met = records[ood._name("diffusion", "f=1", 100)]
    assert met["measured"] == 15.0 and met["met"] is True
    missed = records[ood._name("richards", "random f", 250)]
    assert missed["met"] is False and any("default convention" in c for c in missed["caveats"])
    assert records[ood._name("diffusion", "f=1", 250)]["measured"] is None


def test_nested_sets_share_their_first_kappa_and_the_largest_is_the_shared_one():
    from fem_ms.data import GMsFEMBasisConfig

    shared = GMsFEMBasisConfig(name="paper_basis_100", samples=384, fine=100, coarse=5, n_basis=8,
                               convention="paper", train_fraction=1.0)
    assert data_efficiency.basis_config(384).to_json() == shared.to_json()
    small = data_efficiency.basis_config(48)
    assert small.name.startswith("p26-data") and small.seed == shared.seed and small.convention == "paper"
    train = data_efficiency.multilevel("richards", "f=1", 24, 100, "paper")
    test = data_efficiency.multilevel("richards", "random f", 8, 100, "default", test=True)
    assert (train.seed, train.train_fraction, train.forcing) == (0, 1.0, "constant")
    assert (test.seed, test.train_fraction, test.forcing, test.convention) == (100_000, 0.0, "random", "default")


def _args(**overrides):
    base = dict(quick=True, epochs=None, width=None, modes=None, batch_size=4, lr=3e-3, test_samples=None)
    return argparse.Namespace(**{**base, **overrides})


@pytest.mark.parametrize("overrides, message", [({"sizes": [8, 4]}, "--sizes"), ({"epochs": 0}, "--epochs"),
                                                ({"lr": -1.0}, "--lr")])
def test_bad_data_efficiency_options_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        data_efficiency.run(_args(**{"sizes": None, **overrides}), {})


def test_ood_train_samples_must_match_the_grids():
    with pytest.raises(ValueError, match="one positive number per grid"):
        ood.run(_args(grids=[16, 32], train_samples=[4]), {})


@pytest.mark.torch
def test_ood_trains_and_tests_every_direction(tmp_path, monkeypatch):
    """A real (tiny) run: fine solves, F-FNO training, errors on both forcings."""
    monkeypatch.setenv("FEM_MS_DATA", str(tmp_path))
    section = ood.run(_args(grids=[50], train_samples=[4], epochs=1, width=4, modes=2, test_samples=2), {})["table13"]
    rows = section["rows"]
    assert [(r["problem"], r["train_forcing"]) for r in rows] == list(ood.PAPER)
    for row in rows:
        assert row["fine"] == 50 and row["in_l2_pct"] > 0 and row["ood_l2_pct"] > 0
        assert row["ood_over_in"] == pytest.approx(row["ood_l2_pct"] / row["in_l2_pct"])
        assert row["convention"] == ood.CONVENTION[row["problem"]] and row["train_cpu_s"] > 0


def test_committed_sections_give_the_stored_targets():
    document = json.loads((REPO / "benchmarks/results/gmsfem_no_paper.json").read_text())
    stored = {t["name"]: {**t, "caveats": [c for c in t["caveats"] if "re-derived" not in c]}
              for t in document["targets"]}  # benchmarks.rederive's note on a re-derived file
    for module in (data_efficiency, ood):
        for record in module.targets(document):
            assert stored[record["name"]] == record


def test_standalone_divides_a_random_forcing_by_its_training_scale(tmp_path):
    """The f channel enters the F-FNO as f / max|f| of the training set (a random forcing reaches
    ~10⁴); a model trained on f = 1 keeps f as it is."""
    import numpy as np
    import torch

    from fem_ms.data import MultilevelConfig, generate
    from fem_ms_torch.checkpoints import load_checkpoint
    from fem_ms_torch.rom import read_split
    from fem_ms_torch.standalone import StandaloneSolver, forcing_scale, train_standalone

    kwargs = dict(epochs=1, batch_size=2, width=4, depth=1, modes=2, progress=False)
    scales = {}
    for forcing in ("random", "constant"):
        data = generate(MultilevelConfig(name=forcing, samples=3, levels=(8,), forcing=forcing, convention="paper",
                                         train_fraction=1.0), tmp_path, progress=False)
        out = train_standalone(data, 8, tmp_path / f"{forcing}.pt", **kwargs)
        scales[forcing] = load_checkpoint(out)["meta"]["forcing_scale"]
        train = read_split(data, 8, "train")
        assert scales[forcing] == pytest.approx(float(np.abs(train["f"]).max()), rel=1e-6)
    assert scales["constant"] == 1.0 and scales["random"] > 100
    solver = StandaloneSolver(tmp_path / "random.pt")
    kappa, f = train["kappa"][0], 1e3 * np.ones((9, 9))
    scaled = solver(kappa, f)
    solver.forcing_scale = 1.0
    assert torch.isfinite(scaled).all() and not torch.allclose(scaled, solver(kappa, f))
    assert forcing_scale(torch.zeros(2, 3)) == 1.0
    with pytest.raises(ValueError, match="non-finite"):
        forcing_scale(torch.tensor([1.0, float("nan")]))


def test_a_section_written_by_another_sub_command_during_a_run_is_kept(tmp_path, monkeypatch):
    """Two sub-commands running at once write one file: the later writer keeps the earlier's section."""
    import types

    import benchmarks.gmsfem_no_paper as package
    from benchmarks.record import write_result

    out = tmp_path / "paper.json"

    def make(name, section, during=None):
        def run(args, earlier):
            if during is not None:
                during()
            return {section: {"value": name}}

        return types.SimpleNamespace(COMMAND=name, ORDER=0, SECTIONS=(section,), SUMMARY=name, __doc__=name,
                                     add_arguments=lambda parser: None, run=run, targets=lambda payload: [])

    first = make("first", "one")

    def other_run_finishes():  # the other sub-command writes its section while this one runs
        write_result(out, {"benchmark": "gmsfem_no_paper", "quick": False, "one": {"value": "first"}}, [])

    second = make("second", "two", during=other_run_finishes)
    monkeypatch.setattr(package, "commands", lambda: {"first": first, "second": second})
    package.main(["--out", str(out), "second"])
    document = json.loads(out.read_text())
    assert document["two"] == {"value": "second"} and document["one"]["value"] == "first"
    assert "provenance" in document["one"]  # stamped with the run that measured it
