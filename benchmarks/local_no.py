"""Local neural operators: FNO vs FNO + differential vs FNO + DISCO vs both (LocalNO), and
neuraloperator's FNO / LocalNO, at one parameter budget and one training-time budget.

Tasks (datasets through ``cached_dataset``):

* GMsFEM basis (100² fine, 5² coarse, N_bf = 8, rough κ of contrast 9600): interior ("full")
  neighbourhood patches, log κ + coordinates on the 41² patch vertices → the 8 SLEPc basis
  functions, trained with the subspace loss (SAL) of GMsFEM-NO. Error: the relative L2
  projection error of the true basis onto the predicted span, ‖V − P_pred V‖/‖V‖ = sqrt(SAL/N_bf)
  (bases are only defined up to an invertible mixing). 2× resolution: the same operators applied
  to 81² patches of a 200² fine grid (new κ, never trained on).
* Darcy (multilevel data, levels 32 and 64): κ on the 32² cells → u at the 33² vertices,
  relative L2 loss; tested at 32 and at 64 (2×).

Every model gets the same parameter budget (each variant takes the largest width whose parameter
count does not exceed the baseline FNO's) and the same budget of CPU time
(``time.process_time``, robust to other jobs on a shared machine) under AdamW with a cosine
schedule over that time. Then GMsFEM-NO (``basis="learned"``) with an F-FNO, a LocalNO and an
F-FNO + local branches backbone, each at the largest width whose parameter count does not
exceed the F-FNO's, trained by ``train_basis`` with equal epochs, is compared by the relative L2
error of GMsFEM solutions on unseen κ (diffusion, f = 1, 100²).

Default sized for the 2-core CPU (its run time is in docs/benchmarks.md). A full-size
configuration for a GPU:
``--budget 900 --width 32 --modes 12 --no-epochs 100 --no-train-samples 1000 --no-test 20``.

    scripts/env python -m benchmarks.local_no [--quick] [--out PATH]
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from .common import benchmark_arguments, cached_dataset, parse_benchmark_arguments, print_table
from .compare import ErrorTable, Method, build_spaces, compare_with_fine
from .record import Target, threshold, write_result

TEST_SEED = 100_000
BASIS_SAMPLES = 80  # κ of the basis task's default dataset: 1,024 training patches (64 κ × 16 interior)
SLEPC = "GMsFEM (SLEPc)"
BASIS_TASK, DARCY_TASK = "GMsFEM basis 100^2, N_bf=8 (full patches)", "Darcy multilevel 32^2 (2x: 64^2)"
MODELS = ("FNO", "FNO+diff", "FNO+DISCO", "LocalNO (FNO+diff+DISCO)", "neuralop FNO", "neuralop LocalNO")
LOCAL_NO = MODELS[3]
QUICK_SAMPLES = {"basis": 8, "basis_2x": 2, "darcy": 40}  # κ samples of the quick run's datasets
BACKBONES = ("ffno", "localno", "localffno")  # GMsFEM-NO backbones (train_basis architectures)
N_BASIS = 8
BASIS_TARGET = -30.0  # % change of LocalNO's error against the FNO's on the basis task (issue 8)
PAPER = "34-72 % lower relative L2 than FNO on turbulent Navier-Stokes / shallow water; gains on Darcy"


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def variants(n_in: int, n_out: int, modes: int, shape: tuple, radius: float) -> dict:
    """Constructors width → model of every compared architecture."""
    from neuralop.models import FNO as NeuralopFNO
    from neuralop.models import LocalNO as NeuralopLocalNO

    from fem_ms_torch.operators import FNO, LocalNO

    common = dict(dim=2, depth=4, modes=modes, disco_radius=radius)
    # neuraloperator counts n_modes over both signs (and halves the last axis for the rfft):
    # 2·modes keeps the same frequencies as our FNO
    nop = dict(n_modes=(2 * modes, 2 * modes), in_channels=n_in, out_channels=n_out, n_layers=4,
               positional_embedding=None)
    return dict(zip(MODELS, (
        lambda w: FNO(n_in, n_out, width=w, **common),
        lambda w: FNO(n_in, n_out, width=w, differential=True, **common),
        lambda w: FNO(n_in, n_out, width=w, disco=True, **common),
        lambda w: LocalNO(n_in, n_out, width=w, **common),
        lambda w: NeuralopFNO(hidden_channels=w, **nop),
        # non-periodic data; its DISCO stencil is built for default_in_shape only
        lambda w: NeuralopLocalNO(hidden_channels=w, default_in_shape=shape, radius_cutoff=radius,
                                  domain_length=[1.0, 1.0], conv_padding_mode="zeros", **nop),
    ), strict=True))


def match_width(build, target: int, start: int) -> int:
    """The largest width whose parameter count does not exceed ``target`` (counts grow with
    width), searched from ``start`` down and up."""
    w = start
    while count(build(w)) > target:
        if w == 1:
            raise ValueError(f"even width 1 has more than {target:,} parameters")
        w -= 1
    while count(build(w + 1)) <= target:
        w += 1
    return w


def subspace_error(pred, true):
    """Per sample ‖Q_t − P_pred Q_t‖_F/‖Q_t‖_F = sqrt(SAL/N) for (batch, N, points) bases."""
    import torch

    q_true = torch.linalg.qr(true.transpose(1, 2).double(), mode="reduced").Q
    q_pred = torch.linalg.qr(pred.transpose(1, 2).double(), mode="reduced").Q
    overlap = (q_true.transpose(1, 2) @ q_pred).pow(2).sum(dim=(1, 2))
    return torch.sqrt((true.shape[1] - overlap).clamp_min(0.0) / true.shape[1])


def relative_l2(pred, true):
    return (pred - true).flatten(1).norm(dim=1) / true.flatten(1).norm(dim=1)


def train_timed(model, x, y, loss, budget: float, batch: int, lr: float, seed: int, desc: str) -> dict:
    """AdamW, cosine learning rate over ``budget`` CPU seconds, random batches; stop when spent."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    steps, start, value = 0, time.process_time(), None
    bar = tqdm(total=round(budget), desc=desc, unit="cpu-s", leave=False)
    model.train()
    while True:
        for idx in torch.randperm(len(x), generator=generator).split(batch):
            spent = time.process_time() - start
            if spent >= budget:
                bar.close()
                return {"steps": steps, "epochs": steps * batch / len(x), "train_cpu_s": spent,
                        "final_train_loss": float(value.detach()) if value is not None else None}
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * spent / budget))
            value = loss(model(x[idx]), y[idx])
            opt.zero_grad()
            value.backward()
            opt.step()
            steps += 1
            bar.update(round(time.process_time() - start) - bar.n)


def evaluate(model, x, y, metric, batch: int = 16) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        return float(torch.cat([metric(model(xb), yb) for xb, yb in zip(x.split(batch), y.split(batch))]).mean())


def load_tasks(quick: bool, seed: int, which: str = "all", basis_samples: int = BASIS_SAMPLES) -> dict:
    """Tensors of both tasks: train (x, y), test at the training resolution and at 2×
    (a quick run generates small datasets of its own, so that a cold cache costs seconds)."""
    import torch

    from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig
    from fem_ms_torch.basis.features import patch_features
    from fem_ms_torch.basis.losses import sal_loss
    from fem_ms_torch.data import GMsFEMBasisDataset, MultilevelDataset

    name = "gmsfem_basis_100_local_no" + ("" if basis_samples == BASIS_SAMPLES else f"_{basis_samples}")
    basis_path = cached_dataset(GMsFEMBasisConfig(name=name, samples=basis_samples, fine=100, coarse=5,
                                                  n_basis=8, seed=seed))
    basis_2x = cached_dataset(GMsFEMBasisConfig(name="gmsfem_basis_200_local_no_test",
                                                samples=QUICK_SAMPLES["basis_2x"] if quick else 6, fine=200,
                                                coarse=5, n_basis=8, seed=TEST_SEED, train_fraction=0.0))
    darcy_samples = QUICK_SAMPLES["darcy"] if quick else 300
    darcy_path = cached_dataset(MultilevelConfig(name="darcy_local_no", samples=darcy_samples,
                                                 levels=(32, 64), seed=seed))

    def stack(ds, limit):
        items = [ds[i] for i in range(min(len(ds), limit))]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    n_train, n_test = (64, 16) if quick else (10 ** 9, 10 ** 9)
    tasks = {}

    def patches(path, split, limit):
        return {k: v[:limit] for k, v in GMsFEMBasisDataset(path, "full", split).tensors(("kappa", "basis")).items()}

    train = patches(basis_path, "train", n_train)
    log_k = torch.log(train["kappa"])
    mean, std = float(log_k.mean()), float(log_k.std())
    sets = {"train": train, "test": patches(basis_path, "test", n_test), "test_2x": patches(basis_2x, "test", n_test)}
    tasks[BASIS_TASK] = {
        "data": {k: (patch_features(v["kappa"][:, 0], mean, std), v["basis"]) for k, v in sets.items()},
        "loss": lambda p, t: sal_loss(p.flatten(2), t.flatten(2)), "metric": lambda p, t: subspace_error(
            p.flatten(2), t.flatten(2)), "error": "relative L2 subspace error sqrt(SAL/N_bf)"}
    darcy = {"train": stack(MultilevelDataset(darcy_path, 32, "train"), n_train * 4),
             "test": stack(MultilevelDataset(darcy_path, 32, "test"), n_test * 4),
             "test_2x": stack(MultilevelDataset(darcy_path, 64, "test"), n_test * 4)}
    log_k = torch.log(darcy["train"]["kappa"])
    mean, std = float(log_k.mean()), float(log_k.std())
    scale = float(darcy["train"]["u"].std())
    tasks[DARCY_TASK] = {
        "data": {k: (patch_features(v["kappa"][:, 0], mean, std), v["u"] / scale) for k, v in darcy.items()},
        "loss": lambda p, t: relative_l2(p, t).mean(), "metric": relative_l2, "error": "relative L2 of u"}
    return {k: v for k, v in tasks.items() if which == "all" or k == {"basis": BASIS_TASK, "darcy": DARCY_TASK}[which]}


def compare_backbones(args, tasks) -> list[dict]:
    import torch

    rows = []
    for task, spec in tasks.items():
        x, y = spec["data"]["train"]
        builds = variants(x.shape[1], y.shape[1], args.modes, tuple(x.shape[2:]), args.radius)
        target = count(builds["FNO"](args.width))
        for name, build in builds.items():
            if args.models and name not in args.models:
                continue
            width = args.width if name == "FNO" else match_width(build, target, args.width)
            torch.manual_seed(args.seed)
            model = build(width)
            fit = train_timed(model, x, y, spec["loss"], args.budget, args.batch, args.lr, args.seed,
                              f"{task[:12]} {name}")
            row = {"task": task, "model": name, "width": width, "params": count(model), **fit,
                   "error_measure": spec["error"], "n_test": len(spec["data"]["test"][0]),
                   "n_test_2x": len(spec["data"]["test_2x"][0]),
                   "test_error_train_res": evaluate(model, *spec["data"]["test"], spec["metric"]),
                   "test_error_2x_res": evaluate(model, *spec["data"]["test_2x"], spec["metric"], batch=4)}
            rows.append(row)
            print(f"{task[:20]:20s} {name:26s} w={width:3d} params={row['params']:7d} steps={fit['steps']:5d} "
                  f"err={row['test_error_train_res']:.4f} err2x={row['test_error_2x_res']:.4f}", flush=True)
        base = next((r for r in rows if r["task"] == task and r["model"] == "FNO"), None)
        for r in rows:
            if r["task"] == task and base is not None:
                r["change_vs_fno_train_res"] = r["test_error_train_res"] / base["test_error_train_res"] - 1
                r["change_vs_fno_2x_res"] = r["test_error_2x_res"] / base["test_error_2x_res"] - 1
    return rows


def backbone(architecture: str, width: int, modes: int):
    """The GMsFEM-NO model of one 2D neighbourhood kind as ``train_basis`` builds it (defaults:
    the exact constant, no oversampling: N_bf − 1 outputs)."""
    from fem_ms_torch.basis.features import n_features
    from fem_ms_torch.registry import build_operator

    return build_operator(architecture, n_features(2), N_BASIS - 1, 2, width=width, depth=4, modes=modes)


def gmsfem_no(args, work: Path) -> dict:
    """GMsFEM with learned bases from each backbone vs SLEPc, relative L2/H1 on unseen κ; every
    backbone at the widest width whose parameter count does not exceed the F-FNO's."""
    import firedrake as fd

    from fem_ms import Diffusion, cell_field, solve, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms.data import GMsFEMBasisConfig
    from fem_ms_torch.basis.train import train_basis

    data = cached_dataset(GMsFEMBasisConfig(name="gmsfem_basis_100_local_no_gno", samples=args.no_train_samples,
                                            fine=100, coarse=5, n_basis=N_BASIS, seed=args.seed, train_fraction=1.0))
    budget = count(backbone("ffno", args.no_width, args.no_modes))
    widths = {arch: args.no_width if arch == "ffno" else
              match_width(lambda w, arch=arch: backbone(arch, w, args.no_modes), budget, args.no_width)
              for arch in BACKBONES}
    checkpoints, train_s = {}, {}
    for arch in BACKBONES:
        t0 = time.process_time()
        checkpoints[arch] = train_basis(data, work / f"{arch}.pt", epochs=args.no_epochs, width=widths[arch],
                                        depth=4, modes=args.no_modes, architecture=arch, seed=args.seed,
                                        inner_product=args.no_inner_product)
        train_s[arch] = time.process_time() - t0
    pair = structured_hierarchy(5, 100, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kle = paper_kle((100, 100))
    methods = [Method(SLEPC, "slepc", {"progress": False}, N_BASIS)]
    methods += [Method(f"GMsFEM-NO ({arch})", "learned", {"checkpoint": str(path), "verify": "off"}, N_BASIS)
                for arch, path in checkpoints.items()]
    errors = ErrorTable("method")
    per_kappa: dict = {}
    for s in tqdm(range(args.no_test), desc="GMsFEM-NO test kappa", unit="sample"):
        kappa = cell_field(pair.fine, kle.sample_kappa(TEST_SEED + 2 * s))
        problem = Diffusion(V, kappa, 1.0)
        failures: dict = {}
        comparison = compare_with_fine(problem, build_spaces(pair, V, kappa, methods, failures=failures),
                                       solve(problem).u)
        errors.add_comparison((), comparison)
        for label, message in failures.items():
            errors.fail((label,), message)
        for method in methods:  # null where the method's space was degenerate
            c = comparison.get(method.label)
            per_kappa.setdefault(method.label, []).append(100 * c["l2"] if c else None)
    rows = []
    for row in errors.rows():
        arch = row["method"][len("GMsFEM-NO ("):-1] if row["method"] != SLEPC else None
        rows.append({"method": row["method"], "test_kappa": row["samples"], "l2_mean_pct": row["l2_mean_pct"],
                     "h1_mean_pct": row["h1_mean_pct"], "l2_per_kappa_pct": per_kappa[row["method"]],
                     **({"failed": row["failed"], "failure": row["failure"]} if "failed" in row else {}),
                     **({"width": widths[arch], "params_per_kind_full": count(backbone(arch, widths[arch],
                                                                                       args.no_modes))}
                        if arch else {})})
    return {"train_cpu_s": train_s, "rows": rows}


def targets(payload: dict) -> list[dict]:
    """Issue 8's targets: LocalNO at least 30 % lower error than the FNO on the GMsFEM basis task
    (at no more than the FNO's parameters and the same CPU-time budget), and GMsFEM-NO with a
    LocalNO backbone at least as accurate as with the F-FNO, at no more than the F-FNO's
    parameters (a run that trained the backbones at equal width does not answer it)."""
    out = []
    basis = [r for r in payload.get("backbones", []) if r["task"] == BASIS_TASK]
    local = next((r for r in basis if r["model"] == LOCAL_NO), None)
    fno = next((r for r in basis if r["model"] == "FNO"), None)
    measured = 100 * (local["test_error_train_res"] / fno["test_error_train_res"] - 1) if local and fno else None
    caveats = ["one training seed; the error is the relative L2 projection error of the true basis onto the "
               "predicted span, sqrt(SAL/N_bf)"]
    if fno:
        local_variants = {r["model"]: 100 * (r["test_error_train_res"] / fno["test_error_train_res"] - 1)
                          for r in basis if r["model"] != "FNO"}
        if local_variants:
            best = min(local_variants, key=local_variants.get)
            caveats.append(f"best compared model: {best} at {local_variants[best]:+.1f} %")
    if local and fno:
        caveats.append(f"parameters: LocalNO {local['params']:,}, FNO {fno['params']:,}; training steps "
                       f"{local['steps']:,} and {fno['steps']:,} in the same CPU time")
    setup = payload["setup"]
    out.append(threshold(
        "LocalNO error against the FNO on the GMsFEM basis task", measured, "<=", BASIS_TARGET, " %",
        f"the FNO (width {setup['baseline_width']}) at equal CPU-time budget ({setup['budget_cpu_s_per_model']:g} "
        "CPU-s per model, one torch thread), LocalNO at the widest width not above the FNO's parameter count",
        local.get("n_test") if local else None, caveats,
        missing="the basis task was not run" if not basis else
        f"{'LocalNO' if local is None else 'the FNO baseline'} was not trained in this run (--models)"))
    no = (payload.get("gmsfem_no") or {}).get("rows", [])
    l2 = {r["method"]: r for r in no}
    ffno, localno = l2.get("GMsFEM-NO (ffno)"), l2.get("GMsFEM-NO (localno)")
    name = "GMsFEM-NO error with a LocalNO backbone against the F-FNO backbone"
    comparator = ("GMsFEM-NO with the F-FNO backbone, the LocalNO backbone at the widest width not above the F-FNO's "
                  "parameter count, both trained by train_basis for the same epochs on the same κ")
    caveats = ["diffusion, f = 1, 100^2 / 5^2, N_bf = 8; mean relative L2 error against the fine solution"]
    equal = bool(ffno and localno and "params_per_kind_full" in localno)
    failed = [r for r in (ffno, localno) if r and r.get("failed")]
    for r in failed:
        caveats.append(f"{r['method']}: a degenerate space on {r['failed']} test κ ({r['failure']})")
    if equal and failed:  # a backbone without a usable space on some κ: no like-for-like mean
        return out + [Target(name, "≤ 0 %", None, comparator, ffno["test_kappa"] + ffno.get("failed", 0),
                             False if localno.get("failed") else None, caveats).record()]
    if ffno and localno:
        caveats.append(f"L2: LocalNO backbone {localno['l2_mean_pct']:.2f} %, F-FNO {ffno['l2_mean_pct']:.2f} %, "
                       f"SLEPc {l2[SLEPC]['l2_mean_pct']:.2f} %")
    if equal:
        caveats.append(f"parameters per kind (full): LocalNO {localno['params_per_kind_full']:,} (width "
                       f"{localno['width']}), F-FNO {ffno['params_per_kind_full']:,} (width {ffno['width']})")
    out.append(threshold(
        name, 100 * (localno["l2_mean_pct"] / ffno["l2_mean_pct"] - 1) if equal else None, "<=", 0.0, " %",
        comparator, localno and localno["test_kappa"], caveats,
        missing="the GMsFEM-NO comparison was not run" if not no else
        "the backbones were trained at equal width, where the LocalNO backbone has several times the F-FNO's "
        "parameters: not an equal-parameter comparison"))
    return out


def main(argv=None) -> None:
    from fem_ms_torch.basis.train import INNER_PRODUCTS

    parser = benchmark_arguments("local_no", __doc__, "3 CPU-s per model on small datasets of its own, GMsFEM-NO "
                                 "on 4 κ for 1 epoch, 1 test κ")
    parser.add_argument("--budget", type=float, default=None, help="CPU seconds of training per model")
    parser.add_argument("--width", type=int, default=20, help="baseline FNO width (others matched in parameters)")
    parser.add_argument("--modes", type=int, default=10)
    parser.add_argument("--radius", type=float, default=0.075, help="DISCO support radius on [0, 1]^2")
    parser.add_argument("--batch", type=int, default=16)
    # the FNO baseline's best of 1e-3, 3e-3, 1e-2, 2e-2, 4e-2 on the basis task, so that the shared setting
    # favours the baseline; on Darcy the FNO is as good at 2e-2 as at 1e-3 (docs/benchmarks.md)
    parser.add_argument("--lr", type=float, default=2e-2, help="peak learning rate, shared by all models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-train-samples", type=int, default=None, help="GMsFEM-NO training kappa")
    parser.add_argument("--no-epochs", type=int, default=None)
    parser.add_argument("--no-width", type=int, default=16,
                        help="GMsFEM-NO F-FNO backbone width (the other backbones matched in parameters)")
    parser.add_argument("--no-modes", type=int, default=8)
    parser.add_argument("--no-test", type=int, default=None, help="GMsFEM-NO test kappa")
    parser.add_argument("--no-inner-product", choices=INNER_PRODUCTS, default="energy",
                        help="of the GMsFEM-NO subspace loss (local_no.json: euclidean)")
    parser.add_argument("--tasks", choices=("all", "basis", "darcy", "none"), default="all",
                        help="backbone comparison tasks")
    parser.add_argument("--basis-samples", type=int, default=None,
                        help=f"κ samples of the basis task's dataset, 80 %% for training (default {BASIS_SAMPLES}: "
                             f"1,024 training patches; {QUICK_SAMPLES['basis']} with --quick)")
    parser.add_argument("--models", nargs="+", default=None, choices=MODELS, metavar="MODEL",
                        help="train only these of the compared models (default all; the FNO baseline is needed "
                             "for the 'vs FNO' columns): " + ", ".join(f"'{m}'" for m in MODELS))
    parser.add_argument("--skip-gmsfem-no", action="store_true", help="skip the GMsFEM-NO backbone comparison")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    args.budget = args.budget or (3.0 if q else 45.0)
    args.basis_samples = args.basis_samples or (QUICK_SAMPLES["basis"] if q else BASIS_SAMPLES)
    args.no_train_samples = args.no_train_samples or (4 if q else 24)
    args.no_epochs = args.no_epochs or (1 if q else 10)
    args.no_test = args.no_test or (1 if q else 3)

    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    tasks = {} if args.tasks == "none" else load_tasks(q, args.seed, args.tasks, args.basis_samples)
    rows = compare_backbones(args, tasks)
    with tempfile.TemporaryDirectory(prefix="fem-ms-local-no-") as scratch:  # the backbones' checkpoints
        no = None if args.skip_gmsfem_no else gmsfem_no(args, Path(scratch))

    print_table(rows, [("task", "task", ""), ("model", "model", ""), ("width", "width", "d"), ("params", "params", "d"),
                       ("steps", "steps", "d"), ("test_error_train_res", "err", ".4f"),
                       ("change_vs_fno_train_res", "vs FNO", "+.1%"), ("test_error_2x_res", "err 2x", ".4f"),
                       ("change_vs_fno_2x_res", "2x vs FNO", "+.1%")])
    if no is not None:
        print()
        print_table(no["rows"], [("method", "method", ""), ("width", "width", "d"),
                                 ("params_per_kind_full", "params (full)", "d"), ("l2_mean_pct", "L2 %", ".3f"),
                                 ("h1_mean_pct", "H1 %", ".3f")])
    payload = {
        "benchmark": "local_no", "quick": q, "wall_s": time.perf_counter() - t_start,
        "setup": {"torch_threads": 1, "budget_cpu_s_per_model": args.budget, "baseline_width": args.width,
                  "modes": args.modes, "depth": 4, "disco_radius": args.radius, "batch": args.batch, "lr": args.lr,
                  "seed": args.seed, "optimizer": "AdamW, cosine over the CPU-time budget", "tasks": args.tasks,
                  "models": args.models or "all", "basis_samples": args.basis_samples,
                  "gmsfem_no": {"train_kappa": args.no_train_samples, "epochs": args.no_epochs,
                                "ffno_width": args.no_width, "modes": args.no_modes, "test_kappa": args.no_test,
                                "backbones": "each at the widest width not above the F-FNO's parameter count",
                                "inner_product": args.no_inner_product,
                                "test_kappa_seeds": f"{TEST_SEED} + 2s", "problem": "diffusion, f = 1, 100^2 / 5^2"},
                  "paper": PAPER},
        "backbones": rows, "gmsfem_no": no}
    path = write_result(args.out, payload, targets(payload))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
