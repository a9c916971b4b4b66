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
rerun with the same settings keeps the cases an interrupted run finished. Measured: the relative L2 test error on the 64² test set and the training cost
(process CPU seconds of all epochs, one torch thread: the machine is shared, and CPU time is
far less disturbed by other processes than wall time, which is recorded as well).
Target (issue #7): an MLMC run within 5 % (relative) of the 64² baseline's test error in at
most 50 % of its training time (the MLMC paper: the same accuracy at 60 %).

Default size (about 45 CPU-minutes of training): 400 training and 200 test samples, FNO width
16, 8 modes, depth 4, 40 epochs (1,000 optimiser steps; at 10 epochs the runs were far from
converged: the 64² baseline's error fell from 0.164 to 0.142 between 10 and 40 epochs, and
MLMC 32² + 64² nested δ = 4 went from 1.13× to 1.03× the baseline's), one seed. ``--quick``:
a smoke run. Full size (a GPU; the paper's FNO settings):
``--train 800 --epochs 500 --width 32 --modes 12 --all-cases``.

    scripts/env python -m benchmarks.mlmc_darcy [--quick] [--out PATH]

Writes benchmarks/results/mlmc_darcy.json and the Pareto plot mlmc_darcy.png beside it.
"""

from __future__ import annotations

import json
import time

from .common import RESULTS, benchmark_arguments, cached_dataset, parse_benchmark_arguments, print_table, write_json

RESOLUTIONS = (8, 16, 32, 64)
TIME_TARGET, ERROR_TARGET = 0.5, 1.05


def main(argv=None) -> None:
    parser = benchmark_arguments(__doc__, "smoke run: 48 training samples, 2 epochs, a few cases")
    parser.add_argument("--train", type=int, default=None, help="training samples (default 400)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 40)")
    parser.add_argument("--width", type=int, default=None, help="FNO width (default 16)")
    parser.add_argument("--modes", type=int, default=None, help="FNO modes per axis (default 8)")
    parser.add_argument("--batch", type=int, default=16, help="coarsest batch size B_0 (default 16)")
    # the baselines' best rate (test rel. L2 at 32² for 1e-3 / 3e-3 / 1e-2: 0.264 / 0.219 / 0.198; at 64² for
    # 3e-3 / 1e-2 / 2e-2: 0.190 / 0.164 / 0.169), shared by every run so that no baseline is left undertrained
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 1e-2)")
    parser.add_argument("--all-cases", action="store_true",
                        help="also δ = 1 for every m")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    n_train = args.train or (48 if q else 400)
    epochs = args.epochs or (2 if q else 40)
    width, modes = args.width or (8 if q else 16), args.modes or (4 if q else 8)
    n_test = 20 if q else 200

    import torch

    torch.set_num_threads(1)
    from fem_ms_torch.mlmc.pareto import pareto_front, plot_pareto, run_case
    from fem_ms.data import MultilevelConfig
    from fem_ms_torch.mlmc import GridLevel, batch_sizes, darcy_levels, sample_counts
    from fem_ms_torch.operators import FNO

    t_start = time.perf_counter()
    config = MultilevelConfig(name="multilevel_mlmc", samples=1000, levels=RESOLUTIONS, train_fraction=0.8)
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
    rows = []
    out = args.out or RESULTS / ("mlmc_darcy_quick.json" if q else "mlmc_darcy.json")
    settings = {"dataset": config.to_json(), "train_samples": n_train, "test_samples": n_test, "epochs": epochs,
                "batch_size_coarsest": b0, "model": {"architecture": "fno", "width": width, "modes": modes, "depth": 4},
                "optimiser": f"Adam lr {args.lr:g}, cosine schedule over the epochs", "loss": "relative_l2",
                "seed": seed, "threads": 1}
    done = {}
    if out.is_file():  # an interrupted run with the same settings: keep its finished cases
        previous = json.loads(out.read_text())
        if previous.get("settings") == settings:
            done = {r["case"]: r for r in previous["rows"]}
    for kind, which, sampling, delta, k, case_b0, case_epochs in cases:
        levels = [train[i] for i in which]
        m = len(levels)
        if kind == "mlmc-optimal":
            counts = sample_counts("optimal", m, n_train, k=k, d=2)
        elif kind == "mlmc-all-data":
            counts = [n_train] * m
        else:
            counts = sample_counts("geometric", m, n_train, delta=delta)
        # a level cannot batch more samples than it has (the optimal allocation thins out fast)
        sizes = [min(b, n) for b, n in zip(batch_sizes(m, case_b0, delta), counts)]
        name = f"{kind} {'+'.join(l.name for l in levels)} {sampling} δ={delta:g}"
        if (case_b0, case_epochs) != (b0, epochs):
            name += f" B_0={case_b0} {case_epochs} epochs"
        if name in done:
            rows.append(done[name])
            continue
        rows.append(run_case(name, levels, finest_test, make_model, counts, sizes, sampling, case_epochs,
                             "relative_l2", seed, lr=args.lr, kind=kind, delta=delta))
        print(f"{name}: time {rows[-1]['time_s']:.1f} s, test rel. L2 {rows[-1]['test_loss']:.4f}", flush=True)
        write_json(out, {"benchmark": "mlmc_darcy", "quick": q, "complete": False, "settings": settings, "rows": rows})

    finest = next(r for r in rows if r["case"] == f"single-level {train[-1].name} random δ=1")
    for r in rows:
        r["time_vs_finest"] = r["time_s"] / finest["time_s"]
        r["error_vs_finest"] = r["test_loss"] / finest["test_loss"]
        r["meets_target"] = r["kind"] != "single-level" and r["time_vs_finest"] <= TIME_TARGET \
            and r["error_vs_finest"] <= ERROR_TARGET
    pareto_front(rows)
    mlmc = [r for r in rows if r["kind"] != "single-level"]
    within = [r for r in mlmc if r["error_vs_finest"] <= ERROR_TARGET]
    summary = {"finest_baseline_time_s": finest["time_s"], "finest_baseline_test_loss": finest["test_loss"],
               "target": f"time <= {TIME_TARGET:.0%} of the 64^2 baseline with test error <= {ERROR_TARGET:.2f} x",
               "target_met_by": [r["case"] for r in mlmc if r["meets_target"]],
               "fastest_within_5pct": min(within, key=lambda r: r["time_s"])["case"] if within else None,
               "fastest_within_5pct_time_ratio": min(r["time_vs_finest"] for r in within) if within else None,
               "best_mlmc_error_ratio": min(r["error_vs_finest"] for r in mlmc),
               # the honest comparator: single-level 64² runs with other batch sizes or fewer steps
               "fastest_single_level_within_5pct_time_ratio": min(
                   (r["time_vs_finest"] for r in rows if r["kind"] == "single-level" and r is not finest
                    and r["levels"] == [train[-1].name] and r["error_vs_finest"] <= ERROR_TARGET), default=None),
               "pareto_cases": [r["case"] for r in rows if r["pareto"]]}
    plot = out.with_suffix(".png")
    plot_pareto(rows, plot, f"FNO on Darcy, {n_train} training samples, {epochs} epochs (CPU)",
                "relative L2 test error on 64² grid")
    write_json(out, {"benchmark": "mlmc_darcy", "quick": q, "complete": True, "wall_s": time.perf_counter() - t_start,
                     "settings": settings, "summary": summary, "plot": plot.name, "rows": rows})
    print_table(sorted(rows, key=lambda r: r["time_s"]),
                [("case", "case", ""), ("time_s", "time [s]", ".1f"), ("time_vs_finest", "t/t_64", ".2f"),
                 ("test_loss", "test relL2", ".4f"), ("error_vs_finest", "e/e_64", ".3f"), ("pareto", "pareto", "")])
    print(f"wrote {out} and {plot}")


if __name__ == "__main__":
    main()
