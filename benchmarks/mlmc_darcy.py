"""MLMC training of an FNO on multilevel Darcy data vs single-level training at each resolution.

The data: ``multilevel`` Darcy (KLE κ, contrast 9600, f = 1), one κ per sample solved on the
8², 16², 32² and 64² grids (coarse κ: geometric means of the fine κ). Every run trains the same
FNO (κ features at the vertices → u) with Adam and a cosine schedule for the same number of
epochs and optimiser steps (⌈N_0 / B_0⌉ per epoch, B_0 = 16): the single-level baselines on
one resolution; MLMC with B_l = B_0 δ^-l, δ ∈ {2, 4, 8}, in two data regimes:

* ``mlmc-all-data`` — every level holds all N_0 samples (one fine dataset, coarsened; only
  the batches shrink with the level): the finest m ∈ {2, 3, 4} resolutions and the paper's
  "skip" pair 16² + 64², random and nested sampling (nested evaluates each resolution once per
  step, random two for every level but the coarsest);
* ``mlmc`` — scarce fine data, the geometric N_l = N_0 δ^-l (m = 4, random), and
  ``mlmc-optimal``, N_l = N_0 2^-(2k+d)l/2 (k = 1, d = 2, m = 4, δ = 2 batches).

Batch-size controls (1,000 optimiser steps or fewer): the 64² baseline at 20 epochs and with
B = 8 (20 epochs) and B = 4 (10 epochs), and MLMC 32² + 64² / 16² + 64² nested with B_0 = 8,
δ = 2 (20 epochs) and 32² + 64² with B_0 = 4 (10 epochs), named "… B_0=8 20 epochs".

``--all-cases`` adds δ = 1 (B_l = B_0: by construction dearer than the finest baseline, since
each correction evaluates two resolutions); the default leaves it out to fit the shared CPU. A
rerun with the same settings keeps the cases an interrupted run finished (each kept row records
the run that measured it). Measured: the relative L2 test error on the 64² test set and the
training cost (process CPU seconds of all epochs, one torch thread: the machine is shared, and
CPU time is far less disturbed by other processes than wall time, which is recorded as well).
Target (issue #7): an MLMC run within 5 % (relative) of the best-tuned single-level run's test
error in at most 50 % of its training time (the MLMC paper: the same accuracy at 60 %);
:func:`targets` says which run that is.

Default size: 400 training and 200 test samples, FNO width 16, 8 modes, depth 4, 40 epochs
(1,000 optimiser steps; at 10 epochs the runs were far from converged), one seed. ``--quick``:
a smoke run on a dataset of its own. Full size (a GPU; the paper's FNO settings):
``--train 800 --epochs 500 --width 32 --modes 12 --all-cases``.

    scripts/env python -m benchmarks.mlmc_darcy [--quick] [--out PATH]

Writes benchmarks/results/mlmc_darcy.json (mlmc_darcy_quick.json) and the Pareto plot beside it.
"""

from __future__ import annotations

import time

from .common import benchmark_arguments, cached_dataset, parse_benchmark_arguments
from .mlmc_common import ERROR_TARGET, compare_with_finest, run_cases, write_and_print
from .record import Target, threshold

RESOLUTIONS = (8, 16, 32, 64)
TIME_TARGET = 0.5
DATASET_SAMPLES = {False: 1000, True: 80}  # κ samples of the multilevel dataset (80 % train), full / quick


def _resolution(level_name: str) -> int:
    return int(level_name.split("x")[0])


def targets(payload: dict) -> list[dict]:
    """Issue 7's target against the best-tuned single-level run: an MLMC run within 5 % of its test
    error in at most half its training CPU time.

    The comparator is the cheapest single-level run whose error is within 5 % of the best
    single-level error (any resolution, batch size or number of epochs the run tried): a
    single-level baseline with an untuned batch size would credit MLMC with what a smaller batch
    buys any run.
    """
    rows, settings = payload["rows"], payload["settings"]
    single = [r for r in rows if r["kind"] == "single-level"]
    mlmc = [r for r in rows if r["kind"] != "single-level"]
    name = f"MLMC training time at the best single-level run's error (within {100 * (ERROR_TARGET - 1):.0f} %)"
    comparator = ("the cheapest single-level run within 5 % of the best single-level test error (any resolution, "
                  "batch size or epoch count this run tried); cost = process CPU seconds of training")
    caveats = ["one seed; test error = mean relative L2 on the finest grid's test set"]
    if not single or not mlmc:
        return [threshold(name, None, "<=", TIME_TARGET, "× the baseline's time", comparator,
                          settings["test_samples"], caveats, missing="no single-level or no MLMC run in this file")]
    best_error = min(r["test_loss"] for r in single)
    baseline = min((r for r in single if r["test_loss"] <= ERROR_TARGET * best_error), key=lambda r: r["time_s"])
    within = [r for r in mlmc if r["test_loss"] <= ERROR_TARGET * baseline["test_loss"]]
    caveats.append(f"baseline: {baseline['case']} ({baseline['time_s']:.1f} CPU s, error {baseline['test_loss']:.4f})")
    finest = max(_resolution(r["levels"][-1]) for r in single)
    paper_setting = next((r for r in single if _resolution(r["levels"][-1]) == finest
                          and r["batch_sizes"][0] == settings["batch_size_coarsest"]
                          and r["epochs"] == settings["epochs"]), None)
    if paper_setting is not None and paper_setting is not baseline:
        near = [r for r in mlmc if r["test_loss"] <= ERROR_TARGET * paper_setting["test_loss"]]
        if near:
            fastest = min(near, key=lambda r: r["time_s"])
            caveats.append(f"against {paper_setting['case']} (the paper's batch size, not tuned) the fastest MLMC run "
                           f"within 5 % is {fastest['case']} at {fastest['time_s'] / paper_setting['time_s']:.2f}× "
                           "its time: that baseline is not the best single-level run")
    if not within:
        closest = min(mlmc, key=lambda r: r["test_loss"])
        caveats.insert(0, f"no MLMC run came within 5 % of the baseline's error (closest: {closest['case']}, "
                          f"{closest['test_loss'] / baseline['test_loss']:.3f}×)")
        return [Target(name, f"≤ {TIME_TARGET:g}× the baseline's time", None, comparator,
                       settings["test_samples"], False, caveats).record()]
    fastest = min(within, key=lambda r: r["time_s"])
    caveats.insert(0, f"fastest MLMC run within 5 %: {fastest['case']} (error "
                      f"{fastest['test_loss'] / baseline['test_loss']:.3f}× the baseline's)")
    return [threshold(name, fastest["time_s"] / baseline["time_s"], "<=", TIME_TARGET, "× the baseline's time",
                      comparator, settings["test_samples"], caveats)]


def main(argv=None) -> None:
    parser = benchmark_arguments("mlmc_darcy", __doc__, "smoke run on a small dataset of its own: 48 training "
                                 "samples, 2 epochs, a few cases")
    parser.add_argument("--train", type=int, default=None, help="training samples (default 400)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 40)")
    parser.add_argument("--width", type=int, default=None, help="FNO width (default 16)")
    parser.add_argument("--modes", type=int, default=None, help="FNO modes per axis (default 8)")
    parser.add_argument("--batch", type=int, default=16, help="coarsest batch size B_0 (default 16)")
    # the single-level baselines' best of a few rates (docs/mlmc.md), shared by every run so that no baseline
    # is left undertrained
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 1e-2)")
    parser.add_argument("--all-cases", action="store_true",
                        help="also δ = 1 for every m")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    n_train = args.train or (48 if q else 400)
    epochs = args.epochs or (2 if q else 40)
    width, modes = args.width or (8 if q else 16), args.modes or (4 if q else 8)
    n_test = 16 if q else 200

    import torch

    torch.set_num_threads(1)
    from fem_ms.data import MultilevelConfig
    from fem_ms_torch.mlmc import GridLevel, darcy_levels
    from fem_ms_torch.mlmc.pareto import plot_pareto
    from fem_ms_torch.operators import FNO

    t_start = time.perf_counter()
    config = MultilevelConfig(name="multilevel_mlmc", samples=DATASET_SAMPLES[q], levels=RESOLUTIONS,
                              train_fraction=0.8)
    path = cached_dataset(config)
    train, stats = darcy_levels(path, RESOLUTIONS, "train")
    test, _ = darcy_levels(path, RESOLUTIONS, "test", stats)
    if n_train > len(train[0]):
        raise SystemExit(f"--train {n_train}: the dataset has {len(train[0])} training samples")
    train = [GridLevel(l.inputs[:n_train], l.targets[:n_train], l.name) for l in train]
    finest_test = GridLevel(test[-1].inputs[:n_test], test[-1].targets[:n_test], test[-1].name)

    def make_model():
        return FNO(3, 1, dim=2, width=width, depth=4, modes=modes)

    b0, seed = args.batch, 0
    cases = [("single-level", [RESOLUTIONS.index(n)], "random", 1.0, None) for n in RESOLUTIONS]
    if q:
        cases += [("mlmc", [2, 3], "random", 2.0, None), ("mlmc", [0, 1, 2, 3], "random", 8.0, None),
                  ("mlmc", [0, 1, 2, 3], "nested", 4.0, None), ("mlmc-optimal", [0, 1, 2, 3], "random", 2.0, 1.0)]
    else:
        # cheapest first, so that an interrupted run has the informative cases
        deltas = (1.0, 2.0, 4.0, 8.0) if args.all_cases else (2.0, 4.0, 8.0)
        for which in ([0, 1, 2, 3], [1, 2, 3], [2, 3], [1, 3]):  # [1, 3]: the paper's "skip" (16² → 64²)
            cases += [("mlmc-all-data", which, "random", d, None) for d in deltas[::-1]]
            cases += [("mlmc-all-data", which, "nested", d, None) for d in deltas[::-1]]
        cases += [("mlmc", [0, 1, 2, 3], "random", d, None) for d in deltas[::-1]]
        cases += [("mlmc-optimal", [0, 1, 2, 3], "random", 2.0, 1.0)]
    cases = [case + (b0, epochs) for case in cases]
    if not q:
        # batch-size controls, every one 1,000 optimiser steps or fewer: the 64² baseline at half
        # its epochs and with smaller batches, and MLMC with the coarse batch halved (B_0 = 8)
        half, quarter = max(1, epochs // 2), max(1, epochs // 4)
        cases += [("single-level", [3], "random", 1.0, None, 16, half),
                  ("single-level", [3], "random", 1.0, None, 8, half),
                  ("single-level", [3], "random", 1.0, None, 4, quarter),
                  ("mlmc-all-data", [2, 3], "nested", 2.0, None, 8, half),
                  ("mlmc-all-data", [1, 3], "nested", 2.0, None, 8, half),
                  ("mlmc-all-data", [2, 3], "nested", 2.0, None, 4, quarter)]
    out = args.out
    settings = {"dataset": config.to_json(), "train_samples": n_train, "test_samples": n_test, "epochs": epochs,
                "batch_size_coarsest": b0, "model": {"architecture": "fno", "width": width, "modes": modes, "depth": 4},
                "optimiser": f"Adam lr {args.lr:g}, cosine schedule over the epochs", "loss": "relative_l2",
                "seed": seed, "threads": 1}
    rows = run_cases("mlmc_darcy", q, out, settings, cases, train, finest_test, make_model, args.lr, targets,
                     seed=seed)
    finest = next(r for r in rows if r["case"] == f"single-level {train[-1].name} random δ=1")
    summary = compare_with_finest(rows, finest)
    plot = out.with_suffix(".png")
    plot_pareto(rows, plot, f"FNO on Darcy, {n_train} training samples, {epochs} epochs (CPU)",
                "relative L2 test error on 64² grid")
    payload = {"benchmark": "mlmc_darcy", "quick": q, "complete": True, "wall_s": time.perf_counter() - t_start,
               "settings": settings, "summary": summary, "plot": plot.name, "rows": rows}
    write_and_print(out, payload, targets, plot)


if __name__ == "__main__":
    main()
