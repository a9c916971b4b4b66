"""What the MLMC-over-grids benchmarks share (:mod:`benchmarks.mlmc_darcy`,
:mod:`benchmarks.mlmc_navier_stokes`): a case's sample counts and batch sizes, its name, the
resumable loop over cases, and the comparison of every run with the finest single-level one.

A case is ``(kind, which, sampling, delta, k, b0, epochs)``: ``kind`` "single-level" (one
level), "mlmc" (geometric N_l = N δ^-l), "mlmc-all-data" (N samples on every level, only the
batches shrink) or "mlmc-optimal" (N_l ∝ 2^-(2k+d)l/2); ``which`` the indices of its levels
among the training levels, coarsest first; B_l = B_0 δ^-l.
"""

from __future__ import annotations

import json

from .common import print_table
from .record import reused, write_result

__all__ = ["ERROR_TARGET", "schedule", "case_name", "run_cases", "compare_with_finest", "fastest_within"]

ERROR_TARGET = 1.05  # "within 5 %" of a reference test error


def schedule(kind: str, m: int, n_train: int, delta: float, b0: int, k: float | None = None,
             dim: int = 2) -> tuple[list[int], list[int]]:
    """(N_l, B_l) of a case with ``m`` levels: see the module docstring. A level batches at most
    the samples it has (the optimal allocation thins out fast)."""
    from fem_ms_torch.mlmc import batch_sizes, sample_counts

    if kind == "mlmc-optimal":
        counts = sample_counts("optimal", m, n_train, k=k, d=dim)
    elif kind in ("mlmc-all-data", "single-level"):
        counts = [n_train] * m
    elif kind == "mlmc":
        counts = sample_counts("geometric", m, n_train, delta=delta)
    else:
        raise ValueError(f"unknown case kind {kind!r}")
    return counts, [min(b, n) for b, n in zip(batch_sizes(m, b0, delta), counts)]


def case_name(kind: str, level_names, sampling: str, delta: float, b0: int, epochs: int, default_b0: int,
              default_epochs: int) -> str:
    """``"{kind} {levels joined by +} {sampling} δ={delta}"``, with ``B_0=… … epochs`` where they
    differ from the run's defaults (the batch-size controls)."""
    name = f"{kind} {'+'.join(level_names)} {sampling} δ={delta:g}"
    if (b0, epochs) != (default_b0, default_epochs):
        name += f" B_0={b0} {epochs} epochs"
    return name


def run_cases(benchmark: str, quick: bool, out, settings: dict, cases, train, test, make_model, lr: float,
              targets, loss: str = "relative_l2", seed: int = 0) -> list[dict]:
    """Train every case (:func:`fem_ms_torch.mlmc.pareto.run_case`) and return their rows.

    After each case the rows so far are written to ``out`` (``complete: false``, with their
    targets); a rerun with the same ``settings`` keeps the cases that file holds, each stamped
    with the run that measured it.
    """
    from fem_ms_torch.mlmc.pareto import run_case

    done = {}
    if out.is_file():  # an interrupted run with the same settings: keep its finished cases, and whose they are
        previous = json.loads(out.read_text())
        if previous.get("settings") == settings:
            done = {r["case"]: r for r in reused(previous["rows"], previous)}
    rows = []
    default_b0, default_epochs = settings["batch_size_coarsest"], settings["epochs"]
    for kind, which, sampling, delta, k, b0, epochs in cases:
        levels = [train[i] for i in which]
        counts, sizes = schedule(kind, len(levels), len(train[0]), delta, b0, k)
        name = case_name(kind, [level.name for level in levels], sampling, delta, b0, epochs, default_b0,
                         default_epochs)
        if name in done:
            rows.append(done[name])
            continue
        rows.append(run_case(name, levels, test, make_model, counts, sizes, sampling, epochs, loss, seed, lr=lr,
                             kind=kind, delta=delta))
        print(f"{name}: time {rows[-1]['time_s']:.1f} s, test rel. L2 {rows[-1]['test_loss']:.4f}", flush=True)
        partial = {"benchmark": benchmark, "quick": quick, "complete": False, "settings": settings, "rows": rows}
        write_result(out, partial, targets(partial))
    return rows


def fastest_within(rows: list[dict], error: float, factor: float = ERROR_TARGET) -> dict | None:
    """The row of least ``time_s`` among those with ``test_loss`` ≤ ``factor`` × ``error`` (None: none)."""
    within = [r for r in rows if r["test_loss"] <= factor * error]
    return min(within, key=lambda r: r["time_s"]) if within else None


def compare_with_finest(rows: list[dict], finest: dict) -> dict:
    """Add ``time_vs_finest``, ``error_vs_finest`` and ``pareto`` to every row; return the summary
    both benchmarks record against the finest single-level run ``finest``."""
    from fem_ms_torch.mlmc.pareto import pareto_front

    for r in rows:
        r["time_vs_finest"] = r["time_s"] / finest["time_s"]
        r["error_vs_finest"] = r["test_loss"] / finest["test_loss"]
    pareto_front(rows)
    mlmc = [r for r in rows if r["kind"] != "single-level"]
    fastest = fastest_within(mlmc, finest["test_loss"])
    return {"finest_baseline_time_s": finest["time_s"], "finest_baseline_test_loss": finest["test_loss"],
            "fastest_within_5pct": fastest["case"] if fastest else None,
            "fastest_within_5pct_time_ratio": fastest["time_vs_finest"] if fastest else None,
            "best_mlmc_error_ratio": min((r["error_vs_finest"] for r in mlmc), default=None),
            # the honest comparator: single-level runs on the finest grid with other batch sizes or fewer steps
            "fastest_single_level_within_5pct_time_ratio": min(
                (r["time_vs_finest"] for r in rows if r["kind"] == "single-level" and r is not finest
                 and r["levels"] == finest["levels"] and r["error_vs_finest"] <= ERROR_TARGET), default=None),
            "pareto_cases": [r["case"] for r in rows if r["pareto"]]}


def write_and_print(out, payload: dict, targets, plot) -> None:
    """Write the run's JSON (with its targets) and print its rows, fastest first."""
    write_result(out, payload, targets(payload))
    print_table(sorted(payload["rows"], key=lambda r: r["time_s"]),
                [("case", "case", ""), ("time_s", "time [s]", ".1f"), ("time_vs_finest", "t/t_64", ".2f"),
                 ("test_loss", "test relL2", ".4f"), ("error_vs_finest", "e/e_64", ".3f"), ("pareto", "pareto", "")])
    print(f"wrote {out} and {plot}")
