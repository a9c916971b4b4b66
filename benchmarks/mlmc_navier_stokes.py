"""MLMC training of an FNO-3d on 2D Navier–Stokes (vorticity on the torus) vs single-level training.

The MLMC paper's third case (Rowbottom et al., §3.1 and App. B.3): w₀ ~ N(0, 7^{3/2}(−Δ+49I)^{−2.5}),
f = 0.1(sin 2π(x+y) + cos 2π(x+y)), ν = 10⁻³, solved pseudo-spectrally here by
:mod:`fem_ms.torus_vorticity` on the ``--solve`` grid (64²) and kept at 64², 32², 16² and 8²
(every level the same trajectory, down-sampled), snapshots at t = 1, 2, …, T. The operator learned:
the vorticity at t = 1 … T_in → the vorticity at t = T_in + 1 … T, by an FNO-3d (Li et al.'s:
the input snapshots are channels repeated along the output time axis, coordinates appended,
spectral convolutions in (x, y, t), the time axis zero-padded since it is not periodic), here
neuraloperator's ``FNO`` with three-axis modes through the plugin's registry.

Every run trains the same FNO-3d with Adam and a cosine schedule for the same number of epochs
(⌈N / B_0⌉ optimiser steps each) with the relative L2 loss: the single-level baselines at 8² …
64²; the batch-size controls (the 32² and 64² baselines with B = 4 at half the epochs and B = 2
at a quarter: no more optimiser steps); MLMC as the paper: m = 2 at 16² + 32² (its "magenta
curve") with δ = 8, 4, 2, random and nested sampling, and m = 4 (8² … 64²) with δ = 8, 4, 2,
with N_l = N δ^-l samples and B_l = B_0 δ^-l per level; the paper's optimal allocation
(m = 3, 8² … 32², N_l = N 2^-2l, δ = 2); and m = 2 with all N samples on both levels (only the
batches shrink: the fine level is not scarce at this N). Measured: the mean relative L2 error over the 64² test
trajectories (all predicted times) and the training cost, the process CPU seconds of all
epochs on one torch thread (the machine is shared; wall time is recorded as well).

Target (issue #27 §3): the fastest MLMC run within 5 % of the 64² baseline's test error takes at
most half the time of the fastest single-level run within 5 % of that error (any resolution,
batch size or epoch count this run tried). The paper: the m = 2 curve reaches the 64²
baseline's accuracy in 1/11 of its training time and 1/3 of the 32² baseline's.

Default size (about 10 CPU minutes of training, a few more for the data; the paper: 1,000
training samples solved at 256², T_in = 10, T = 50, width 20, 8 modes, 500 epochs on a GPU): 100
training and 40 test trajectories solved at 64² (dt = 10⁻²: the 64² solve of a field differs
from its 128² solve by 5·10⁻⁵ relative at t = 20, and dt = 5·10⁻³ changes it by 3·10⁻⁶),
T_in = 10, T = 20, FNO-3d width 8, depth 4, (8, 8, 6) modes in (x, y, t), B_0 = 8 (Li et al.:
10), Adam 2·10⁻², 12 epochs. ``--quick``: a smoke run on 16 training and 8
test trajectories to T = 8 (T_in = 4), 2 epochs, a few cases.

    scripts/env python -m benchmarks.mlmc_navier_stokes [--quick] [--out PATH]

Writes benchmarks/results/mlmc_navier_stokes.json (mlmc_navier_stokes_quick.json) and the Pareto
plot beside it.
"""

from __future__ import annotations

import time

from .common import benchmark_arguments, parse_benchmark_arguments
from .mlmc_common import ERROR_TARGET, compare_with_finest, fastest_within, run_cases, write_and_print
from .record import Target, threshold

RESOLUTIONS = (8, 16, 32, 64)
TIME_TARGET = 0.5
PAPER = {"time_vs_64x64_baseline": 1 / 11, "time_vs_32x32_baseline": 1 / 3}


def _resolution(level_name: str) -> int:
    return int(level_name.split("x")[0])


def _baseline(rows: list[dict], settings: dict, resolution: int) -> dict | None:
    """The single-level run at ``resolution`` with the run's own batch size and epochs."""
    return next((r for r in rows if r["kind"] == "single-level" and _resolution(r["levels"][-1]) == resolution
                 and r["batch_sizes"][0] == settings["batch_size_coarsest"] and r["epochs"] == settings["epochs"]),
                None)


def targets(payload: dict) -> list[dict]:
    """Issue 27's target: the fastest MLMC run within 5 % of the finest (64²) baseline's test error
    takes at most half the training CPU time of the fastest single-level run within 5 % of it.

    The comparator is the cheapest single-level run (any resolution, batch size or number of
    epochs the run tried) within 5 % of the 64² baseline's error, not the 64² baseline itself:
    a coarser or smaller-batch single-level run that is as accurate would credit MLMC with what
    any run can buy. The ratios against the 64² and 32² baselines (the paper's 1/11 and 1/3) are
    caveats.
    """
    rows, settings = payload["rows"], payload["settings"]
    name = (f"MLMC training time at the 64² baseline's error (within {100 * (ERROR_TARGET - 1):.0f} %) against "
            "the fastest single-level run there")
    comparator = ("the cheapest single-level run within 5 % of the 64² baseline's test error (any resolution, "
                  "batch size or epoch count this run tried); cost = process CPU seconds of training")
    caveats = ["one seed; test error = mean relative L2 over the 64² test trajectories (all predicted times)"]
    single = [r for r in rows if r["kind"] == "single-level"]
    mlmc = [r for r in rows if r["kind"] != "single-level"]
    finest = _baseline(rows, settings, max(RESOLUTIONS))
    if finest is None or not mlmc:
        return [threshold(name, None, "<=", TIME_TARGET, "× the comparator's time", comparator,
                          settings["test_samples"], caveats, missing="no 64² baseline or no MLMC run in this file")]
    single_fast = fastest_within(single, finest["test_loss"])  # the 64² baseline itself qualifies
    mlmc_fast = fastest_within(mlmc, finest["test_loss"])
    caveats.append(f"comparator: {single_fast['case']} ({single_fast['time_s']:.1f} CPU s, error "
                   f"{single_fast['test_loss'] / finest['test_loss']:.3f}× the 64² baseline's)")
    if mlmc_fast is None:
        closest = min(mlmc, key=lambda r: r["test_loss"])
        caveats.insert(0, f"no MLMC run came within 5 % of the 64² baseline's error (closest: {closest['case']}, "
                          f"{closest['test_loss'] / finest['test_loss']:.3f}×)")
        return [Target(name, f"≤ {TIME_TARGET:g}× the comparator's time", None, comparator,
                       settings["test_samples"], False, caveats).record()]
    caveats.insert(0, f"fastest MLMC run within 5 %: {mlmc_fast['case']} (error "
                      f"{mlmc_fast['test_loss'] / finest['test_loss']:.3f}× the 64² baseline's)")
    for resolution, paper in ((64, PAPER["time_vs_64x64_baseline"]), (32, PAPER["time_vs_32x32_baseline"])):
        baseline = _baseline(rows, settings, resolution)
        if baseline is not None:
            caveats.append(f"against the {resolution}² baseline ({baseline['case']}, error "
                           f"{baseline['test_loss'] / finest['test_loss']:.3f}× the 64² one's) it took "
                           f"{mlmc_fast['time_s'] / baseline['time_s']:.2f}× the time (paper: {paper:.2f}×)")
    return [threshold(name, mlmc_fast["time_s"] / single_fast["time_s"], "<=", TIME_TARGET,
                      "× the comparator's time", comparator, settings["test_samples"], caveats)]


def trajectories(samples: int, seed: int, solve_n: int, t_end: int, dt: float, nu: float = 1e-3, chunk: int = 20):
    """Vorticity (samples, t_end, n, n) at t = 1 … t_end on each grid of :data:`RESOLUTIONS`,
    coarsest first: each trajectory solved once at ``solve_n``² (``chunk`` initial conditions
    per batched solve) and down-sampled; sample s starts from ``random_vorticity(solve_n, seed + s)``."""
    import numpy as np
    from tqdm import tqdm

    from fem_ms.torus_vorticity import downsample, mlmc_forcing, random_vorticity, solve_vorticity

    forcing = mlmc_forcing(solve_n)
    times = np.arange(1, t_end + 1, dtype=float)
    out = [np.empty((samples, t_end, n, n)) for n in RESOLUTIONS]
    for start in tqdm(range(0, samples, chunk), desc=f"vorticity at {solve_n}² ({samples} trajectories)"):
        stop = min(start + chunk, samples)
        w0 = np.stack([random_vorticity(solve_n, seed + s) for s in range(start, stop)])
        w = np.moveaxis(solve_vorticity(w0, forcing, nu, times, dt), 0, 1)  # (chunk, times, n, n)
        for level, n in zip(out, RESOLUTIONS):
            level[start:stop] = downsample(w, n)
    return out


def main(argv=None) -> None:
    parser = benchmark_arguments("mlmc_navier_stokes", __doc__, "smoke run: 16 training and 8 test trajectories "
                                 "to T = 8, 2 epochs, a few cases")
    parser.add_argument("--train", type=int, default=None, help="training trajectories (default 100)")
    parser.add_argument("--test", type=int, default=None, help="test trajectories (default 40)")
    parser.add_argument("--t-in", type=int, default=None, help="input snapshots t = 1 … T_in (default 10)")
    parser.add_argument("--t-end", type=int, default=None, help="last snapshot T (default 20; the paper: 50)")
    parser.add_argument("--solve", type=int, default=64, help="grid the trajectories are solved on (default 64)")
    parser.add_argument("--dt", type=float, default=None, help="time step of the solver (default 1e-2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 12)")
    parser.add_argument("--width", type=int, default=None, help="FNO-3d width (default 8; the paper: 20)")
    parser.add_argument("--modes", type=int, default=8, help="FNO-3d modes along x and y (default 8)")
    parser.add_argument("--time-modes", type=int, default=None, help="FNO-3d modes along t (default 6)")
    parser.add_argument("--batch", type=int, default=8, help="coarsest batch size B_0 (default 8)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights and the batches (default 0; the data are the same for every seed)")
    # the single-level baselines' best of a few rates (docs/mlmc.md), shared by every run
    parser.add_argument("--lr", type=float, default=2e-2, help="Adam learning rate, shared by every run (default 2e-2)")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    n_train, n_test = args.train or (16 if q else 100), args.test or (8 if q else 40)
    t_in, t_end = args.t_in or (4 if q else 10), args.t_end or (8 if q else 20)
    epochs, width = args.epochs or (2 if q else 12), args.width or (6 if q else 8)
    time_modes = args.time_modes or (4 if q else 6)
    dt = args.dt or 1e-2
    if not 0 < t_in < t_end:
        raise SystemExit(f"--t-in {t_in} must lie in [1, T = {t_end})")

    import torch

    torch.set_num_threads(1)
    from fem_ms_torch.mlmc import vorticity_levels
    from fem_ms_torch.mlmc.pareto import plot_pareto
    from fem_ms_torch.operators import space_time_fno

    t_start = time.perf_counter()
    data_cpu = time.process_time()
    train, stats = vorticity_levels(trajectories(n_train, 0, args.solve, t_end, dt), t_in)
    test, _ = vorticity_levels(trajectories(n_test, 10**6, args.solve, t_end, dt), t_in, stats)
    data_cpu = time.process_time() - data_cpu
    finest_test = test[-1]

    def make_model():
        return space_time_fno(t_in, width=width, depth=4, modes=args.modes, time_modes=time_modes)

    b0, seed = args.batch, args.seed
    rand = [("single-level", [i], "random", 1.0, None) for i in range(len(RESOLUTIONS))]
    if q:
        cases = rand + [("mlmc", [1, 2], "random", 2.0, None), ("mlmc", [0, 1, 2, 3], "random", 4.0, None)]
        cases = [case + (b0, epochs) for case in cases]
        cases += [("single-level", [3], "random", 1.0, None, max(1, b0 // 2), max(1, epochs // 2))]
    else:
        # the cases the target rests on first (the m = 2 curve and the 32² and 64² baselines), so
        # that an interrupted run has them
        cases = rand[:3]
        cases += [("mlmc", [1, 2], "random", d, None) for d in (8.0, 4.0, 2.0)]
        cases += rand[3:]
        cases += [("mlmc", [1, 2], "nested", d, None) for d in (8.0, 4.0, 2.0)]
        cases += [("mlmc", [0, 1, 2, 3], "random", d, None) for d in (8.0, 4.0, 2.0)]
        cases += [("mlmc-optimal", [0, 1, 2], "random", 2.0, 1.0)]
        cases += [("mlmc-all-data", [1, 2], "random", d, None) for d in (8.0, 4.0, 2.0)]
        cases = [case + (b0, epochs) for case in cases]
        half, quarter = max(1, epochs // 2), max(1, epochs // 4)
        # batch-size controls with no more optimiser steps than the baselines
        cases += [("single-level", [i], "random", 1.0, None, b, e) for i in (2, 3)
                  for b, e in ((max(1, b0 // 2), half), (max(1, b0 // 4), quarter))]
    out = args.out
    settings = {"data": {"equation": "vorticity on the unit torus (MLMC paper, App. B.3)", "nu": 1e-3,
                         "solve_grid": args.solve, "dt": dt, "times": f"1, 2, …, {t_end}", "input_times": t_in,
                         "resolutions": list(RESOLUTIONS), "train_seeds": [0, n_train],
                         "test_seeds": [10**6, 10**6 + n_test], "vorticity_scale": stats.output_scale},
                "train_samples": n_train, "test_samples": n_test, "epochs": epochs, "batch_size_coarsest": b0,
                "model": {"architecture": "neuralop:FNO (3-d)", "width": width, "depth": 4,
                          "modes": [args.modes, args.modes, time_modes], "time_padding": 0.25},
                "optimiser": f"Adam lr {args.lr:g}, cosine schedule over the epochs", "loss": "relative_l2",
                "seed": seed, "threads": 1}
    rows = run_cases("mlmc_navier_stokes", q, out, settings, cases, train, finest_test, make_model, args.lr, targets,
                     seed=seed)
    finest = _baseline(rows, settings, max(RESOLUTIONS))
    summary = compare_with_finest(rows, finest)
    summary["data_cpu_s"] = data_cpu
    plot = out.with_suffix(".png")
    plot_pareto(rows, plot, f"FNO-3d on Navier–Stokes, {n_train} trajectories, t ≤ {t_in} → t ≤ {t_end}, "
                f"{epochs} epochs (CPU)", "relative L2 test error on 64² grid")
    payload = {"benchmark": "mlmc_navier_stokes", "quick": q, "complete": True,
               "wall_s": time.perf_counter() - t_start, "settings": settings, "summary": summary, "paper": PAPER,
               "plot": plot.name, "rows": rows}
    write_and_print(out, payload, targets, plot)


if __name__ == "__main__":
    main()
