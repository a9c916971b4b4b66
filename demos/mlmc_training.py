"""MLMC vs single-level training of an FNO on a small Darcy hierarchy, with the Pareto curve.
==========================================================================================

Generates a ``multilevel`` Darcy dataset (one KLE κ per sample solved on 8², 16² and 32²
grids), trains the same FNO single-level on each resolution and with MLMC over the 2 and 3
finest resolutions for a few batch multipliers δ, and plots test error on the finest grid
against training cost, with one prediction next to the truth.

A small configuration that runs in a few minutes on a CPU; it shows the mechanics and the
shape of the trade-off, not converged accuracies (see docs/mlmc.md and benchmarks/mlmc_darcy.py).

Run:  scripts/env python demos/mlmc_training.py [--samples 240 --epochs 8]
Writes demos/output/mlmc_training.png and demos/output/mlmc_training/ (the dataset).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fem_ms.cli import parse_args_and_petsc_options


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="PETSc options (-log_view, ...) go to PETSc.")
    parser.add_argument("--samples", type=int, default=240, help="samples (80 %% train, 20 %% test)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "output")
    # PETSc reads sys.argv when Firedrake is first imported: only PETSc's options stay there
    args = parse_args_and_petsc_options(parser, argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from fem_ms.data import MultilevelConfig, generate
    from fem_ms_torch.mlmc import batch_sizes, darcy_levels
    from fem_ms_torch.mlmc.pareto import pareto_front, plot_pareto, run_case
    from fem_ms_torch.operators import FNO

    torch.set_num_threads(1)
    resolutions = (8, 16, 32)
    dataset = generate(MultilevelConfig(name="darcy", samples=args.samples, levels=resolutions), args.out_dir /
                       "mlmc_training")
    train, stats = darcy_levels(dataset, resolutions, "train")
    test, _ = darcy_levels(dataset, resolutions, "test", stats)

    def make_model():
        return FNO(3, 1, dim=2, width=args.width, depth=4, modes=6)

    n, b0 = len(train[0]), 8
    runs = [("single-level", [i], 1.0) for i in range(3)]
    # every level holds all samples and only the batches shrink (B_l = B_0 δ^-l): with fewer
    # fine samples the corrections overfit them (docs/mlmc.md)
    runs += [("mlmc-all-data", [1, 2], 4.0), ("mlmc-all-data", [0, 1, 2], 2.0), ("mlmc-all-data", [0, 1, 2], 4.0)]
    rows, trainers = [], []
    for kind, which, delta in runs:
        levels = [train[i] for i in which]
        counts = [n] * len(levels)
        sizes = [min(b, c) for b, c in zip(batch_sizes(len(levels), b0, delta), counts)]
        name = f"{'single-level' if kind == 'single-level' else 'mlmc'} {'+'.join(l.name for l in levels)}"
        if len(levels) > 1:
            name += f" δ={delta:g}"
        row, trainer = run_case(name, levels, test[-1], make_model, counts, sizes, "random", args.epochs,
                                "relative_l2", seed=0, lr=3e-3, return_trainer=True, kind=kind,
                                delta=delta)
        rows.append(row)
        trainers.append(trainer)
    pareto_front(rows)
    print(f"{'run':<34} {'CPU s':>8} {'test rel. L2 (32x32)':>22} {'pareto':>7}")
    for r in rows:
        print(f"{r['case']:<34} {r['time_s']:>8.1f} {r['test_loss']:>22.4f} {str(r['pareto']):>7}")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1.6, 1, 1]})
    plot_pareto(rows, None, "FNO on Darcy: MLMC vs single level", "relative L2 test error on 32² grid", ax=axes[0])
    # one test sample: the truth and the prediction of the MLMC run with the best time × error
    best = min((i for i, r in enumerate(rows) if r["kind"] != "single-level"),
               key=lambda i: rows[i]["time_s"] * rows[i]["test_loss"])
    (x,), u = test[-1].batch(torch.tensor([0]), "cpu")
    with torch.no_grad():
        pred = trainers[best].model.eval()(x)
    for ax, field, title in ((axes[1], u, "u, a 32² test sample"), (axes[2], pred, rows[best]["case"])):
        im = ax.imshow(stats.denormalise_outputs(field[0, 0]).T.numpy(), origin="lower", extent=(0, 1, 0, 1))
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    out = args.out_dir / "mlmc_training.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
