"""``table4``: the paper's Table 4 in 3D (50³ / 5×5×5, 216 neighbourhoods, N_bf = 8), classical and learned.

Three parts (``--part``, default all, in this order), each a section of the result file:

- ``training`` (section ``table4_training``): a ``gmsfem_basis`` dataset of 3D patches
  (``paper`` convention, 21³ vertices for an interior neighbourhood) and GMsFEM-NO trained on it
  for the four 3D neighbourhood kinds (fem-ms's full, half, quarter, corner: the paper's full,
  face, edge, corner) with the recipe that met the 2D target (SAL in the energy inner product,
  ``oversample`` extra functions reduced by Rayleigh–Ritz); its dataset and training
  configurations are written as TOML to ``benchmarks/configs/`` (the weights are not committed).
  ``--publish DIR`` copies the checkpoint to ``DIR/gmsfem_no_3d.pt`` and writes ``DIR/READY``.
- ``default`` (section ``table4_default``): SLEPc GMsFEM with each κ rescaled to [1, 9600].
- ``paper`` (section ``table4``): SLEPc GMsFEM with the committed ``paper`` convention (κ =
  exp(0.35·Y), not refitted) and GMsFEM-NO on the same held-out κ, forcings and fine references.

Both conventions use the paper's 3D forcing as printed (γ = 2000, α = 2, β = 1); the
diffusion and Richards cells at f = 1 and random f, with the Kirchhoff guard of
:func:`.paper.evaluate` (a Richards sample whose max |w| > 30 is recorded unsolved, not tried).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from ..common import cached_dataset, print_table
from ..record import reused, threshold
from .paper import HELD_OUT, N_BASIS, PAPER, PAPER_GRID, evaluate, training_record, with_paper, worst_cell

COMMAND = "table4"
ORDER = 2
SECTIONS = ("table4_training", "table4_default", "table4")
SUMMARY = "Table 4 (3D, 50^3): SLEPc GMsFEM in both conventions, GMsFEM-NO trained on 3D patches"
PARTS = ("training", "default", "paper")

# The paper's GMsFEM-NO columns of Table 4, (L2 %, H1 %) by (problem, forcing).
PAPER_NO = {"sal": {("diffusion", "f=1"): (3.10, 20.39), ("diffusion", "random f"): (5.01, 24.92),
                    ("richards", "f=1"): (4.12, 15.37), ("richards", "random f"): (5.02, 24.92)},
            "sal-pr": {("diffusion", "f=1"): (3.10, 20.39), ("diffusion", "random f"): (5.00, 24.86),
                       ("richards", "f=1"): (4.14, 15.39), ("richards", "random f"): (5.00, 24.89)}}
CASES = [f"{p}/{f}" for p, f in PAPER["table4"]]
LEARNED = "GMsFEM-NO (sal)"
# Tolerances stated before the run: our GMsFEM within a factor 2 of the paper's in every cell
# (a prediction: the convention was fitted on 2D Table 2 only), GMsFEM-NO within 5 % of SLEPc's
# L2 error in every cell (issue 26, as in 2D), the floor of samples per cell, and its
# bound on the training time.
PREDICT_TOLERANCE = 2.0
WITHIN = 5.0
MIN_SAMPLES = 10
MAX_TRAINING_S = 7200.0
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def add_arguments(parser) -> None:
    parser.add_argument("--part", nargs="+", choices=PARTS, default=None,
                        help="the parts to run (default all; 'paper' needs the checkpoint of 'training')")
    parser.add_argument("--samples", type=int, default=None,
                        help="held-out κ per convention (default 4; quick 1)")
    parser.add_argument("--train-samples", type=int, default=None,
                        help="κ samples of the 3D basis dataset, each giving 216 patches (default 6; quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per kind (default 10; quick 1)")
    parser.add_argument("--width", type=int, default=None, help="F-FNO width (default 12; quick 4)")
    parser.add_argument("--modes", type=int, default=None, help="F-FNO modes per axis (default 6; quick 2)")
    parser.add_argument("--oversample", type=int, default=8,
                        help="extra functions predicted, reduced by Rayleigh-Ritz (default 8, the 2D recipe)")
    parser.add_argument("--device", default=None, help="training and inference device (default: CUDA if available)")
    parser.add_argument("--publish", type=Path, default=None,
                        help="copy the trained checkpoint to DIR/gmsfem_no_3d.pt and write DIR/READY (JSON)")


def run(args, earlier: dict) -> dict:
    for name in ("train_samples", "epochs", "width", "modes"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.oversample < 0:
        raise ValueError(f"--oversample must be non-negative, got {args.oversample}")
    parts = args.part or list(PARTS)
    fine, coarse = (10, 2) if args.quick else PAPER_GRID["table4"]
    samples = args.samples or (1 if args.quick else 4)
    out = {}
    if "training" in parts:
        out["table4_training"] = training(args, earlier, fine, coarse)
        print(json.dumps({k: v for k, v in out["table4_training"].items() if k != "train_config"}, indent=1))
    if "default" in parts:
        out["table4_default"] = classical(fine, coarse, samples, "default")
    if "paper" in parts:
        trained = out.get("table4_training") or earlier.get("table4_training")
        if trained is None:
            raise ValueError("--part paper needs the checkpoint of --part training (not run, and not in "
                             f"{args.out})")
        checkpoint = Path(trained["checkpoint"])
        if not checkpoint.exists():
            raise FileNotFoundError(f"{checkpoint}: the GMsFEM-NO checkpoint of the training section is not on this "
                                    "machine; rerun --part training")
        if (trained["fine"], trained["coarse"]) != (fine, coarse):
            raise ValueError(f"the training section is at {trained['fine']}^3 / {trained['coarse']}^3, this run at "
                             f"{fine}^3 / {coarse}^3 (--quick and full runs do not mix)")
        out["table4"] = classical(fine, coarse, samples, "paper", checkpoint, args.device)
    for key in ("table4_default", "table4"):
        if key in out:
            print(key, f"{fine}^3 / {coarse}^3")
            print_table(out[key]["rows"], [("problem", "problem", ""), ("forcing", "forcing", ""),
                                           ("method", "method", ""), ("l2_mean_pct", "L2 %", ".2f"),
                                           ("paper_l2_pct", "paper", ".2f"), ("h1_mean_pct", "H1 %", ".2f"),
                                           ("paper_h1_pct", "paper", ".2f")])
    return out


def training(args, earlier: dict, fine: int, coarse: int) -> dict:
    """The 3D basis dataset and the GMsFEM-NO models (section ``table4_training``); a rerun with
    the same configuration whose checkpoint is complete reuses the earlier section."""
    from fem_ms.data import GMsFEMBasisConfig
    from fem_ms.typed_config import plain_dict, toml_text
    from fem_ms_torch.basis.config import TrainBasisConfig
    from fem_ms_torch.basis.train import train_basis

    q = args.quick
    data_config = GMsFEMBasisConfig(name=f"p26-3d_basis{fine}" + ("_quick" if q else ""),
                                    samples=args.train_samples or (2 if q else 6), dim=3, fine=fine, coarse=coarse,
                                    n_basis=N_BASIS, convention="paper", train_fraction=1.0)
    settings = {"epochs": args.epochs or (1 if q else 10), "loss": "sal", "architecture": "ffno",
                "width": args.width or (4 if q else 12), "depth": 4, "modes": args.modes or (2 if q else 6),
                "batch_size": 4, "lr": 3e-3, "inner_product": "energy", "oversample": args.oversample, "seed": 0}
    suffix = "_quick" if q else ""
    old = earlier.get("table4_training")
    t0, started = time.process_time(), time.time()
    dataset = cached_dataset(data_config)
    # the CPU-seconds of its generation where this call made the file; None where the cache had it
    dataset_cpu_s = time.process_time() - t0 if dataset.stat().st_mtime >= started else None
    key = hashlib.sha256(json.dumps([data_config.to_json(), settings], sort_keys=True).encode()).hexdigest()[:12]
    checkpoint = dataset.parent / f"gmsfem_no_3d_{key}.pt"
    config = TrainBasisConfig(dataset=dataset, out=checkpoint, device=args.device, **settings)
    CONFIGS.mkdir(exist_ok=True)
    (CONFIGS / f"table4_dataset{suffix}.toml").write_text(data_config.to_toml())
    # paths relative to where `fem-ms generate table4_dataset.toml` wrote the data set: the file
    # reproduces the training on any machine (the run's own paths are in the JSON section)
    portable = {**plain_dict(config), "dataset": f"{data_config.name}.h5", "out": "gmsfem_no_3d.pt"}
    (CONFIGS / f"table4_train_basis{suffix}.toml").write_text(
        "# fem-ms generate benchmarks/configs/table4_dataset" + suffix + ".toml, then in the same directory:\n"
        "# fem-ms train-basis benchmarks/configs/table4_train_basis" + suffix + ".toml\n"
        + toml_text({"kind": "train_basis", **portable}))
    if old and old.get("checkpoint") == str(checkpoint) and checkpoint.exists():
        section = reused([old], earlier)[0]
    else:
        train_basis(dataset, checkpoint, **settings, device=args.device)
        per_kind = training_record(checkpoint)
        section = {"fine": fine, "coarse": coarse, "dataset_config": json.loads(data_config.to_json()),
                   "dataset_cpu_s": dataset_cpu_s, "train_config": settings,
                   "train_cpu_s": sum(k["cpu_s"] for k in per_kind.values()),  # every session's epochs
                   "checkpoint": str(checkpoint), "per_kind": per_kind,
                   "configs": [f"benchmarks/configs/table4_dataset{suffix}.toml",
                               f"benchmarks/configs/table4_train_basis{suffix}.toml"]}
    if args.publish is not None:
        publish(section, args.publish)
    return section


def publish(section: dict, directory: Path) -> None:
    """Copy the checkpoint to ``directory/gmsfem_no_3d.pt`` and write ``directory/READY``: the
    checkpoint's training settings, the dataset's samples and generation CPU-seconds, the
    training CPU-seconds (JSON; written last, atomically, so that its presence means ready)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "gmsfem_no_3d.pt"
    shutil.copyfile(section["checkpoint"], target.with_suffix(".pt.tmp"))
    os.replace(target.with_suffix(".pt.tmp"), target)
    ready = {"checkpoint": str(target), "n_basis": N_BASIS, **section["train_config"],
             "dataset": section["dataset_config"], "dataset_samples": section["dataset_config"]["samples"],
             "dataset_cpu_s": section["dataset_cpu_s"], "train_cpu_s": section["train_cpu_s"],
             "per_kind": section["per_kind"]}
    (directory / "READY.tmp").write_text(json.dumps(ready, indent=1))
    os.replace(directory / "READY.tmp", directory / "READY")
    print(f"published {target} and {directory / 'READY'}")


def classical(fine: int, coarse: int, samples: int, convention: str, checkpoint: Path | None = None,
              device: str | None = None) -> dict:
    """The four cells of Table 4 on held-out κ in ``convention``; with a ``checkpoint``, GMsFEM-NO
    on the same κ beside SLEPc (network bases as predicted: ``verify="off"``)."""
    from fem_ms.coefficients import PAPER_CONVENTION_KAPPA_SCALE, PAPER_FORCING_3D

    from ..compare import Method

    methods = [Method("slepc", "slepc", {"progress": False}, N_BASIS)]
    if checkpoint is not None:
        methods.append(Method(LEARNED, "learned", {"checkpoint": str(checkpoint), "verify": "off", "device": device},
                              N_BASIS))
    scale = PAPER_CONVENTION_KAPPA_SCALE if convention == "paper" else None
    t0 = time.process_time()
    rows = evaluate(fine, coarse, CASES, samples, scale, PAPER_FORCING_3D["beta"], seed0=HELD_OUT,
                    desc=f"table4 ({convention})", dim=3, methods=methods)
    rows = with_paper(rows, "table4")
    for row in rows:
        if row["method"] == LEARNED:
            row["paper_no_l2_pct"], row["paper_no_h1_pct"] = PAPER_NO["sal"][row["problem"], row["forcing"]]
    return {"fine": fine, "coarse": coarse, "dim": 3, "n_basis": N_BASIS, "paper_grid": list(PAPER_GRID["table4"]),
            "convention": convention, "kappa_scale": scale, "forcing": dict(PAPER_FORCING_3D),
            "samples": samples, "cpu_s": time.process_time() - t0, "rows": rows}


def _slepc_targets(section: dict | None, convention: str) -> list[dict]:
    name = f"GMsFEM error vs the paper's Table 4, worst cell ({convention} convention, predicted, not refitted)"
    comparator = "the paper's GMsFEM column of Table 4 (50^3 / 5x5x5, N_bf = 8)"
    solved_name = f"share of the paper's Table 4 cells solved on every sample ({convention} convention)"
    samples_name = f"samples per Table 4 cell ({convention} convention)"
    if section is None:
        return [threshold(name, None, "<=", PREDICT_TOLERANCE, "x", comparator, None),
                threshold(solved_name, None, ">=", 1.0, "", "every cell of the paper's table", None),
                threshold(samples_name, None, ">=", MIN_SAMPLES, "", "issue 26's floor", None)]
    rows = [r for r in section["rows"] if r["method"] == "slepc"]
    worst, notes = worst_cell(rows)
    grid = f"{section['fine']}^3 / {section['coarse']}^3"
    caveats = [f"ours at {grid}, the paper's at {section['paper_grid'][0]}^3 / {section['paper_grid'][1]}^3",
               f"forcing as printed for 3D (alpha = {section['forcing']['alpha']:g}, "
               f"beta = {section['forcing']['beta']:g})"] + notes
    solved = [r for r in rows if r["l2_ratio"] is not None]
    if len(solved) < len(rows):
        caveats.insert(0, "worst over the solved cells only; the unsolved ones count in the next target")
    n = min((r["samples"] for r in solved), default=None)
    return [threshold(name, worst, "<=", PREDICT_TOLERANCE, "x", comparator, n, caveats,
                      missing="no cell solved"),
            threshold(solved_name, len(solved) / len(rows), ">=", 1.0, "", "every cell of the paper's table",
                      len(rows), [note for note in notes if "no solution" in note]),
            threshold(samples_name, section["samples"], ">=", MIN_SAMPLES, "", "issue 26's floor", len(rows),
                      ["CPU-scaled: one 50^3 sample costs minutes of CPU on this 2-core machine shared by five "
                       "runs (the section's cpu_s)"] if section["samples"] < MIN_SAMPLES else [])]


def _learned_target(section: dict | None, training_section: dict | None) -> dict:
    name = f"{LEARNED} within {WITHIN:g} % of SLEPc's L2 error in every Table 4 cell (3D, paper convention)"
    comparator = "GMsFEM with SLEPc bases on the same held-out κ, problem, forcing and fine reference"
    if section is None:
        return threshold(name, None, "<=", WITHIN, " %", comparator, None)
    by = {(r["problem"], r["forcing"], r["method"]): r for r in section["rows"]}
    gaps, caveats = {}, []
    for problem, forcing in PAPER["table4"]:
        slepc, learned = by[problem, forcing, "slepc"], by[problem, forcing, LEARNED]
        cell = f"{problem}/{forcing}"
        if slepc.get("failed") and learned.get("failed") and slepc["failure"] == learned["failure"]:
            caveats.append(f"{cell}: no fine solution on {slepc['failed']} samples ({slepc['failure']}); "
                           "compared on the other samples" if slepc["samples"] else
                           f"{cell}: not compared, no fine solution ({slepc['failure']})")
            if not slepc["samples"]:
                continue
        if learned.get("failed", 0) > slepc.get("failed", 0) or learned["l2_mean_pct"] is None:
            return threshold(name, None, "<=", WITHIN, " %", comparator, section["samples"],
                             [f"{cell}: GMsFEM-NO has no solution on {learned.get('failed')} samples "
                              f"({learned.get('failure')})"] + caveats, missing="a GMsFEM-NO space failed")
        gaps[cell] = 100 * (learned["l2_mean_pct"] / slepc["l2_mean_pct"] - 1)
        caveats.append(f"{cell}: L2 {learned['l2_mean_pct']:.2f} % vs SLEPc {slepc['l2_mean_pct']:.2f} % "
                       f"({gaps[cell]:+.1f} %); H1 {learned['h1_mean_pct']:.2f} % vs {slepc['h1_mean_pct']:.2f} %")
    if training_section is not None:
        t = training_section
        settings = t["train_config"]
        caveats.append(f"trained on the patches of {t['dataset_config']['samples']} κ, {settings['epochs']} epochs, "
                       f"width {settings['width']}, modes {settings['modes']}; one seed; only SAL (the paper also "
                       "trains SAL-PR)")
    worst = max(gaps, key=gaps.get) if gaps else None
    if worst:
        caveats.insert(0, f"worst cell: {worst}")
    return threshold(name, gaps[worst] if worst else None, "<=", WITHIN, " %", comparator, section["samples"],
                     caveats, missing="no cell compared")


def targets(payload: dict) -> list[dict]:
    """Per convention the worst cell's factor between our GMsFEM error and the paper's (≤ 2, not
    refitted), the share of cells solved, the samples per cell (issue 26's floor: 10);
    GMsFEM-NO's worst L2 gap to SLEPc (≤ 5 %); the GMsFEM-NO training CPU time (≤ 2 h)."""
    out = _slepc_targets(payload.get("table4_default"), "default")
    out += _slepc_targets(payload.get("table4"), "paper")
    out.append(_learned_target(payload.get("table4"), payload.get("table4_training")))
    training_section = payload.get("table4_training")
    name = "GMsFEM-NO 3D training CPU time, four kinds (issue 26: under 2 hours)"
    comparator = "issue 26's bound on the 3D training"
    if training_section is None:
        out.append(threshold(name, None, "<=", MAX_TRAINING_S, " s", comparator, None))
    else:
        out.append(threshold(name, training_section["train_cpu_s"], "<=", MAX_TRAINING_S, " s", comparator,
                             len(training_section["per_kind"]),
                             ["process CPU seconds of the training epochs on a shared 2-core CPU",
                              f"dataset generation: {training_section['dataset_cpu_s']:.0f} CPU-s more"
                              if training_section["dataset_cpu_s"] is not None else
                              "dataset generation not measured (the cache had the dataset)"]))
    return out
