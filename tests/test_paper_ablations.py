"""The ``ablations`` and ``break-even`` sub-commands of benchmarks.gmsfem_no_paper (Tables 11,
12, 16): their targets from stored figures, the break-even arithmetic, and the evaluation of
several bases on the same samples."""

import pytest

from benchmarks.gmsfem_no_paper import ablations, break_even


def _row(problem, forcing, method, l2, failed=False):
    row = {"problem": problem, "forcing": forcing, "method": method, "samples": 0 if failed else 2,
           "l2_mean_pct": None if failed else l2, "h1_mean_pct": None if failed else 10 * l2}
    if failed:
        row.update(failed=2, failure="max |w| > 30")
    return row


def _section(errors: dict, unsolved=("richards", "random f")) -> dict:
    """{method: (diffusion f=1 L2, richards f=1 L2)} -> a section with an unsolved cell."""
    rows = []
    for cell_index, cell in enumerate((("diffusion", "f=1"), ("richards", "f=1"), unsolved)):
        for method, l2 in {ablations.SLEPC: (1.0, 1.5), **errors}.items():
            rows.append(_row(*cell, method, l2[cell_index] if cell != unsolved else None, failed=cell == unsolved))
    return {"setup": {"test_samples": 2}, "rows": rows}


def test_table11_target_is_the_worst_relative_spread_over_the_solved_cells():
    models = {ablations.label("sal-pr", 8, v): (2.0 + 0.1 * i, 3.0) for i, v in enumerate(ablations.VECTORS)}
    record = ablations.targets({"table11": _section(models)})[0]
    assert record["measured"] == pytest.approx(0.3 / 2.0) and record["met"] is False  # 15 % > 10 %
    assert any("richards/random f: no solution" in c for c in record["caveats"])
    models = {name: (2.0, 3.0 + 0.01 * i) for i, name in enumerate(models)}
    assert ablations.targets({"table11": _section(models)})[0]["met"] is True


def test_table12_targets_compare_each_subspace_loss_with_rbfl2_in_every_solved_cell():
    models = {ablations.label(loss, p): (2.0, 3.0) for loss, p in ablations.TABLE12_MODELS}
    models[ablations.label("rbfl2", 0)] = (2.5, 2.9)  # RBFL2 better at Richards only
    records = ablations.targets({"table12": _section(models)})[1:]
    assert len(records) == 4
    for record in records:
        assert record["measured"] == pytest.approx(3.0 / 2.9) and record["met"] is False


def test_the_targets_are_the_same_list_whatever_ran():
    names = [r["name"] for r in ablations.targets({}) + break_even.targets({})]
    assert len(names) == 7 and all(r["measured"] is None for r in ablations.targets({}) + break_even.targets({}))


def _measured(**changes):
    one = {"dim": 3, "fine": 50, "coarse": 5, "samples": 2, "cpu_s": 80.0, "wall_s": 100.0, "t_gmsfem_cpu_s": 40.0,
           "t_gmsfem_wall_s": 50.0, "t_inf_cpu_s": 2.0, "t_inf_wall_s": 3.0, "train_cpu_per_kappa_epoch_s": 1.5}
    two = {"samples": 2, "cpu_max_s": 42.0, "cpu_sum_s": 82.0, "wall_s": 60.0}
    return break_even.measured_row("50^3", {**one, **changes}, two)


def test_break_even_solves_the_papers_equation():
    row = break_even.break_even(_measured())
    train = 1.5 * 192 * 20
    assert row["t_data_cpu_s"] == 40.0 and row["t_data_2ranks_s"] == 21.0 and row["t_train_cpu_s"] == train
    assert row["x_sequential"] == pytest.approx((40.0 * 192 + train) / (40.0 - 2.0))
    assert row["x_2ranks"] == pytest.approx((21.0 * 192 + train) / (40.0 - 2.0))
    records = break_even.targets({"table16": {"rows": [row]}})
    assert records[0]["measured"] == pytest.approx(row["x_sequential"]) and records[0]["met"] is True  # 354 < 1090
    assert records[1]["measured"] is None and "table4_training" not in row  # no 3D training recorded
    never = break_even.break_even(_measured(t_inf_cpu_s=40.0))
    assert never["x_sequential"] is None
    assert break_even.targets({"table16": {"rows": [never]}})[0]["met"] is None
    # the measured figures alone give the row back (``--reuse``)
    assert break_even.break_even({k: row[k] for k in break_even.MEASURED}) == row


def test_break_even_takes_table4s_3d_training_at_its_size():
    training = {"dataset_config": {"dim": 3, "fine": 50, "coarse": 5, "samples": 6}, "train_cpu_s": 1000.0,
                "train_config": {"epochs": 3, "width": 12, "modes": 6}}
    row = break_even.break_even(_measured(), training)
    assert row["x_table4_training_sequential"] == pytest.approx((40.0 * 6 + 1000.0) / 38.0)
    assert row["x_table4_training_2ranks"] == pytest.approx((21.0 * 6 + 1000.0) / 38.0)
    assert row["t_train_cpu_s"] == 1.5 * 192 * 20  # the recipe's row is unchanged
    record = break_even.targets({"table16": {"rows": [row]}})[1]
    assert record["measured"] == pytest.approx(row["x_table4_training_sequential"]) and record["met"] is True
    assert "table4_training" not in break_even.break_even(_measured(fine=20), training)  # another size
    with pytest.raises(ValueError, match="lacks what Table 16 needs"):
        break_even.break_even(_measured(), {"train_cpu_s": 1.0})


def test_evaluate_compares_several_bases_on_the_same_samples():
    from benchmarks.compare import Method
    from benchmarks.gmsfem_no_paper.paper import evaluate

    methods = [Method(f"slepc {n}", "slepc", {"progress": False}, n) for n in (2, 6)]
    rows = evaluate(20, 2, ["diffusion/f=1", "richards/f=1"], 1, 0.35, 0.75, methods=methods)
    by = {(r["problem"], r["method"]): r for r in rows}
    assert set(by) == {(p, f"slepc {n}") for p in ("diffusion", "richards") for n in (2, 6)}
    for problem in ("diffusion", "richards"):  # a larger spectral space is more accurate
        assert by[problem, "slepc 6"]["l2_mean_pct"] < by[problem, "slepc 2"]["l2_mean_pct"]
    assert evaluate(20, 2, ["diffusion/f=1"], 1, 0.35, 0.75)[0]["method"] == "slepc"  # the default: SLEPc
