"""Operator and reduced-order baselines against GMsFEM and GMsFEM-NO (the paper's Tables 7, 10, 13).

Data: the κ samples of ``gmsfem_no_accuracy`` at 100² (training κ: seeds 2s of the multilevel and
GMsFEM-basis generators; test κ: seeds 100000 + 2s), diffusion and Richards, f = 1 and the
paper's random forcing (seeds 100000 + 2s + 1). Fine solutions come from the package's fine
solver through the ``multilevel`` dataset generator (one level, 100²).

Every data-driven model is trained per problem on the f = 1 training solutions and tested on
unseen κ with f = 1 (*in distribution*) and with the random forcing (*out of distribution*: the
forcing it never saw). GMsFEM (SLEPc local eigenproblems) needs no training; GMsFEM-NO learns
the local bases from κ alone (``train_basis`` with the SAL loss, as in ``gmsfem_no_accuracy``),
one model serving both problems and both forcings.

Budget rule, applied to every trained model:

(a) *equal CPU-seconds*: data generation + training of each model (per problem) gets the CPU
    time GMsFEM-NO's data generation + training took under rule (b) (``--budget-cpu-s``
    overrides); its epochs are that budget minus its data generation, divided by its CPU cost
    per epoch measured under rule (b), so that its learning-rate schedule runs to its end;
(b) *equal epochs*: every iterative model trains ``--epochs`` epochs, batch size and learning
    rate alike.

Models fitted in closed form (POD, kernel ridge) cost what they cost under both rules. All
costs are process CPU time with one torch thread (the machine is shared; wall time would
measure the other users). Errors: mean relative L2 and H1-seminorm errors of the FE function
against the fine solution.

Default sized for the project's shared 2-core CPU (24 training κ, 8 test κ, 4 epochs under rule
(b), width 12, 6 modes, batches of 4 at lr 3·10⁻³: every model far from the paper's 1000 κ and
600 epochs); ``--quick`` is a smoke-size run with the same schema. ``--models`` runs a subset and
``--reuse`` adds it to an earlier result of the same settings (its budget and other rows kept).

    scripts/env python -m benchmarks.operator_baselines [--quick] [--out PATH]
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .common import benchmark_arguments, parse_benchmark_arguments, print_table
from .record import reused, threshold, write_result

TEST_SEED = 100_000  # gmsfem_no_accuracy's test κ and forcing seeds
FINE, COARSE, N_BASIS = 100, 5, 8
PROBLEMS = ("diffusion", "richards")
IN, OUT = "f=1", "random f"  # trained on f = 1; "random f" is out of distribution
RULES = {"a": "equal CPU-seconds (data + training)", "b": "equal epochs"}
SLEPC, NO = "GMsFEM (SLEPc)", "GMsFEM-NO (sal)"
PCANET, KERNEL = "PCANet", "kernel (Batlle et al.)"  # the labels (``name``) of fem_ms_torch.rom's baselines
# standalone grid operators κ (+ f) → u: label → registry name (those not registered are reported as such)
OPERATORS = {"F-FNO": "ffno", "FNO": "neuralop:FNO", "GNOT": "gnot", "Transolver++": "transolver++",
             "DeepONet": "deeponet"}
WITHIN = 5.0  # % above GMsFEM's error: the paper's and issue 6's reading of "as accurate"
DEGRADES = 10.0  # × in-distribution error: this benchmark's "degrades out of distribution" (as gmsfem_no_accuracy)
OVERFITS = 2.0  # test / train error: this benchmark's "overfits" (the paper: 4× PCANet, 14× kernel)

# The paper's figures (relative L2 %), each with what differs from this benchmark's setup.
PAPER = [
    {"model": "F-FNO", "table": "7", "case": "diffusion f=1", "paper_l2_pct": 1.02,
     "setup": "paper: 250², 1000 κ, 600 epochs, width 128; trained and tested on f = 1"},
    {"model": "F-FNO", "table": "7", "case": "diffusion random f", "paper_l2_pct": 4.51,
     "setup": "paper: 250², trained on random f (in distribution); ours: trained on f = 1"},
    {"model": "F-FNO", "table": "7", "case": "richards f=1", "paper_l2_pct": 2.44, "setup": "paper: 250²"},
    {"model": "F-FNO", "table": "7", "case": "richards random f", "paper_l2_pct": 4.45,
     "setup": "paper: 250², trained on random f; ours: trained on f = 1"},
    {"model": "GNOT", "table": "7", "case": "diffusion f=1", "paper_l2_pct": 1.26, "setup": "paper: 250², width 128"},
    {"model": "GNOT", "table": "7", "case": "diffusion random f", "paper_l2_pct": 14.29,
     "setup": "paper: 250², trained on random f; ours: trained on f = 1"},
    {"model": "GNOT", "table": "7", "case": "richards f=1", "paper_l2_pct": 2.34, "setup": "paper: 250²"},
    {"model": "GNOT", "table": "7", "case": "richards random f", "paper_l2_pct": 14.69,
     "setup": "paper: 250², trained on random f; ours: trained on f = 1"},
    {"model": "Transolver++", "table": "7", "case": "diffusion f=1", "paper_l2_pct": 1.15,
     "setup": "paper: 250², 8 layers, width 256"},
    {"model": "Transolver++", "table": "7", "case": "diffusion random f", "paper_l2_pct": 6.63,
     "setup": "paper: 250², trained on random f; ours: trained on f = 1"},
    {"model": "Transolver++", "table": "7", "case": "richards f=1", "paper_l2_pct": 2.17, "setup": "paper: 250²"},
    {"model": "Transolver++", "table": "7", "case": "richards random f", "paper_l2_pct": 8.82,
     "setup": "paper: 250², trained on random f; ours: trained on f = 1"},
    {"model": "F-FNO", "table": "13", "case": "diffusion random f", "paper_l2_pct": 218.0,
     "setup": "paper: 100², trained on f = 1, tested on random f (the same direction as ours)"},
    {"model": "F-FNO", "table": "13", "case": "richards random f", "paper_l2_pct": 196.0,
     "setup": "paper: 100², trained on f = 1, tested on random f (the same direction as ours)"},
    {"model": NO, "table": "11", "case": "diffusion f=1", "paper_l2_pct": 1.06,
     "setup": "paper: SAL-PR, 600 epochs, width ≥ 64; error against the fine solution of GMsFEM-NO"},
    {"model": NO, "table": "11", "case": "diffusion random f", "paper_l2_pct": 2.81, "setup": "as above"},
    {"model": NO, "table": "11", "case": "richards f=1", "paper_l2_pct": 1.87, "setup": "as above"},
    {"model": NO, "table": "11", "case": "richards random f", "paper_l2_pct": 2.99, "setup": "as above"},
    {"model": NO, "table": "10", "case": "train κ, random f", "paper_l2_pct": 2.6,
     "setup": "paper: random-f dataset (diffusion); ours: training κ with f = 1"},
    {"model": NO, "table": "10", "case": "diffusion random f", "paper_l2_pct": 2.8,
     "setup": "paper: random-f dataset, test split"},
    {"model": PCANET, "table": "10", "case": "train κ, random f", "paper_l2_pct": 6.0,
     "setup": "paper: trained on random f, 3000 epochs, tuned widths; ours: trained on f = 1"},
    {"model": PCANET, "table": "10", "case": "diffusion random f", "paper_l2_pct": 24.0,
     "setup": "paper: in distribution (random f); ours: random f is out of distribution"},
    {"model": KERNEL, "table": "10", "case": "train κ, random f", "paper_l2_pct": 7.0,
     "setup": "paper: vector RKHS (Matérn/RBF) after POD, trained on random f; ours: trained on f = 1"},
    {"model": KERNEL, "table": "10", "case": "diffusion random f", "paper_l2_pct": 100.0,
     "setup": "paper: in distribution (random f); ours: random f is out of distribution"},
]

ROW_FIELDS = {
    "rule": "a: equal CPU-seconds, b: equal epochs, -: no training loop (GMsFEM, closed-form fits: both rules)",
    "test_l2_pct, test_h1_pct": "mean relative L2 / H1-seminorm error on the test κ of this forcing (%)",
    "train_l2_pct, train_h1_pct": "the same on training κ with f = 1 (the first test_samples of them)",
    "parameters": "trained parameters (POD and kernel: the numbers stored to predict; GMsFEM: 0)",
    "data_cpu_s": "CPU-s of generating the model's training data (fine solves; GMsFEM-NO: SLEPc basis set)",
    "train_cpu_s": "CPU-s of training (fit), data loading and any PCA included",
    "cost_cpu_s": "data_cpu_s + train_cpu_s: what rule (a) equalises",
    "inference_cpu_s": "CPU-s per test sample of a prediction (GMsFEM, GMsFEM-NO: the offline stage per κ)",
    "online_cpu_s": "CPU-s of the reduced solve per sample (GMsFEM, GMsFEM-NO, intrusive ROMs)",
}

# the paper's Fig. 5 compares the intrusive ROMs without numbers in its text
ROM_FIGURE = {"POD (intrusive)": "paper: Fig. 5 only (no number in the text), trained on random f",
              "DeepONet-POD": "paper: Fig. 5 only (no number in the text), trained on random f",
              "intrusive POD, F-FNO basis": "paper: Fig. 5 only (no number in the text), trained on random f",
              "F-FNO-POD": "paper: Fig. 5 only (no number in the text), trained on random f",
              "DeepPOD": "paper: appendix F lists it, no number in the text"}


def _rows(payload, **match):
    return [r for r in payload["errors"] if all(r.get(k) == v for k, v in match.items())]


def _ratio(a, b):
    return a / b if a is not None and b else None


def targets(payload: dict) -> list[dict]:
    """The paper's ordering on this data, from the stored error rows: GMsFEM-NO within 5 % of
    GMsFEM in every cell; every standalone operator degrades out of distribution (random-f error
    ≥ 10× its f = 1 error, the smaller over the problems, under the equal-CPU rule); GMsFEM-NO
    more accurate than every standalone operator out of distribution; PCANet and the kernel
    method overfit (test error ≥ 2× train error)."""
    n = payload["setup"]["test_samples"]
    out = []
    gaps = {}
    for problem in PROBLEMS:
        for forcing in (IN, OUT):
            ref = _rows(payload, model=SLEPC, problem=problem, forcing=forcing)
            no = _rows(payload, model=NO, problem=problem, forcing=forcing)
            if ref and no:
                for norm in ("l2", "h1"):
                    gaps[problem, forcing, norm] = 100 * (no[0][f"test_{norm}_pct"] / ref[0][f"test_{norm}_pct"] - 1)
    worst = max(gaps, key=gaps.get) if gaps else None
    out.append(threshold(f"GMsFEM-NO within {WITHIN:g} % of GMsFEM's error in every cell",
                         gaps[worst] if worst else None, "<=", WITHIN, " %",
                         "GMsFEM with SLEPc bases on the same test κ, problem and forcing (mean relative L2 and "
                         "H1-seminorm errors against the fine solution)", n,
                         [f"worst cell: {worst[0]}, {worst[1]}, {worst[2].upper()}" if worst else "no cell measured",
                          f"GMsFEM-NO trained {payload['setup']['epochs']} epochs (rule b, which defines the "
                          "CPU budget of rule a)"]))
    no_ood = [r["test_l2_pct"] for r in _rows(payload, model=NO, forcing=OUT)]
    for label in payload["setup"]["operators"]:
        ratios, ood = {}, {}
        for problem in PROBLEMS:
            a = _rows(payload, model=label, problem=problem, forcing=IN, rule="a")
            b = _rows(payload, model=label, problem=problem, forcing=OUT, rule="a")
            if a and b:
                ratios[problem] = _ratio(b[0]["test_l2_pct"], a[0]["test_l2_pct"])
                ood[problem] = b[0]["test_l2_pct"]
        least = min(ratios, key=ratios.get) if ratios else None
        out.append(threshold(
            f"standalone {label} degrades out of distribution", ratios[least] if least else None, ">=", DEGRADES,
            "×", f"its own relative L2 error on f = 1 test κ (in distribution), {RULES['a']}", n,
            [f"trained on f = 1, tested on the paper's random f; the smaller ratio of the problems ({least})"
             if least else "not trained in this run",
             f"{DEGRADES:g}× is this benchmark's reading of 'degrades' (the paper's Table 13: 113–6554 % "
             "out of distribution against 1–15 % in distribution)"]))
        if ood and no_ood:
            out.append(threshold(
                f"GMsFEM-NO more accurate than standalone {label} out of distribution",
                _ratio(min(ood.values()), max(no_ood)), ">", 1.0, "×",
                f"GMsFEM-NO's worst relative L2 error on random f against {label}'s best ({RULES['a']})", n,
                ["measured: the operator's error / GMsFEM-NO's"]))
        else:
            out.append(threshold(f"GMsFEM-NO more accurate than standalone {label} out of distribution", None,
                                 ">", 1.0, "×", f"GMsFEM-NO's relative L2 error on random f against {label}'s", n))
    for label in (PCANET, KERNEL):
        rows = [r for r in _rows(payload, model=label, forcing=IN) if r["rule"] in ("a", "-") and r["train_l2_pct"]]
        ratio = min((_ratio(r["test_l2_pct"], r["train_l2_pct"]) for r in rows), default=None)
        out.append(threshold(f"{label} overfits (test error ≫ train error)", ratio, ">=", OVERFITS, "×",
                             "its own relative L2 error on its training κ (f = 1), the smaller ratio of the problems",
                             n, ["in distribution (f = 1 test κ); the paper measures on random f: 4× PCANet, 14× "
                                 "kernel"], missing="not trained in this run (model not available)"))
    return out


def paper_comparison(rows: list[dict]) -> list[dict]:
    """Each paper figure beside ours (relative L2 %, the equal-CPU run where the model has one);
    a model the paper gives no number for appears once, with its error on diffusion, random f."""
    preference = {"a": 0, "-": 1, "b": 2}
    ours = {}
    for r in sorted(rows, key=lambda r: preference[r["rule"]]):
        ours.setdefault((r["model"], f"{r['problem']} {r['forcing']}"), (r["test_l2_pct"], r["rule"]))
        if r["problem"] == "diffusion" and r["forcing"] == IN:
            ours.setdefault((r["model"], "train κ, random f"), (r["train_l2_pct"], r["rule"]))
    out = []
    for p in PAPER:
        figure, rule = ours.get((p["model"], p["case"]), (None, None))
        out.append({**p, "ours_l2_pct": figure, "rule": rule})
    for model in dict.fromkeys(r["model"] for r in rows):
        if not any(p["model"] == model for p in PAPER):
            figure, rule = ours.get((model, f"diffusion {OUT}"), (None, None))
            out.append({"model": model, "table": None, "case": f"diffusion {OUT}", "paper_l2_pct": None,
                        "setup": "not in the paper's tables" if model not in ROM_FIGURE else ROM_FIGURE[model],
                        "ours_l2_pct": figure, "rule": rule})
    return out


def comparison_table(document: dict) -> list[str]:
    """The rows of docs/benchmarks.md's table (model | paper figure | ours | setup difference),
    rendered from a result's ``paper_comparison``: the docs quote the file, never retype it."""

    def pct(value):
        return "–" if value is None else f"{value:.3g} %"

    lines = []
    for c in document["paper_comparison"]:
        paper = f"{pct(c['paper_l2_pct'])} (Table {c['table']}, {c['case']})" if c["table"] else f"– ({c['case']})"
        ours = "–" if c["ours_l2_pct"] is None else f"{pct(c['ours_l2_pct'])} (rule {c['rule']})"
        lines.append(f"| {c['model']} | {paper} | {ours} | {c['setup']} |")
    return lines


@dataclass
class Fitted:
    """A trained model of one problem: what predicts u on the vertex grid from κ and f, and its costs."""

    label: str
    rule: str
    predict: object  # (kappa (n, n), f (n+1, n+1)) -> u (n+1, n+1) numpy
    parameters: int
    train_cpu_s: float
    data_cpu_s: float
    epochs: int | None
    extra: dict = field(default_factory=dict)


def timed_generate(config, directory: Path) -> tuple[Path, float]:
    """Generate ``config``'s dataset in ``directory``; its path and the process CPU seconds it took."""
    from fem_ms.data import generate

    start = time.process_time()
    path = generate(config, directory)
    return path, time.process_time() - start


def parameter_count(checkpoint) -> int:
    from fem_ms_torch.checkpoints import load_checkpoint, stored_model

    stored = load_checkpoint(checkpoint)
    return sum(p.numel() for key in stored["models"] for p in stored_model(stored, checkpoint, key).parameters())


def train_operator(label, name, dataset, out, epochs, args, level: int = FINE) -> Fitted:
    """One standalone operator on one problem's training set at grid ``level`` (the shared
    standalone trainer); ``args`` gives its width, modes, batch size and learning rate."""
    from fem_ms_torch.standalone import StandaloneSolver, train_standalone

    grid = name in ("ffno", "neuralop:FNO")
    start = time.process_time()
    train_standalone(dataset, level, out, epochs=epochs, batch_size=args.batch_size, lr=args.lr, width=args.width,
                     depth=4, modes=args.modes if grid else None, seed=0, architecture=name, progress=False)
    cpu = time.process_time() - start
    solver = StandaloneSolver(out)
    return Fitted(label, "", lambda k, f: solver(k, f).double().numpy(), parameter_count(out), cpu, 0.0, epochs)


def rom_baselines() -> list[type]:
    """The baselines of :mod:`fem_ms_torch.rom` (its ``BASELINES``)."""
    import fem_ms_torch.rom as rom

    return list(rom.BASELINES)


def make_baseline(cls, problem: str, n_train: int, args):
    """A baseline of ``cls`` for ``problem``: the operators' width, modes, batch size and learning
    rate where it takes them, and its POD/PCA sizes capped at the dimension the centred training
    samples span (the paper's smallest, 100, where they span more)."""
    import inspect

    accepted = set()
    for klass in cls.__mro__:  # the keywords a subclass passes on to its base's __init__ too
        if "__init__" in vars(klass):
            accepted |= set(inspect.signature(klass.__init__).parameters)
    sizes = {"problem": problem, "width": args.width, "modes": args.modes, "batch_size": args.batch_size,
             "lr": args.lr, **{k: min(100, n_train - 1) for k in ("n_modes", "n_in", "n_out")}}
    return cls(**{k: v for k, v in sizes.items() if k in accepted})


def evaluate(fitted: Fitted, V, data: dict, limit: int | None = None) -> tuple[list, float]:
    """Relative (L2, H1) errors of ``fitted`` over the samples of ``data`` and its mean CPU
    seconds of inference per sample."""
    from fem_ms import vertex_field

    from .compare import relative_errors

    errors, cpu = [], 0.0
    count = len(data["u"]) if limit is None else min(limit, len(data["u"]))
    for s in range(count):
        start = time.process_time()
        u = fitted.predict(data["kappa"][s], data["f"][s])
        cpu += time.process_time() - start
        if not np.all(np.isfinite(u)):
            raise FloatingPointError(f"{fitted.label}: a non-finite prediction on sample {s}")
        errors.append(relative_errors(vertex_field(V, u), vertex_field(V, data["u"][s], name="u")))
    return errors, cpu / count


def _mean_pct(errors, j):
    return float(100 * np.mean([e[j] for e in errors])) if errors else None


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Test error against training cost (data + training CPU-s), in and out of distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = {m: plt.cm.tab20(i % 20) for i, m in enumerate(models)}
    markers = {"a": "o", "b": "s", "-": "*"}
    for ax, forcing, name in zip(axes, (IN, OUT), ("in distribution (f = 1)", "out of distribution (random f)")):
        for r in rows:
            if r["forcing"] != forcing or r["test_l2_pct"] is None:
                continue
            cost = max(r["cost_cpu_s"], 1e-2)
            ax.scatter(cost, r["test_l2_pct"], color=colours[r["model"]], marker=markers[r["rule"]], s=60,
                       facecolors="none" if r["problem"] == "richards" else colours[r["model"]],
                       label=r["model"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("data generation + training, CPU-s (GMsFEM: 0)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("mean relative L2 test error (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=min(6, len(unique)), fontsize=8)
    fig.suptitle(f"{title}\n● equal CPU-s (a)   ■ equal epochs (b)   ★ no training;  filled: diffusion, "
                 "open: Richards", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = benchmark_arguments("operator_baselines", __doc__, "6 training κ, 2 test κ, 2 epochs, width 8, 4 modes")
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--test-samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="of rule (b), every iterative model")
    parser.add_argument("--budget-cpu-s", type=float, default=None,
                        help="rule (a)'s CPU budget per model and problem (default: GMsFEM-NO's data + training)")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--modes", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--models", nargs="+", default=None,
                        help="the labels to run (default: every available one; 'GMsFEM' is GMsFEM and GMsFEM-NO)")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="an earlier result with the same settings: its rows of the models not run now are kept "
                             "(stamped with their run), and its budget is rule (a)'s")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    n_train = args.train_samples or (6 if q else 24)
    n_test = args.test_samples or (2 if q else 8)
    epochs = args.epochs or (2 if q else 4)
    args.width = args.width or (8 if q else 12)
    args.modes = args.modes or (4 if q else 6)
    for name in ("train_samples", "test_samples", "epochs", "width", "modes", "batch_size"):
        value = getattr(args, name) if name not in ("train_samples", "test_samples", "epochs") else \
            {"train_samples": n_train, "test_samples": n_test, "epochs": epochs}[name]
        if value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.budget_cpu_s is not None and not args.budget_cpu_s > 0:
        raise ValueError(f"--budget-cpu-s must be positive, got {args.budget_cpu_s}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a positive number, got {args.lr}")
    settings = {"train_samples": n_train, "test_samples": n_test, "epochs": epochs, "width": args.width,
                "modes": args.modes, "batch_size": args.batch_size, "lr": args.lr}
    earlier = None
    if args.reuse is not None:
        import json

        earlier = json.loads(Path(args.reuse).read_text())
        differ = {k: (earlier["setup"].get(k), v) for k, v in settings.items() if earlier["setup"].get(k) != v}
        if earlier.get("benchmark") != "operator_baselines" or differ:
            raise ValueError(f"--reuse {args.reuse}: not a result of these settings (earlier, now: {differ})")
        if args.budget_cpu_s is not None and args.budget_cpu_s != earlier["setup"]["budget_cpu_s"]:
            raise ValueError(f"--budget-cpu-s {args.budget_cpu_s} differs from the reused result's "
                             f"{earlier['setup']['budget_cpu_s']}")

    import torch

    torch.set_num_threads(1)  # process CPU time is the cost measure: one thread

    import firedrake as fd

    from fem_ms import cell_field, structured_hierarchy, vertex_field
    from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig
    from fem_ms.problems import make_problem
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.registry import available_models
    from fem_ms_torch.rom import read_split

    from .compare import Method, build_space, relative_errors

    t_start = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="fem-ms-baselines-")
    work = Path(scratch.name)
    registered = set(available_models())
    operators = {label: name for label, name in OPERATORS.items() if name in registered}
    missing = sorted(set(OPERATORS) - set(operators))
    roms = rom_baselines()
    known = ["GMsFEM", *operators, *(cls.name for cls in roms)]
    chosen = known if args.models is None else args.models
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"--models: unknown or unavailable {unknown}; available: {known}")
    operators = {label: name for label, name in operators.items() if label in chosen}
    roms = [cls for cls in roms if cls.name in chosen]
    run_gmsfem = "GMsFEM" in chosen
    if not run_gmsfem and args.budget_cpu_s is None and earlier is None:
        raise ValueError("without GMsFEM-NO in --models, rule (a)'s budget must come from --budget-cpu-s or --reuse")

    # --- data -----------------------------------------------------------------------------
    data_cpu, train, test, train_paths = {}, {}, {}, {}
    for problem in tqdm(PROBLEMS, desc="fine solutions", unit="problem"):
        path, data_cpu[problem] = timed_generate(MultilevelConfig(
            name=f"{problem}_train", samples=n_train, levels=(FINE,), problem=problem, forcing="constant",
            train_fraction=1.0), work)
        train[problem], train_paths[problem] = read_split(path, FINE, "train"), path
        for forcing, kind in ((IN, "constant"), (OUT, "random")):
            path, _ = timed_generate(MultilevelConfig(
                name=f"{problem}_test_{kind}", samples=n_test, levels=(FINE,), problem=problem, forcing=kind,
                seed=TEST_SEED, train_fraction=0.0), work)
            test[problem, forcing] = read_split(path, FINE, "test")
    for problem in PROBLEMS:  # one set of κ for every problem and forcing
        assert np.array_equal(train[problem]["kappa"], train[PROBLEMS[0]]["kappa"])
        for forcing in (IN, OUT):
            assert np.array_equal(test[problem, forcing]["kappa"], test[PROBLEMS[0], IN]["kappa"])
    pair = structured_hierarchy(COARSE, FINE, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    rows = []
    n_train_eval = min(n_train, n_test)
    if run_gmsfem:
        basis_set, data_cpu["basis"] = timed_generate(GMsFEMBasisConfig(
            name="basis", samples=n_train, fine=FINE, coarse=COARSE, n_basis=N_BASIS, train_fraction=1.0), work)
        # GMsFEM-NO under rule (b): its cost is rule (a)'s budget
        start = time.process_time()
        checkpoint = train_basis(basis_set, work / "no.pt", epochs=epochs, loss="sal", width=args.width, depth=4,
                                 modes=args.modes, batch_size=args.batch_size, lr=args.lr, oversample=8, seed=0,
                                 progress=False)
        no_train_cpu = time.process_time() - start
        no_cost = data_cpu["basis"] + no_train_cpu
    budget = args.budget_cpu_s or (earlier["setup"]["budget_cpu_s"] if earlier else no_cost)

    def add_row(model, rule, problem, forcing, test_errors, train_errors, **info):
        rows.append({"model": model, "rule": rule, "problem": problem, "forcing": forcing,
                     "test_l2_pct": _mean_pct(test_errors, 0), "test_h1_pct": _mean_pct(test_errors, 1),
                     "train_l2_pct": _mean_pct(train_errors, 0) if train_errors else None,
                     "train_h1_pct": _mean_pct(train_errors, 1) if train_errors else None,
                     "test_samples": len(test_errors), "train_samples_evaluated": len(train_errors or []), **info})

    # --- GMsFEM and GMsFEM-NO: one space per κ serves every problem and forcing --------------
    if run_gmsfem:
        methods = [Method(SLEPC, "slepc", {"progress": False}),
                   Method(NO, "learned", {"checkpoint": str(checkpoint), "verify": "off"})]
        errs = {(m.label, p, f): [] for m in methods for p in PROBLEMS for f in (IN, OUT, "train")}
        offline_cpu = {m.label: [] for m in methods}
        online_cpu = {m.label: [] for m in methods}
        cases = [("test", s) for s in range(n_test)] + [("train", s) for s in range(n_train_eval)]
        for split, s in tqdm(cases, desc="GMsFEM and GMsFEM-NO", unit="kappa"):
            source = test[PROBLEMS[0], IN] if split == "test" else train[PROBLEMS[0]]
            kappa = cell_field(pair.fine, source["kappa"][s])
            for method in methods:
                start = time.process_time()
                space, _ = build_space(pair, V, kappa, method)
                if split == "test":
                    offline_cpu[method.label].append(time.process_time() - start)
                for problem in PROBLEMS:
                    forcings = (IN, OUT) if split == "test" else ("train",)
                    for forcing in forcings:
                        data = test[problem, forcing] if split == "test" else train[problem]
                        f = 1.0 if forcing in (IN, "train") else vertex_field(V, data["f"][s])
                        start = time.process_time()
                        u = space.reduce(make_problem(problem, V, kappa, f)).solve().u
                        if split == "test":
                            online_cpu[method.label].append(time.process_time() - start)
                        errs[method.label, problem, forcing].append(
                            relative_errors(u, vertex_field(V, data["u"][s], name="u")))
        no_params = parameter_count(checkpoint)
        for method in methods:
            learned = method.label == NO
            costs = dict(parameters=no_params, data_cpu_s=data_cpu["basis"], train_cpu_s=no_train_cpu,
                         cost_cpu_s=no_cost, epochs=epochs) if learned else \
                dict(parameters=0, data_cpu_s=0.0, train_cpu_s=0.0, cost_cpu_s=0.0, epochs=None)
            for problem in PROBLEMS:
                for forcing in (IN, OUT):
                    add_row(method.label, "b" if learned else "-", problem, forcing,
                            errs[method.label, problem, forcing], errs[method.label, problem, "train"], **costs,
                            inference_cpu_s=float(np.mean(offline_cpu[method.label])),
                            online_cpu_s=float(np.mean(online_cpu[method.label])))

    # --- standalone operators under both rules --------------------------------------------
    budget_notes = []
    for label, name in tqdm(operators.items(), desc="standalone operators", unit="model"):
        for problem in PROBLEMS:
            per_epoch = None
            for rule in ("b", "a"):
                if rule == "b":
                    n_epochs = epochs
                else:
                    n_epochs = max(1, int((budget - data_cpu[problem]) // per_epoch))
                fitted = train_operator(label, name, train_paths[problem],
                                        work / f"{name.replace(':', '_')}_{problem}_{rule}.pt", n_epochs, args)
                if rule == "b":
                    per_epoch = fitted.train_cpu_s / epochs
                cost = data_cpu[problem] + fitted.train_cpu_s
                if rule == "a" and cost > 1.25 * budget:
                    budget_notes.append(f"{label} {problem}: one epoch already exceeds the budget ({cost:.1f} CPU-s)")
                train_errors, _ = evaluate(fitted, V, train[problem], limit=n_test)
                for forcing in (IN, OUT):
                    test_errors, infer = evaluate(fitted, V, test[problem, forcing])
                    add_row(label, rule, problem, forcing, test_errors, train_errors, parameters=fitted.parameters,
                            data_cpu_s=data_cpu[problem], train_cpu_s=fitted.train_cpu_s, cost_cpu_s=cost,
                            epochs=n_epochs, inference_cpu_s=infer, online_cpu_s=None)

    # --- reduced-order and regression baselines (fem_ms_torch.rom's one interface) -----------
    for cls in tqdm(roms, desc="reduced-order baselines", unit="model"):
        for problem in PROBLEMS:
            per_epoch = None
            for rule in ("b", "a") if cls.iterative else ("-",):
                baseline = make_baseline(cls, problem, n_train, args)
                if rule == "-":
                    baseline.fit(train[problem])
                    n_epochs = None
                elif rule == "b":
                    n_epochs = epochs
                    baseline.fit(train[problem], epochs=n_epochs, seed=0)
                    per_epoch = baseline.train_seconds / epochs
                else:
                    left = budget - data_cpu[problem]
                    n_epochs = max(1, int(left // per_epoch))
                    baseline.fit(train[problem], epochs=n_epochs, max_cpu_seconds=max(left, per_epoch), seed=0)
                    n_epochs = len(baseline.history) or n_epochs
                cost = data_cpu[problem] + baseline.train_seconds
                if rule == "a" and cost > 1.25 * budget:
                    budget_notes.append(f"{cls.name} {problem}: over the budget ({cost:.1f} CPU-s)")
                fitted = Fitted(cls.name, rule, lambda k, f, b=baseline: b.predict(k[None], f[None])[0],
                                int(baseline.n_parameters), baseline.train_seconds, data_cpu[problem], n_epochs)
                train_errors, _ = evaluate(fitted, V, train[problem], limit=n_test)
                for forcing in (IN, OUT):
                    test_errors, infer = evaluate(fitted, V, test[problem, forcing])
                    solve = getattr(baseline, "solve_seconds", None)
                    add_row(cls.name, rule, problem, forcing, test_errors, train_errors, parameters=fitted.parameters,
                            data_cpu_s=data_cpu[problem], train_cpu_s=baseline.train_seconds, cost_cpu_s=cost,
                            epochs=n_epochs, inference_cpu_s=infer,
                            online_cpu_s=solve if solve is not None and math.isfinite(solve) else None)

    if earlier is not None:  # the rows of the models not run now, stamped with the run that measured them
        ran = {r["model"] for r in rows}
        rows = reused([r for r in earlier["errors"] if r["model"] not in ran], earlier) + rows
        data_cpu = {**earlier.get("data_cpu_s", {}), **data_cpu}
        budget_notes = earlier.get("budget_notes", []) + budget_notes
    operator_labels = [label for label in OPERATORS if any(r["model"] == label for r in rows)]
    payload = {
        "benchmark": "operator_baselines", "quick": q, "wall_s": time.perf_counter() - t_start,
        "setup": {"fine": FINE, "coarse": COARSE, "n_basis": N_BASIS, "train_samples": n_train,
                  "test_samples": n_test, "train_error_samples": n_train_eval, "epochs": epochs, "width": args.width,
                  "depth": 4, "modes": args.modes, "batch_size": args.batch_size, "lr": args.lr, "torch_threads": 1,
                  "train_kappa_seeds": "2s (the multilevel and GMsFEM-basis generators' seed 0)",
                  "test_kappa_seeds": f"{TEST_SEED} + 2s", "test_forcing_seeds": f"{TEST_SEED} + 2s + 1",
                  "training_forcing": "f = 1 (in distribution); random f is out of distribution",
                  "budget_rules": RULES, "budget_cpu_s": budget,
                  "budget_source": "--budget-cpu-s" if args.budget_cpu_s else
                  earlier["setup"]["budget_source"] if earlier else "GMsFEM-NO data + training (rule b)",
                  "operators": operator_labels, "not_registered": missing,
                  "cost_measure": "process CPU time, one torch thread"},
        "row_fields": ROW_FIELDS, "data_cpu_s": data_cpu, "budget_notes": budget_notes, "errors": rows,
        "paper_comparison": paper_comparison(rows)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = out.with_suffix(".png")
    plot(rows, figure, f"{n_train} training κ at {FINE}², {n_test} test κ; budget {budget:.0f} CPU-s per model")
    payload["plot"] = figure.name
    print_table(rows, [("model", "model", ""), ("rule", "rule", ""), ("problem", "problem", ""),
                       ("forcing", "forcing", ""), ("train_l2_pct", "train L2 %", ".2f"),
                       ("test_l2_pct", "test L2 %", ".2f"), ("test_h1_pct", "test H1 %", ".2f"),
                       ("parameters", "params", "d"), ("cost_cpu_s", "cost CPU-s", ".1f")])
    path = write_result(out, payload, targets(payload))
    print(f"wrote {path} and {figure}")


if __name__ == "__main__":
    main()
