"""GP operators: accuracy, calibration and cost of LoGoS-GPO against the plain GPO and SVGP.

For each case (1D Burgers, Darcy on the notched triangle, multiscale diffusion κ → u at 64²)
each model is trained (CPU-sized budgets below) and evaluated on the test split: relative L2
error (mean ± std over test functions), coverage of the central 95 % predictive interval,
negative log predictive density per point, training time and peak memory. A second part
measures training cost per step and peak memory as the grid is refined (1D 256 → 4096,
2D 33² → 129²). Each measurement runs in its own process so that its peak memory is its own.

    python -m benchmarks.gpo            # default (CPU: ~45 min on 2 shared cores)
    python -m benchmarks.gpo --quick    # smoke run
    python -m benchmarks.gpo --full     # the paper's sizes (1900 / 1100 / 400 training functions +
                                        # 100 for calibration, 500 epochs, width 64); days on the
                                        # CPU, not run
"""

from __future__ import annotations

import json
import sys
import time

from .common import (RESULTS, benchmark_arguments, cached_dataset, parse_benchmark_arguments, peak_rss_mib,
                     print_table, run_case_in_subprocess, write_json)

TEST_FUNCTIONS = 100
WNO = dict(width=16, depth=3, modes=12, latent_channels=2, latent_size=8)


def _configs():
    from fem_ms.data import BurgersConfig, MultilevelConfig, load_config

    return {"burgers": load_config("demos/configs/burgers.toml"),
            "darcy_notch": load_config("demos/configs/darcy_notch.toml"),
            "multiscale": MultilevelConfig(name="multilevel_64", samples=600, levels=(64,),
                                           train_fraction=500 / 600),
            "burgers_4096": BurgersConfig(name="burgers_4096", samples=40, points=4096, dt=2.5e-4,
                                          train_fraction=1.0),
            "multiscale_128": MultilevelConfig(name="multilevel_scaling", samples=40, levels=(32, 64, 128),
                                               train_fraction=1.0)}


# per case: level (multilevel), wavelet, decomposition levels, and per model the training
# functions, epochs, batch and learning rate. CPU default: small WNOs (width 16) and, in 2D, the
# Haar wavelet (ptwt's 2D transforms with longer filters cost ~5x more on the CPU).
def _plan(size: str) -> dict:
    out = {}
    for case, level, wavelet, wl, n, gpo_stride in (("burgers", None, "db4", 5, (500, 100), 1),
                                                    ("darcy_notch", None, "haar", 3, (400, 100), 1),
                                                    ("multiscale", 64, "haar", 3, (400, 100), 2)):
        wno = dict(WNO, wavelet=wavelet, level=wl, boundary="periodic" if case == "burgers" else "symmetric")
        # LoGoS: (mean-fitting epochs, then whole-model epochs), GPO, SVGP
        # LoGoS sets (B, S) to their optimum before every step (train_gpo's refresh_every=1),
        # so its steps cost ~3x a plain one; the GPO's full-batch steps grow as N³ + d³
        # the GPO's steps: about LoGoS-GPO's training time (~300 s each on this CPU)
        gpo_steps = {"burgers": 300, "darcy_notch": 160, "multiscale": 300}[case]
        epochs = {"quick": ((1, 2), 5, 2), "default": ((4, 10), gpo_steps, 12),
                  "full": ((50, 450), 2000, 100)}[size]
        # every model's predictive variance (latent scale, noise) is fitted on held-out
        # train-split functions after its training ones (multiscale: 500 = 400 + 100)
        calibration = 20 if size == "quick" else 100
        if size == "quick":
            n = (60, 40)
        elif size == "full":
            # the paper's 2000 / 1200 training functions, less the 100 held out for calibration
            n = ({"burgers": 1900, "darcy_notch": 1100, "multiscale": 400}[case], 1000)
            wno.update(width=64, depth=4, modes=16, wavelet="db4")
        logos = dict(n_train=n[0], mean_epochs=epochs[0][0], epochs=epochs[0][1], batch_size=64, lr=4e-3,
                     calibration=calibration, options=dict(wno, inducing=min(64, n[0]), neighbours=16))
        if case == "burgers" and size != "full":
            # full batches: every step the exact gradient of the collapsed bound, as the GPO's steps
            # are of its exact likelihood (docs/gpo.md: 0.02 % where mini-batches of 64 of 500
            # functions reached 0.2 %); 200 functions x 150 steps cost about the GPO's 300 steps
            m = 200 if size == "default" else n[0]
            logos.update(n_train=m, batch_size=m, mean_epochs=0, epochs=150 if size == "default" else 3,
                         lr=1e-2, noise_every=10, options=dict(logos["options"], inducing=min(64, m)))
        out[case] = {"level": level, "models": {
            "logos": logos,
            "gpo": dict(n_train=n[1], epochs=epochs[1], batch_size=16, lr=1e-2, stride=gpo_stride,
                        calibration=calibration, options=wno),
            "svgp": dict(n_train=n[0], epochs=epochs[2], batch_size=16, lr=3e-2, calibration=calibration,
                         options=dict(inducing=256, input_size=16 if case == "burgers" else 8))}}
    return out


def run_accuracy(case: str, model: str, size: str) -> dict:
    import torch

    from fem_ms_torch.gpo import evaluate, load_gpo, load_problem, relative_l2, train_gpo

    torch.set_num_threads(1)
    plan = _plan(size)[case]
    spec = dict(plan["models"][model])
    path = cached_dataset(_configs()[case])
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as tmp:
        out = train_gpo(path, f"{tmp}/{model}.pt", model=model, level=plan["level"], progress=False, **spec)
        net, settings, state = load_gpo(out)
    test = load_problem(path, "test", level=plan["level"], stride=settings["stride"],
                        limit=TEST_FUNCTIONS, normalisation=state["normalisation"])
    start = time.perf_counter()
    figures = evaluate(net, test)
    predict_seconds = time.perf_counter() - start
    if getattr(net, "mean_op", None) is not None:  # how much of the accuracy is the WNO mean's alone
        with torch.no_grad():
            y, m = test.raw_outputs(test.y), test.raw_outputs(net.prior_mean(test.a))
        figures["prior_mean_rel_l2_mean"] = float(relative_l2(m, y).mean())
    return {"case": case, "model": model, **figures, "train_seconds": state["seconds"],
            "predict_seconds": predict_seconds, "epochs": state["done"],
            "train_functions": len(net.train_a) if model == "gpo" else settings["n_train"],
            "grid_points": int(test.y.shape[1]), "stride": settings["stride"], "peak_rss_mib": peak_rss_mib(),
            "final_loss": state["losses"][-1], "options": settings["options"],
            "variational": settings.get("variational"), "mean_epochs": settings["mean_epochs"],
            "noise_variance": float(net.likelihood.noise.detach()), "latent_scale": float(net.latent_scale),
            "predictive_noise": float(net.predictive_noise),
            "calibration_functions": settings["calibration"]}


def run_scaling(dim: int, stride: int, model: str, steps: int) -> dict:
    """Seconds per training step and peak memory of one model on one grid (fresh process)."""
    import torch

    from fem_ms_torch.gpo import build_model, load_problem

    torch.set_num_threads(1)
    configs = _configs()
    if dim == 1:
        problem = load_problem(cached_dataset(configs["burgers_4096"]), stride=stride)
        opts = dict(WNO, level=5, boundary="periodic")
    else:
        problem = load_problem(cached_dataset(configs["multiscale_128"]), level=128, stride=stride)
        opts = dict(WNO, level=3, wavelet="haar")
    if model == "logos":
        opts.update(inducing=32, neighbours=16)  # the scaling datasets hold 40 functions
    torch.manual_seed(0)
    net = build_model(model, problem, opts)
    base = peak_rss_mib()
    a, y = problem.a[:16], problem.y[:16]
    if model == "gpo":
        net.set_train_data(a, y)
    else:
        net.init_inducing(problem.a)
        for p in net.closed_form_parameters():  # set by the closed-form step, as in train_gpo
            p.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        if model == "logos":  # train_gpo's default step: (B, S) optimal first, over all training functions
            net.optimal_variational(problem.a, problem.y)
        value = net.loss() if model == "gpo" else net.loss(a, y, len(problem.a))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"dim": dim, "model": model, "grid_points": int(problem.y.shape[1]), "batch": 16,
            "closed_form_step_over": len(problem.a) if model == "logos" else None,
            "seconds_per_step": min(times), "peak_rss_mib": peak_rss_mib(), "rss_before_training_mib": base,
            "training_memory_mib": peak_rss_mib() - base}


def main(argv=None) -> int:
    parser = benchmark_arguments(__doc__, "small models, 60 training functions, a few epochs")
    parser.add_argument("--full", action="store_true", help="the paper's sizes (days on the CPU; not run)")
    args = parse_benchmark_arguments(parser, argv)
    if args.case:
        kind, *rest = json.loads(args.case)
        row = run_accuracy(*rest) if kind == "accuracy" else run_scaling(*rest)
        print(json.dumps(row))
        return 0
    size = "full" if args.full else "quick" if args.quick else "default"
    for config in _configs().values():  # generate (or reuse) every dataset first
        cached_dataset(config)
    accuracy = []
    for case in ("burgers", "darcy_notch", "multiscale"):
        for model in ("logos", "gpo", "svgp"):
            print(f"accuracy: {case} / {model}", flush=True)
            accuracy.append(run_case_in_subprocess("benchmarks.gpo", ["--case", json.dumps(["accuracy", case, model,
                                                                                            size])]))
            print_table(accuracy[-1:], [("case", "case", "s"), ("model", "model", "s"),
                                        ("rel_l2_mean", "rel L2", ".4f"), ("rel_l2_std", "± std", ".4f"),
                                        ("coverage_95", "cover95", ".3f"), ("nlpd", "NLPD", ".3f"),
                                        ("train_seconds", "train s", ".0f"), ("peak_rss_mib", "MiB", ".0f")])
    scaling = []
    grids = {1: (16, 8, 4, 2, 1), 2: (4, 2, 1)} if not args.quick else {1: (16, 8), 2: (4,)}
    for dim, strides in grids.items():
        for stride in strides:
            for model in ("logos", "gpo"):
                d = (4096 // stride) if dim == 1 else (128 // stride + 1) ** 2
                if model == "gpo" and d > 2100:
                    scaling.append({"dim": dim, "model": model, "grid_points": d,
                                    "not_run": "dense d x d eigendecomposition per step: over the CPU budget"})
                    continue
                print(f"scaling: {dim}D, {d} points, {model}", flush=True)
                scaling.append(run_case_in_subprocess("benchmarks.gpo", ["--case", json.dumps(
                    ["scaling", dim, stride, model, 2 if args.quick else 3])]))
    print_table(scaling, [("dim", "dim", "d"), ("model", "model", "s"), ("grid_points", "points", "d"),
                          ("seconds_per_step", "s/step", ".3f"), ("training_memory_mib", "train MiB", ".0f")])
    out = args.out or RESULTS / ("gpo_quick.json" if args.quick else "gpo.json")
    write_json(out, {"benchmark": "gpo", "size": size, "test_functions": TEST_FUNCTIONS, "plan": _plan(size),
                     "accuracy": accuracy, "scaling": scaling,
                     "paper_rel_l2_percent": {"burgers": {"logos": 0.86, "gpo": 2.89, "svgp": 3.81},
                                              "darcy_notch": {"logos": 1.38, "gpo": 2.18, "svgp": 5.18}}})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
