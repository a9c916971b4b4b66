"""The benchmarks' JSON records: one form for every file, targets that follow from the stored
figures, provenance of reused rows, and quick runs that keep the schema of the full ones."""

import importlib
import json
import os
import subprocess
import sys

import pytest

from benchmarks.record import RESULTS, TARGET_KEYS, check_targets, reused, threshold

BENCHMARKS = ("learned_trust", "fine_solve", "gmsfem_offline", "gmsfem_accuracy", "basis_speed", "gmsfem_no_accuracy",
              "local_no", "local_no_flows",
              "mlmc_darcy", "mlmc_cylinder", "mlmc_navier_stokes", "gpo", "datagen", "gmsfem_no_paper",
              "operator_baselines", "scale_3d")
COMMITTED = sorted(RESULTS.glob("*.json"))
# a benchmark with sub-commands: the one its quick run here runs (the cheapest; each writes the whole schema)
SUB_COMMAND = {"gmsfem_no_paper": ["classical", "--tables", "2"]}
HEADER = ("created", "machine", "versions", "benchmark", "targets")


def _module(document):
    return importlib.import_module(f"benchmarks.{document['benchmark']}")


def test_every_benchmark_is_listed(repo):
    scripts = {p.stem for p in (repo / "benchmarks").glob("*.py")} - {"__init__", "common", "compare", "record",
                                                                       "rederive", "mlmc_common"}
    scripts |= {p.parent.name for p in (repo / "benchmarks").glob("*/__init__.py")}  # a benchmark with sub-commands
    assert scripts == set(BENCHMARKS)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_result_has_valid_targets(path):
    document = json.loads(path.read_text())
    missing = [k for k in HEADER if k not in document]
    assert not missing, f"{path.name} lacks {missing}"
    check_targets(document["targets"], path.name)
    for key in ("cpu", "cores"):  # the load average and the device were recorded later
        assert key in document["machine"], f"{path.name}: machine lacks {key!r}"
    assert document["versions"].get("git_commit"), f"{path.name}: no git commit in versions"


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_targets_follow_from_the_stored_figures(path):
    """The stored targets are what the benchmark's ``targets`` makes of the stored figures (a
    re-derived file adds one caveat saying so): a changed target cannot drift from the files."""
    document = json.loads(path.read_text())
    stored = document["targets"]
    derived = _module(document).targets(document)
    assert [t["name"] for t in stored] == [t["name"] for t in derived]
    for s, d in zip(stored, derived):
        note = ["re-derived" in c for c in s["caveats"]]
        assert any(note) == ("rederived" in document), f"{path.name}: {s['name']}: re-derived note and file disagree"
        caveats = [c for c, n in zip(s["caveats"], note) if not n]
        assert {**s, "caveats": caveats} == d, f"{path.name}: {s['name']!r} differs from targets(payload)"


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_reused_rows_name_the_run_that_measured_them(path):
    document = json.loads(path.read_text())
    for key in ("rows", "cases"):
        for row in document.get(key, []):
            if "provenance" in row:
                p = row["provenance"]
                assert set(p) == {"created", "git_commit"} and p["created"] and p["git_commit"], (path.name, row)
                assert (p["created"], p["git_commit"]) != (document["created"], document["versions"]["git_commit"])


def test_reused_keeps_a_rows_own_provenance():
    earlier = {"created": "2026-01-02T00:00:00+00:00", "versions": {"git_commit": "bbbbbbb"},
               "rows": [{"case": "a"}, {"case": "b", "provenance": {"created": "2026-01-01T00:00:00+00:00",
                                                                  "git_commit": "aaaaaaa"}}]}
    rows = reused(earlier["rows"], earlier)
    assert rows[0]["provenance"] == {"created": "2026-01-02T00:00:00+00:00", "git_commit": "bbbbbbb"}
    assert rows[1]["provenance"]["git_commit"] == "aaaaaaa"
    assert "provenance" not in earlier["rows"][0]  # the earlier file's rows are left alone


def test_threshold_judges_the_stated_target():
    assert threshold("t", 2.9, ">=", 3.0, "×", "c", 1)["met"] is False
    assert threshold("t", 3.0, ">=", 3.0, "×", "c", 1)["met"] is True
    assert threshold("t", 95.0, "in", (90, 98), " %", "c", 1)["met"] is True
    missing = threshold("t", None, "<", 1.0, "", "c", None, missing="case not run")
    assert missing["met"] is None and missing["caveats"] == ["case not run"]
    assert list(missing) == list(TARGET_KEYS)


@pytest.mark.parametrize("change, message", [
    ({"met": "yes"}, "'met' must be"), ({"measured": float("nan")}, "finite number"), ({"n": 0}, "positive integer"),
    ({"caveats": "one"}, "list of strings"), ({"measured": None, "met": True}, "nothing was measured"),
    ({"extra": 1}, "exactly the keys")])
def test_check_targets_names_the_bad_key(change, message):
    record = {**threshold("t", 1.0, "<", 2.0, "", "c", 3), **change}
    with pytest.raises(ValueError, match=message):
        check_targets([record], "file.json")


def _mlmc_row(case, kind, level, time_s, loss, batch=16, epochs=40):
    return {"case": case, "kind": kind, "levels": [level], "time_s": time_s, "test_loss": loss,
            "batch_sizes": [batch], "epochs": epochs}


def test_mlmc_darcy_compares_with_the_best_tuned_single_level_run():
    """An MLMC run at 0.45× the paper-setting baseline's time is no win when a single-level run
    with a smaller batch reaches the same error in 0.3× of it."""
    from benchmarks.mlmc_darcy import targets

    rows = [_mlmc_row("single 64", "single-level", "64x64", 100.0, 0.140),
            _mlmc_row("single 64 B=4", "single-level", "64x64", 30.0, 0.141, batch=4, epochs=10),
            _mlmc_row("single 32", "single-level", "32x32", 20.0, 0.300),
            _mlmc_row("mlmc 32+64", "mlmc-all-data", "64x64", 45.0, 0.142)]
    (record,) = targets({"rows": rows, "settings": {"test_samples": 200, "batch_size_coarsest": 16, "epochs": 40}})
    assert record["met"] is False and record["measured"] == pytest.approx(1.5)
    assert "single 64 B=4" in " ".join(record["caveats"])


def test_mlmc_darcy_without_an_mlmc_run_near_the_baseline_is_a_miss():
    from benchmarks.mlmc_darcy import targets

    rows = [_mlmc_row("single 64", "single-level", "64x64", 100.0, 0.140),
            _mlmc_row("mlmc", "mlmc", "64x64", 10.0, 0.500)]
    (record,) = targets({"rows": rows, "settings": {"test_samples": 20, "batch_size_coarsest": 16, "epochs": 40}})
    assert record["met"] is False and record["measured"] is None


def test_mlmc_navier_stokes_compares_with_the_fastest_single_level_run_at_the_64x64_error():
    """The comparator is the cheapest single-level run within 5 % of the 64² baseline's error: MLMC
    at 0.4× the 32² run's time meets the target; a 16² run as accurate and cheaper than MLMC
    turns it into a miss; no MLMC run within 5 % is a miss with nothing measured."""
    from benchmarks.mlmc_navier_stokes import targets

    settings = {"test_samples": 40, "batch_size_coarsest": 8, "epochs": 20}
    rows = [_mlmc_row("single 64", "single-level", "64x64", 100.0, 0.050, batch=8, epochs=20),
            _mlmc_row("single 32", "single-level", "32x32", 30.0, 0.051, batch=8, epochs=20),
            _mlmc_row("single 16", "single-level", "16x16", 10.0, 0.080, batch=8, epochs=20),
            _mlmc_row("mlmc 16+32", "mlmc", "32x32", 12.0, 0.052)]
    (record,) = targets({"rows": rows, "settings": settings})
    assert record["met"] is True and record["measured"] == pytest.approx(0.4)
    caveats = " ".join(record["caveats"])
    assert "comparator: single 32" in caveats and "0.12× the time (paper: 0.09×)" in caveats
    rows[2]["test_loss"] = 0.0524
    (record,) = targets({"rows": rows, "settings": settings})
    assert record["met"] is False and record["measured"] == pytest.approx(1.2)
    rows[3]["test_loss"] = 0.060
    (record,) = targets({"rows": rows, "settings": settings})
    assert record["met"] is False and record["measured"] is None and "closest: mlmc 16+32" in record["caveats"][0]
    (record,) = targets({"rows": rows[1:], "settings": settings})  # no 64² baseline: nothing to judge
    assert record["met"] is None and record["measured"] is None


def test_local_no_backbones_at_equal_width_are_not_scored():
    """A LocalNO backbone trained at the F-FNO's width (with several times its parameters) does not
    answer 'at least as accurate at equal parameters'; at matched parameters it does."""
    from benchmarks.local_no import targets

    rows = [{"method": "GMsFEM (SLEPc)", "test_kappa": 3, "l2_mean_pct": 5.0},
            {"method": "GMsFEM-NO (ffno)", "test_kappa": 3, "l2_mean_pct": 20.0},
            {"method": "GMsFEM-NO (localno)", "test_kappa": 3, "l2_mean_pct": 15.0}]
    payload = {"setup": {"baseline_width": 20, "budget_cpu_s_per_model": 45.0}, "backbones": [],
               "gmsfem_no": {"rows": rows}}
    record = targets(payload)[1]
    assert record["met"] is None and record["measured"] is None
    rows[1].update(width=16, params_per_kind_full=19000)
    rows[2].update(width=6, params_per_kind_full=18000)
    record = targets(payload)[1]
    assert record["met"] is True and record["measured"] == pytest.approx(-25.0)


def _flows_row(task, model, error, error_2x, seeds=2):
    return {"task": task, "model": model, "seeds": seeds, "n_test": 50, "width": 20, "params": 1000, "steps_mean": 10,
            "test_error_train_res_mean": error, "test_error_train_res_std": 0.0, "test_error_2x_res_mean": error_2x,
            "test_error_2x_res_std": 0.0}


def test_local_no_flows_scores_the_best_local_variant_on_the_better_flow():
    """The headline target is met when the best local variant of either flow is ≥ 30 % below its
    baseline (FNO / SFNO); each flow's own targets judge that flow alone, at both resolutions."""
    from benchmarks.local_no_flows import NS, SPHERE, summary, targets

    runs = [{"task": NS, "model": m, "seed": s, "width": 20, "params": 1000, "steps": 10, "n_test": 50,
             "test_error_train_res": e, "test_error_2x_res": e2}
            for s in (0, 1) for m, e, e2 in (("FNO", 0.10, 0.12), ("FNO+diff", 0.08, 0.11), ("FNO+DISCO", 0.06, 0.13))]
    runs += [{"task": SPHERE, "model": m, "seed": s, "width": 20, "params": 1000, "steps": 10, "n_test": 64,
              "test_error_train_res": e, "test_error_2x_res": e}
             for s in (0, 1) for m, e in (("SFNO", 0.2), ("SFNO+DISCO", 0.19))]
    payload = {"setup": {"budget_cpu_s_per_model": 60.0}, "summary": summary(runs)}
    assert len(targets(payload)) == 5  # the headline, then each flow at both resolutions
    headline = targets(payload)[0]
    assert headline["met"] is True and headline["measured"] == pytest.approx(-40.0) and headline["n"] == 50
    ns_2x = next(t for t in targets(payload) if t["name"].startswith("Navier") and "2x" in t["name"])
    assert ns_2x["met"] is False and ns_2x["measured"] == pytest.approx(100 * (0.11 / 0.12 - 1))
    assert "best local variant: FNO+diff" in ns_2x["caveats"]
    sphere = next(t for t in targets(payload) if t["name"].startswith("shallow") and "2x" not in t["name"])
    assert sphere["met"] is False and sphere["measured"] == pytest.approx(-5.0)
    # without the baseline nothing is scored
    payload["summary"] = summary([r for r in runs if r["model"] not in ("FNO", "SFNO")])
    assert all(t["measured"] is None and t["met"] is None for t in targets(payload))


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_quick_run_writes_the_full_schema(name, repo, tmp_path):
    """Each benchmark's --quick runs end to end and writes the header and targets every result
    carries (the committed full-size files pass the same checks above)."""
    out = tmp_path / f"{name}.json"
    # os.environ: without the OMPI_/PMIX_ variables of this process's MPI singleton, which would make
    # the benchmark's own mpiexec fail
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *SUB_COMMAND.get(name, []), "--quick", "--out",
                           str(out)], cwd=repo,
                          capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-4000:]
    document = json.loads(out.read_text())
    assert document["benchmark"] == name and document["quick"] is True
    assert [k for k in HEADER + ("started",) if k not in document] == []
    for key in ("cpu", "cores", "cores_usable", "load_average_1_5_15min_at_start", "load_average_1_5_15min",
                "device", "OMP_NUM_THREADS"):
        assert key in document["machine"], f"machine lacks {key!r}"
    assert document["versions"]["git_commit"] and isinstance(document["versions"]["git_dirty"], bool)
    check_targets(document["targets"], out.name)
    assert all(t["met"] in (True, False, None) for t in document["targets"])
    assert _module(document).targets(document) == document["targets"]


def test_the_targets_table_of_the_docs_states_what_the_files_record(repo):
    """Every row of docs/benchmarks.md's targets table: the file has that target, with that
    measured figure (3 significant digits) and that verdict."""
    import re

    text = (repo / "docs" / "benchmarks.md").read_text()
    rows = re.findall(r"^\| `([\w.]+\.json)` \| (.+?) \| (.+?) \| (.+?) \| (.+?) \| (.+?) \|$", text, re.M)
    assert len(rows) > 10
    for file, name, _, measured, _, verdict in rows:
        records = {t["name"].replace("^2", "²").replace("^3", "³"): t
                   for t in json.loads((RESULTS / file).read_text())["targets"]}
        assert name in records, (file, name)
        record = records[name]
        figure = "–" if record["measured"] is None else f"{record['measured']:.3g}"
        stated = {True: "met", False: "**missed**", None: "not measured"}[record["met"]]
        assert (measured.replace("−", "-"), verdict) == (figure, stated), (file, name)
