"""Local neural operators on the two flows of their paper (Liu-Schiaffini et al., 2024): the FNO
against FNO + differential, FNO + DISCO and both (LocalNO) on 2D Navier–Stokes on the torus, and
neuraloperator's SFNO against SFNO + spherical DISCO on shallow water on the sphere, at equal
parameter counts and equal CPU-seconds of training, over several seeds, with the paper's
resolution-transfer test (train at one resolution, test at twice it).

Tasks:

* Navier–Stokes (``fem_ms.torus_vorticity``): ∂_t w + u·∇w = ν Δw + f on the unit torus,
  ν = 10⁻⁴ (the FNO paper's turbulent viscosity), f = 0.1(sin 2π(x+y) + cos 2π(x+y)),
  w_0 ~ N(0, 7^{3/2}(−Δ + 49 I)^{−2.5}); solved at 64² (CNAB2, dt = 4·10⁻³) and stored at 32²
  (every second point) and 64². The map is a T-step map: w(t = 2) → w(t = 3) (250 solver steps);
  the input channels are w(2) and f. Trained at 32², tested at 32² and at 64².
* Shallow water (``shallow_water_sphere`` datasets, :mod:`fem_ms_torch.sphere`): torch-harmonics'
  solver and random initial states, the state → the state one hour later, on the equiangular
  32 × 64 and 64 × 128 grids; input channels: the three variables and sin(latitude) (the shape of
  the Coriolis parameter, which an SFNO's rotation-equivariant layers cannot infer). Trained at
  32 × 64, tested at 32 × 64 and 64 × 128.

Every model of a task gets the parameter budget of the baseline (FNO / SFNO) at ``--width``:
each other model takes the widest width whose parameter count does not exceed it. Every model
trains for the same budget of CPU seconds (``time.process_time``, one torch thread) under AdamW
with a cosine schedule over that budget and the same peak learning rate; the test error along
the way is recorded at fixed fractions of the budget (its evaluation off the clock), giving the
error-vs-CPU-seconds curves. Every network learns the change of the state (output = input state +
network), and the identity map's error is recorded beside. Error: the relative L2 error per test
sample of the (standardized) output, averaged; the mean and spread over ``--seeds`` training
seeds.

    scripts/env python -m benchmarks.local_no_flows [--quick] [--out PATH]
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

from .common import benchmark_arguments, cached_dataset, parse_benchmark_arguments, print_table
from .local_no import count, match_width, relative_l2
from .record import threshold, write_result

NS, SPHERE = "Navier-Stokes torus, nu=1e-4, w(2) -> w(3), 32^2 (2x: 64^2)", \
    "shallow water sphere, 1 h, 32x64 (2x: 64x128)"
NS_MODELS = ("FNO", "FNO+diff", "FNO+DISCO", "LocalNO (FNO+diff+DISCO)")
SPHERE_MODELS = ("SFNO", "SFNO+DISCO")
BASELINE = {NS: "FNO", SPHERE: "SFNO"}
TARGET = -30.0  # % change of the best local model's error against the baseline's (issue 27)
FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)  # of the CPU budget at which the curves' test errors are taken
NS_NU, NS_DT, NS_T0, NS_T1, NS_SOLVE = 1e-4, 4e-3, 2.0, 3.0, 64
PAPER = ("34-72 % lower relative L2 error than FNO / SFNO on turbulent 2D Navier-Stokes and spherical shallow "
         "water when local (differential + DISCO) layers are added")
TEST_SEED = 100_000


# --- data ------------------------------------------------------------------------------------

def navier_stokes(n_train: int, n_test: int, seed: int) -> dict:
    """Tensors of the torus task: inputs (w(2)/s, f/s_f), outputs w(3)/s at 32² (train, test) and
    64² (test_2x); s the training inputs' standard deviation (one scale for w in and out)."""
    import torch

    from fem_ms.torus_vorticity import downsample, mlmc_forcing, random_vorticity, solve_vorticity

    def solve(seeds):
        w0 = np.stack([random_vorticity(NS_SOLVE, s) for s in seeds])
        chunks = [solve_vorticity(w0[i:i + 32], mlmc_forcing(NS_SOLVE), NS_NU, [NS_T0, NS_T1], NS_DT)
                  for i in tqdm(range(0, len(w0), 32), desc="Navier-Stokes data", unit="batch of 32", leave=False)]
        return np.concatenate(chunks, axis=1)  # (2 times, samples, n, n)

    train = solve([seed + s for s in range(n_train)])
    test = solve([TEST_SEED + seed + s for s in range(n_test)])
    scale = float(downsample(train[0], 32).std())
    f = mlmc_forcing(NS_SOLVE)
    f_scale = float(f.std())

    def tensors(w, m):
        x = downsample(w[0], m) / scale
        forcing = np.broadcast_to(downsample(f, m) / f_scale, x.shape)
        return (torch.from_numpy(np.stack([x, forcing], axis=1)).float(),
                torch.from_numpy(downsample(w[1], m) / scale)[:, None].float())

    return {"train": tensors(train, 32), "test": tensors(test, 32), "test_2x": tensors(test, 64),
            "setup": {"nu": NS_NU, "dt": NS_DT, "t_in": NS_T0, "t_out": NS_T1, "solved_at": NS_SOLVE,
                      "train_samples": n_train, "test_samples": n_test, "vorticity_scale": scale,
                      "initial_seeds": f"train: seed + s; test: {TEST_SEED} + seed + s"}}


def shallow_water(samples: int, seed: int) -> dict:
    """Tensors of the sphere task from a cached ``shallow_water_sphere`` dataset: inputs (the
    standardized state, sin latitude), outputs the standardized state an hour later."""
    import torch

    from fem_ms.data import DatasetFile, ShallowWaterSphereConfig

    config = ShallowWaterSphereConfig(name="shallow_water_sphere_local_no_flows", samples=samples, seed=seed,
                                      grids=(32, 64), train_fraction=0.75)
    data = DatasetFile(cached_dataset(config), "shallow_water_sphere")
    train_idx, test_idx = data.split("train"), data.split("test")
    state0 = data.read("state0", grid=32)[train_idx]
    mean = state0.mean(axis=(0, 2, 3), keepdims=True)[0]
    std = state0.std(axis=(0, 2, 3), keepdims=True)[0]

    def tensors(indices, n):
        x = (data.read("state0", grid=n)[indices] - mean) / std
        y = (data.read("state", grid=n)[indices] - mean) / std
        lat = np.broadcast_to(np.sin(data.read("lat", grid=n))[None, None, :, None], (len(x), 1, n, 2 * n))
        return torch.from_numpy(np.concatenate([x, lat], axis=1)).float(), torch.from_numpy(y).float()

    return {"train": tensors(train_idx, 32), "test": tensors(test_idx, 32), "test_2x": tensors(test_idx, 64),
            "setup": {"config": json_config(config), "train_samples": len(train_idx), "test_samples": len(test_idx),
                      "standardization": "per variable, mean and std of the training inputs (input and output)"}}


def json_config(config) -> dict:
    import json

    return json.loads(config.to_json())


# --- models ----------------------------------------------------------------------------------

def ns_variants(n_in: int, n_out: int, modes: int, radius: float) -> dict:
    """Constructors width → model of the torus task; the local branches are periodic."""
    from fem_ms_torch.operators import FNO, LocalNO

    common = dict(dim=2, depth=4, modes=modes, disco_radius=radius, periodic=True)
    return dict(zip(NS_MODELS, (
        lambda w: FNO(n_in, n_out, width=w, **common),
        lambda w: FNO(n_in, n_out, width=w, differential=True, **common),
        lambda w: FNO(n_in, n_out, width=w, disco=True, **common),
        lambda w: LocalNO(n_in, n_out, width=w, **common),
    ), strict=True))


def sphere_variants(n_in: int, n_out: int, modes: tuple, theta_cutoff: float) -> dict:
    """Constructors width → model of the sphere task: neuraloperator's SFNO, and it with DISCO."""
    from fem_ms_torch.operators import LocalSFNO
    from fem_ms_torch.registry import build_operator

    return dict(zip(SPHERE_MODELS, (
        lambda w: build_operator("neuralop:SFNO", n_in, n_out, 2, width=w, depth=4, modes=None,
                                 n_modes=list(modes), positional_embedding=None),
        lambda w: LocalSFNO(n_in, n_out, width=w, depth=4, modes=modes, theta_cutoff=theta_cutoff),
    ), strict=True))


# --- training ----------------------------------------------------------------------------------

def residual(model, channels: int):
    """``model`` learning the change of the state: output = the input's first ``channels``
    channels (the state) + model(input). The same for every model of a task; without it, at
    these budgets every network stays above the error of the identity map."""
    from torch import nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            return x[:, :channels] + self.net(x)

    return Residual()

def evaluate(model, x, y, batch: int = 8) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        errors = torch.cat([relative_l2(model(xb), yb) for xb, yb in zip(x.split(batch), y.split(batch))])
    model.train()
    value = float(errors.mean())
    if not math.isfinite(value):
        raise FloatingPointError(f"non-finite test error {value}")
    return value


def train_with_curve(model, data: dict, budget: float, batch: int, lr: float, seed: int, desc: str) -> dict:
    """AdamW with a cosine learning rate over ``budget`` CPU seconds (random batches, relative L2
    loss), stopping when spent; the test error at the fractions ``FRACTIONS`` of the budget,
    evaluated off the clock. A non-finite loss is a failure."""
    import torch

    x, y = data["train"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    curve, steps, spent, value = [], 0, 0.0, None
    marks = list(FRACTIONS)
    bar = tqdm(total=round(budget), desc=desc, unit="cpu-s", leave=False)
    model.train()
    while marks:
        for idx in torch.randperm(len(x), generator=generator).split(batch):
            if spent >= marks[0] * budget:
                curve.append({"cpu_s": spent, "steps": steps, "test_error": evaluate(model, *data["test"])})
                marks.pop(0)
                if not marks:
                    break
            start = time.process_time()
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(spent / budget, 1.0)))
            value = relative_l2(model(x[idx]), y[idx]).mean()
            if not torch.isfinite(value):
                raise FloatingPointError(f"{desc}: non-finite training loss at step {steps}")
            opt.zero_grad()
            value.backward()
            opt.step()
            steps += 1
            spent += time.process_time() - start
            bar.update(round(spent) - bar.n)
    bar.close()
    return {"steps": steps, "epochs": steps * batch / len(x), "train_cpu_s": spent,
            "final_train_loss": float(value.detach()), "curve": curve}


def run_task(task: str, data: dict, builds: dict, args, width: int) -> list[dict]:
    """Every model of ``task`` at the baseline's parameter budget, trained with each seed."""
    import torch

    identity = {split: float(relative_l2(data[split][0][:, :data[split][1].shape[1]], data[split][1]).mean())
                for split in ("test", "test_2x")}
    print(f"{task[:24]:24s} identity map (the input state): err={identity['test']:.4f} "
          f"err2x={identity['test_2x']:.4f}", flush=True)
    data["setup"]["identity_map_test_error"] = identity
    target = count(builds[BASELINE[task]](width))
    widths = {name: width if name == BASELINE[task] else match_width(build, target, width)
              for name, build in builds.items()}
    rows = []
    for seed in range(args.seed, args.seed + args.seeds):
        for name, build in builds.items():
            torch.manual_seed(seed)
            model = residual(build(widths[name]), data["train"][1].shape[1])
            fit = train_with_curve(model, data, args.budget, args.batch, args.lr, seed, f"{task[:12]} {name} s{seed}")
            row = {"task": task, "model": name, "seed": seed, "width": widths[name], "params": count(model), **fit,
                   "n_test": len(data["test"][0]), "test_error_train_res": fit["curve"][-1]["test_error"],
                   "test_error_2x_res": evaluate(model, *data["test_2x"], batch=4)}
            rows.append(row)
            print(f"{task[:24]:24s} {name:26s} seed={seed} w={row['width']:3d} params={row['params']:7d} "
                  f"steps={fit['steps']:5d} err={row['test_error_train_res']:.4f} "
                  f"err2x={row['test_error_2x_res']:.4f}", flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per task and model: the mean and spread over seeds, and the change against the baseline's mean."""
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        models = dict.fromkeys(r["model"] for r in rows if r["task"] == task)
        means = {}
        for model in models:
            runs = [r for r in rows if r["task"] == task and r["model"] == model]
            e1 = np.array([r["test_error_train_res"] for r in runs])
            e2 = np.array([r["test_error_2x_res"] for r in runs])
            means[model] = (float(e1.mean()), float(e2.mean()))
            out.append({"task": task, "model": model, "seeds": len(runs), "n_test": runs[0]["n_test"],
                        "width": runs[0]["width"],
                        "params": runs[0]["params"], "steps_mean": float(np.mean([r["steps"] for r in runs])),
                        "test_error_train_res_mean": means[model][0], "test_error_train_res_std": float(e1.std()),
                        "test_error_2x_res_mean": means[model][1], "test_error_2x_res_std": float(e2.std())})
        base = means.get(BASELINE[task])
        for row in out:
            if row["task"] == task and base is not None:
                row["change_vs_baseline_train_res_pct"] = 100 * (row["test_error_train_res_mean"] / base[0] - 1)
                row["change_vs_baseline_2x_res_pct"] = 100 * (row["test_error_2x_res_mean"] / base[1] - 1)
    return out


# --- targets -----------------------------------------------------------------------------------

def _best_local(payload: dict, task: str, key: str):
    """The local model of ``task`` with the lowest mean error at ``key`` and its summary row, and
    the baseline's row (None where not run)."""
    rows = [r for r in payload.get("summary", []) if r["task"] == task]
    base = next((r for r in rows if r["model"] == BASELINE[task]), None)
    local = [r for r in rows if r["model"] != BASELINE[task] and f"change_vs_baseline_{key}_pct" in r]
    best = min(local, key=lambda r: r[f"change_vs_baseline_{key}_pct"]) if local and base else None
    return best, base


def _caveats(payload: dict, task: str, key: str) -> list[str]:
    rows = [r for r in payload.get("summary", []) if r["task"] == task]
    out = [f"{r['model']}: {r[f'test_error_{key}_mean']:.4f} ± {r[f'test_error_{key}_std']:.4f} over "
           f"{r['seeds']} seeds ({r['params']:,} parameters, width {r['width']}, {r['steps_mean']:.0f} steps)"
           for r in rows]
    setup = payload["setup"]
    out.append(f"{setup['budget_cpu_s_per_model']:g} CPU-s of training per model and seed, one torch thread")
    return out


def targets(payload: dict) -> list[dict]:
    """Issue 27's target: adding local layers lowers the relative L2 error by at least 30 % on at
    least one of the two flows (the best local variant against the FNO / SFNO, mean over seeds, at
    the training resolution); and, for each flow, the same figure at the training resolution and
    at twice it (the resolution-transfer test)."""
    out = []
    comparator = ("the FNO (torus) / neuraloperator's SFNO (sphere) at the same parameter budget (every local "
                  "variant at the widest width not above it) and the same CPU-seconds of training, same learning "
                  "rate and schedule; mean over training seeds")
    per_task = {}
    for task in (NS, SPHERE):
        for key, label in (("train_res", "training resolution"), ("2x_res", "2x resolution (transfer)")):
            best, base = _best_local(payload, task, key)
            measured = best[f"change_vs_baseline_{key}_pct"] if best else None
            if key == "train_res":
                per_task[task] = (measured, best)
            flow = "Navier-Stokes" if task == NS else "shallow water"
            caveats = ([f"best local variant: {best['model']}"] if best else []) + _caveats(payload, task, key)
            out.append(threshold(f"{flow}: best local variant's error against the {BASELINE[task]}, {label}",
                                 measured, "<=", TARGET, " %", comparator, best["n_test"] if best else None,
                                 caveats, missing=f"the {flow} task was not run"))
    measured = [(m, task) for task, (m, _) in per_task.items() if m is not None]
    best = min(measured) if measured else None
    caveats = [f"{'Navier-Stokes' if t == NS else 'shallow water'}: {m:+.1f} %" for m, t in measured]
    caveats.append(f"paper: {PAPER}")
    out.insert(0, threshold("local layers' error against the FNO/SFNO on the better of the two flows (training "
                            "resolution)", best[0] if best else None, "<=", TARGET, " %", comparator,
                            per_task[best[1]][1]["n_test"] if best else None, caveats,
                            missing="neither flow was run"))
    return out


# --- figure ------------------------------------------------------------------------------------

def plot(payload: dict, path) -> None:
    """Test error against CPU-seconds of training, per model (mean over seeds; shaded: min–max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in payload["runs"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model in dict.fromkeys(r["model"] for r in payload["runs"] if r["task"] == task):
            runs = [r for r in payload["runs"] if r["task"] == task and r["model"] == model]
            cpu = np.mean([[p["cpu_s"] for p in r["curve"]] for r in runs], axis=0)
            err = np.array([[p["test_error"] for p in r["curve"]] for r in runs])
            line, = ax.plot(cpu, err.mean(axis=0), marker="o", label=f"{model} ({runs[0]['params']:,} par.)")
            ax.fill_between(cpu, err.min(axis=0), err.max(axis=0), color=line.get_color(), alpha=0.15)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("CPU-seconds of training (one thread)")
        ax.set_ylabel("test relative L2 error (training resolution)")
        ax.set_title(task, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = benchmark_arguments("local_no_flows", __doc__, "6 CPU-s per model and seed on small datasets")
    parser.add_argument("--budget", type=float, default=None, help="CPU seconds of training per model and seed")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per model (seed, seed + 1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=None, help="baseline width (FNO and SFNO; others matched)")
    parser.add_argument("--modes", type=int, default=12, help="FNO modes per axis (torus)")
    parser.add_argument("--sphere-modes", type=int, nargs=2, default=(22, 44),
                        help="SFNO n_modes (degrees, twice the orders); (22, 44): the data's truncation l, m < 22")
    parser.add_argument("--radius", type=float, default=0.1, help="DISCO support radius on the unit torus")
    parser.add_argument("--theta-cutoff", type=float, default=0.2, help="spherical DISCO support radius (rad)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3, help="peak learning rate, shared by all models")
    parser.add_argument("--tasks", choices=("all", "navier_stokes", "sphere"), default="all")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    args.budget = args.budget or (6.0 if q else 60.0)
    args.width = args.width or (12 if q else 20)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")

    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    runs, setup_data = [], {}
    if args.tasks in ("all", "navier_stokes"):
        data = navier_stokes(*((48, 16) if q else (200, 50)), args.seed)
        setup_data[NS] = data["setup"]
        builds = ns_variants(data["train"][0].shape[1], 1, args.modes, args.radius)
        runs += run_task(NS, data, builds, args, args.width)
    if args.tasks in ("all", "sphere"):
        data = shallow_water(64 if q else 256, args.seed)
        setup_data[SPHERE] = data["setup"]
        builds = sphere_variants(data["train"][0].shape[1], 3, tuple(args.sphere_modes), args.theta_cutoff)
        runs += run_task(SPHERE, data, builds, args, args.width)

    rows = summary(runs)
    print_table(rows, [("task", "task", ""), ("model", "model", ""), ("width", "width", "d"), ("params", "params", "d"),
                       ("test_error_train_res_mean", "err", ".4f"), ("change_vs_baseline_train_res_pct", "vs base %",
                                                                     "+.1f"),
                       ("test_error_2x_res_mean", "err 2x", ".4f"), ("change_vs_baseline_2x_res_pct", "2x vs base %",
                                                                     "+.1f")])
    payload = {
        "benchmark": "local_no_flows", "quick": q, "wall_s": time.perf_counter() - t_start,
        "setup": {"torch_threads": 1, "budget_cpu_s_per_model": args.budget, "seeds": args.seeds, "seed": args.seed,
                  "baseline_width": args.width, "depth": 4, "fno_modes": args.modes,
                  "sfno_n_modes": list(args.sphere_modes), "disco_radius_torus": args.radius,
                  "disco_theta_cutoff_sphere_rad": args.theta_cutoff, "batch": args.batch, "lr": args.lr,
                  "optimizer": "AdamW, cosine over the CPU-time budget", "loss": "relative L2 per sample",
                  "curve_fractions": list(FRACTIONS), "tasks": args.tasks, "data": setup_data, "paper": PAPER},
        "summary": rows, "runs": runs}
    path = write_result(args.out, payload, targets(payload))
    plot(payload, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
