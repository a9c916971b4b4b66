"""A surrogate that says how sure it is: LoGoS-GPO on 1D Burgers or Darcy on the notched triangle.
===============================================================================================

Generates a dataset (``fem-ms generate`` machinery), trains a LoGoS Gaussian-process operator
(WNO mean and feature kernel, sparse nearest-neighbour spatial kernel, inducing points), and
plots, for test inputs it never saw, the truth, the predictive mean, the 95 % band and the error
(Burgers: three test functions; Darcy: input, truth, mean, standard deviation and error maps).
Prints the test relative L2 error, the coverage of the 95 % band and three posterior samples'
distance to the truth.

A small configuration that trains in a few minutes on a CPU; benchmarks/gpo.py has the
measured accuracy of longer runs (docs/gpo.md).

Run:  scripts/env python demos/gpo_surrogate.py [--case darcy_notch] [--samples 400 --epochs 40]

Training recipes (docs/gpo.md): on Burgers full batches (every step the exact gradient of the
collapsed bound), on Darcy epochs fitting the mean first, then batches of 64 with (B, S) set
to their optimum before every step.
Writes demos/output/gpo_surrogate_<case>.png and demos/output/gpo_surrogate/ (data, checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fem_ms.cli import parse_args_and_petsc_options


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="PETSc options (-log_view, ...) go to PETSc.")
    parser.add_argument("--case", choices=("burgers", "darcy_notch"), default="burgers")
    parser.add_argument("--samples", type=int, help="functions generated, the last 40 the test "
                        "(default: 200 Burgers, 340 Darcy)")
    parser.add_argument("--points", type=int, default=1024, help="Burgers grid points")
    parser.add_argument("--mean-epochs", type=int, help="epochs fitting the WNO mean alone first (default: 0 "
                        "Burgers, 4 Darcy)")
    parser.add_argument("--epochs", type=int, help="epochs training the whole model after that (default: 100 "
                        "full-batch Burgers, 20 Darcy)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "output")
    # PETSc reads sys.argv when Firedrake is first imported: only PETSc's options stay there
    args = parse_args_and_petsc_options(parser, argv)
    burgers = args.case == "burgers"
    for name, value in (("samples", 200 if burgers else 340), ("mean_epochs", 0 if burgers else 4),
                        ("epochs", 100 if burgers else 20)):
        if getattr(args, name) is None:
            setattr(args, name, value)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from fem_ms.data import BurgersConfig, DarcyNotchConfig, generate
    from fem_ms_torch.gpo import evaluate, load_gpo, load_problem, train_gpo

    torch.set_num_threads(1)
    work = args.out_dir / "gpo_surrogate"
    if args.samples < 48:
        raise SystemExit("--samples must be at least 48 (40 are the test functions)")
    fraction = (args.samples - 40) / args.samples
    # a tenth of the training split is held out to calibrate the predictive variance (docs/gpo.md)
    calibration = max(4, (args.samples - 40) // 10)
    n_train = args.samples - 40 - calibration
    inducing = min(64 if burgers else 32, n_train)
    if burgers:
        config = BurgersConfig(name=f"burgers_{args.points}", samples=args.samples, points=args.points,
                               train_fraction=fraction)
        options = dict(width=args.width, depth=3, wavelet_levels=5 if args.points >= 256 else 2, modes=12,
                       boundary="periodic", inducing=inducing, neighbours=16)
    else:
        config = DarcyNotchConfig(name="darcy_notch", samples=args.samples, train_fraction=fraction)
        options = dict(width=args.width, depth=3, wavelet_levels=3, wavelet="haar", modes=12, inducing=inducing,
                       neighbours=16)
    dataset = generate(config, work)
    # Burgers: full batches, the noise re-fitted every 10th epoch; Darcy: batches of 64 with (B, S)
    # optimal before every step (train_gpo's refresh_every=1)
    recipe = dict(batch_size=n_train, lr=1e-2, noise_every=10) if burgers else dict(batch_size=64, lr=4e-3)
    name = f"logos_{args.case}_{args.mean_epochs}_{args.epochs}_b{recipe['batch_size']}_calibrated.pt"
    checkpoint = train_gpo(dataset, work / name, model="logos", mean_epochs=args.mean_epochs, epochs=args.epochs,
                           n_train=n_train, calibration=calibration, options=options, **recipe)
    net, _, state = load_gpo(checkpoint)
    test = load_problem(dataset, "test", normalisation=state["normalisation"])
    figures = evaluate(net, test)
    print(f"LoGoS-GPO on {args.case}: {len(test.a)} test functions, relative L2 error "
          f"{100 * figures['rel_l2_mean']:.2f} ± {100 * figures['rel_l2_std']:.2f} %, "
          f"95 % band coverage {100 * figures['coverage_95']:.1f} %, NLPD {figures['nlpd']:.3f}")
    pick = torch.arange(3)
    pred = net.predict(test.a[pick])
    truth = test.raw_outputs(test.y[pick])
    mean = test.raw_outputs(pred.mean)
    half = 1.959964 * pred.std * test.y_std
    draws = test.raw_outputs(net.sample(test.a[pick], 3, torch.Generator().manual_seed(0)))
    for i in range(3):
        gaps = [float((d[i] - truth[i]).norm() / truth[i].norm()) for d in draws]
        print(f"test function {i}: posterior samples' relative L2 distance to the truth "
              f"{', '.join(f'{100 * g:.2f} %' for g in gaps)}")
    raw_a = test.normalisation.denormalise_inputs(test.a[pick])[:, 0]
    if burgers:
        x = test.points[:, 0]
        fig, axes = plt.subplots(3, 3, figsize=(13, 8.5), sharex=True)
        for i in range(3):
            axes[0, i].plot(x, raw_a[i].numpy(), color="0.3")
            axes[0, i].set_title(f"test input u(x, 0) #{i}")
            axes[1, i].fill_between(x, (mean[i] - half[i]).numpy(), (mean[i] + half[i]).numpy(), color="C0",
                                    alpha=0.3, label="95 % band")
            axes[1, i].plot(x, truth[i].numpy(), "k", lw=1.2, label="truth")
            axes[1, i].plot(x, mean[i].numpy(), "C0--", lw=1.2, label="mean")
            axes[1, i].set_title(f"u(x, {config.t_end:g})")
            err = (mean[i] - truth[i]).numpy()
            axes[2, i].fill_between(x, -half[i].numpy(), half[i].numpy(), color="C1", alpha=0.3, label="±1.96 σ")
            axes[2, i].plot(x, err, "C3", lw=1, label="mean − truth")
            axes[2, i].set_xlabel("x")
        axes[1, 0].legend(loc="best", fontsize=8)
        axes[2, 0].legend(loc="best", fontsize=8)
        axes[2, 0].set_ylabel("error")
    else:
        fields = [("input (boundary data, extended)", np.where(test.to_grid(truth[:1]).isnan()[0].numpy(), np.nan,
                                                               raw_a[0].numpy())),
                  ("truth", test.to_grid(truth[:1])[0].numpy()), ("predictive mean", test.to_grid(mean[:1])[0].numpy()),
                  ("predictive std", test.to_grid(half[:1] / 1.959964)[0].numpy()),
                  ("|mean − truth|", test.to_grid((mean[:1] - truth[:1]).abs())[0].numpy())]
        fig, axes = plt.subplots(1, 5, figsize=(19, 3.8))
        g = test.axes[0]
        for ax, (title, field) in zip(axes, fields):
            im = ax.pcolormesh(g, g, field.T, shading="auto", cmap="viridis")
            ax.set_title(title)
            ax.set_aspect("equal")
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"LoGoS-GPO, {args.case}: test rel. L2 {100 * figures['rel_l2_mean']:.2f} %, "
                 f"95 % coverage {100 * figures['coverage_95']:.1f} %")
    fig.tight_layout()
    out = args.out_dir / f"gpo_surrogate_{args.case}.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
