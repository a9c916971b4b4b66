"""``learned``: GMsFEM-NO (SAL, oversampled + Rayleigh–Ritz) against SLEPc GMsFEM on Tables 2, 3, 14 and 15.

The models are trained on the shared ``paper``-convention dataset at 100² / 5×5 (41² patches)
with the settings of ``benchmarks/configs/gmsfem_no_paper_learned.toml`` (the recipe of
benchmarks/gmsfem_no_accuracy.py, sized for this CPU), then SLEPc's and each model's bases are
compared on the same held-out κ, forcings and fine references (:func:`.paper.evaluate`): Table 2
at the training grid, Tables 3, 14 and 15 at 250² / 10×10 (51² patches: a resolution transfer;
the paper trained at 250²). The networks' own bases are used (no a-posteriori fallback to SLEPc).
A checkpoint of the same settings is reused (``$FEM_MS_CHECKPOINTS``, default
``~/.cache/fem-ms/checkpoints``); its training record (per-epoch losses and CPU seconds) comes
from the checkpoint either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import tomllib
from pathlib import Path

from ..common import cached_dataset, print_table
from ..compare import Method
from ..gmsfem_no_accuracy import PAPER_NO as PAPER_NO_TABLE2
from ..record import threshold, utc_now
from .paper import HELD_OUT, N_BASIS, PAPER, PAPER_GRID, evaluate, training_record

COMMAND = "learned"
ORDER = 3
SECTIONS = ("learned",)
SUMMARY = "Tables 2, 3, 14, 15: GMsFEM-NO (SAL) trained on the paper-convention dataset vs SLEPc GMsFEM"

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "gmsfem_no_paper_learned.toml"
# The models the configuration trains (its [train.*] tables); fixed here so that the targets'
# names do not depend on what ran.
MODELS = ("sal",)
SLEPC = "GMsFEM (SLEPc)"
TABLES = ("table2", "table3", "table14", "table15")
# The paper's GMsFEM-NO (SAL) columns, (L2 %, H1 %), keyed by (problem, forcing).
PAPER_NO = {
    "table2": PAPER_NO_TABLE2,
    "table3": {("diffusion", "f=1"): (1.13, 13.92), ("diffusion", "random f"): (1.62, 22.50),
               ("richards", "f=1"): (1.82, 14.27), ("richards", "random f"): (1.62, 22.62)},
    "table14": {("heat", "f=1"): (0.78, 13.06), ("heat", "f=sin(pi x)cos(pi y)"): (1.17, 21.57)},
    "table15": {("robin", "f=1"): (1.22, 12.10), ("robin", "random f"): (1.23, 12.31)},
}
# Samples per table of the full run (those of the classical section: the same held-out κ).
SAMPLES = {"table2": 10, "table3": 10, "table14": 5, "table15": 10}
# Tolerances stated before the run: issue 26's (issue 6's) 2D target, GMsFEM-NO within 5 % of
# SLEPc's error in every cell, and the factor 2 of the classical predicted tables against the
# paper's GMsFEM-NO figures.
WITHIN = 5.0
PAPER_FACTOR = 2.0


def add_arguments(parser) -> None:
    parser.add_argument("--samples", type=int, default=None,
                        help="held-out κ per table (default: 10, heat 5; quick 1)")
    parser.add_argument("--tables", nargs="+", default=None, choices=["2", "3", "14", "15"],
                        help="the tables to evaluate (default all; the others of an earlier run of the same "
                             "models are kept)")
    parser.add_argument("--device", default=None, help="torch device of training and inference (default: CUDA "
                        "when available, else CPU)")


def run(args, earlier: dict) -> dict:
    import torch

    torch.set_num_threads(1)  # the machine is shared: CPU-seconds, not wall time, are the budget
    t0 = time.process_time()
    config = load_config(args.quick)
    models = {loss: train(loss, config, args.device) for loss in MODELS}
    training_cpu_s = time.process_time() - t0
    methods = [Method(SLEPC, "slepc", {"progress": False}, N_BASIS)]
    methods += [Method(f"GMsFEM-NO ({loss})", "learned",
                       {"checkpoint": str(m["path"]), "verify": "off", "device": args.device}, N_BASIS)
                for loss, m in models.items()]
    tables = [f"table{t}" for t in (args.tables or ["2", "3", "14", "15"])]
    training = {loss: {k: v for k, v in m.items() if k != "path"} for loss, m in models.items()}
    evaluated = kept_tables(earlier.get("learned"), training, tables)
    for table in tables:
        evaluated[table] = evaluate_table(table, methods, args.quick, args.samples,
                                          2 * config["dataset"]["fine"] // config["dataset"]["coarse"] + 1)
        print(table, f"{evaluated[table]['fine']}^2")
        print_table(evaluated[table]["rows"], [
            ("problem", "problem", ""), ("forcing", "forcing", ""), ("method", "method", ""),
            ("l2_mean_pct", "L2 %", ".2f"), ("paper_l2_pct", "paper", ".2f"), ("h1_mean_pct", "H1 %", ".2f"),
            ("paper_h1_pct", "paper", ".2f"), ("l2_vs_slepc_pct", "L2 vs SLEPc %", "+.2f"),
            ("h1_vs_slepc_pct", "H1 vs SLEPc %", "+.2f")])
    from fem_ms.coefficients import PAPER_CONVENTION_FORCING_BETA, PAPER_CONVENTION_KAPPA_SCALE

    return {"learned": {
        "config_file": str(CONFIG.relative_to(CONFIG.parents[2])), "dataset": config["dataset"],
        "torch_threads": 1, "kappa_scale": PAPER_CONVENTION_KAPPA_SCALE,
        "forcing_beta": PAPER_CONVENTION_FORCING_BETA, "held_out_seeds": f"{HELD_OUT} + 2s (KLE), + 1 (forcing)",
        "verify": "off", "training_cpu_s_this_run": training_cpu_s,
        "training": training, "tables": {t: evaluated[t] for t in TABLES if t in evaluated}}}


def kept_tables(previous: dict | None, training: dict, tables: list[str]) -> dict:
    """The tables of the ``previous`` section that this run does not evaluate again, where that
    section's models are these (the same training record: the same checkpoints)."""
    if not previous or previous.get("training") != training:
        return {}
    return {table: section for table, section in previous["tables"].items() if table not in tables}


def load_config(quick: bool) -> dict:
    """The dataset config and each model's training settings from :data:`CONFIG` (its
    ``[quick]`` overrides with ``quick``)."""
    config = tomllib.loads(CONFIG.read_text())
    if sorted(config["train"]) != sorted(MODELS):
        raise ValueError(f"{CONFIG}: [train.*] tables {sorted(config['train'])} differ from MODELS {sorted(MODELS)}")
    if quick:
        config["dataset"] = {**config["dataset"], **config["quick"]["dataset"]}
        config["train"] = {loss: {**s, **config["quick"]["train"]} for loss, s in config["train"].items()}
    return config


def train(loss: str, config: dict, device: str | None) -> dict:
    """Train (or find already trained) the ``loss`` model of ``config``; its checkpoint path and
    training record (settings, per-kind epochs, first/last epoch loss, CPU seconds)."""
    from fem_ms.data import GMsFEMBasisConfig
    from fem_ms_torch.basis.train import train_basis

    dataset_config = GMsFEMBasisConfig(**config["dataset"])
    settings = config["train"][loss]
    key = hashlib.sha256((dataset_config.to_json() + json.dumps(settings, sort_keys=True)).encode()).hexdigest()[:12]
    root = Path(os.environ.get("FEM_MS_CHECKPOINTS", Path.home() / ".cache" / "fem-ms" / "checkpoints"))
    path = root / "gmsfem_no_paper_learned" / f"{loss}_{key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    train_basis(cached_dataset(dataset_config), path, device=device, **settings)
    kinds = training_record(path)
    return {"path": path, "checkpoint": path.name, "settings": settings, "kinds": kinds,
            "cpu_s": sum(k["cpu_s"] for k in kinds.values())}


def evaluate_table(table: str, methods: list[Method], quick: bool, samples: int | None, training_patch: int) -> dict:
    """Every method's errors on ``table``'s cells, on the held-out κ, with the paper's figures
    (``training_patch``: vertices per side of the models' training patches, for the record)."""
    from fem_ms.coefficients import PAPER_CONVENTION_FORCING_BETA, PAPER_CONVENTION_KAPPA_SCALE

    fine, coarse = (50, 5) if quick else PAPER_GRID[table]
    n = samples or (1 if quick else SAMPLES[table])
    t0 = time.process_time()
    rows = evaluate(fine, coarse, [f"{p}/{f}" for p, f in PAPER[table]], n, PAPER_CONVENTION_KAPPA_SCALE,
                    PAPER_CONVENTION_FORCING_BETA, seed0=HELD_OUT, desc=table, methods=methods)
    return {"measured": utc_now(), "fine": fine, "coarse": coarse, "patch_vertices": 2 * fine // coarse + 1,
            "training_patch_vertices": training_patch,
            "paper_grid": list(PAPER_GRID[table]), "samples": n, "cpu_s": time.process_time() - t0,
            "rows": with_paper_columns(rows, table)}


def with_paper_columns(rows: list[dict], table: str) -> list[dict]:
    """``rows`` with the paper's figure of the same method (GMsFEM for SLEPc, GMsFEM-NO with SAL
    for the SAL model; None where the paper has none) and each learned row's gap to SLEPc's
    error in the same cell (%, None where either is unsolved)."""
    slepc = {(r["problem"], r["forcing"]): r for r in rows if r["method"] == SLEPC}
    out = []
    for row in rows:
        cell = row["problem"], row["forcing"]
        paper = PAPER[table] if row["method"] == SLEPC else PAPER_NO[table] if row["method"] == "GMsFEM-NO (sal)" \
            else {}
        l2, h1 = paper.get(cell, (None, None))
        extra = {"paper_l2_pct": l2, "paper_h1_pct": h1}
        if row["method"] != SLEPC:
            ref = slepc[cell]
            for norm in ("l2", "h1"):
                solved = _solved(row) and _solved(ref)
                extra[f"{norm}_vs_slepc_pct"] = 100 * (row[f"{norm}_mean_pct"] / ref[f"{norm}_mean_pct"] - 1) \
                    if solved else None
        out.append({**row, **extra})
    return out


def _solved(row: dict) -> bool:
    return row["l2_mean_pct"] is not None and not row.get("failed")


def targets(payload: dict) -> list[dict]:
    """Per model and table: the worst cell's gap of GMsFEM-NO's error over SLEPc's on the same κ
    (L2 and H1, ≤ 5 %), and the worst cell's factor between our GMsFEM-NO error and the paper's
    GMsFEM-NO figure (either direction, ≤ 2)."""
    section = payload.get("learned")
    out = []
    for loss in MODELS:
        method = f"GMsFEM-NO ({loss})"
        for table in TABLES:
            name_table = table.replace("table", "Table ")
            within = f"{method} within {WITHIN:g} % of SLEPc GMsFEM's error in every cell of {name_table}"
            vs_paper = f"{method} error vs the paper's GMsFEM-NO (SAL) column of {name_table}, worst cell"
            within_cmp = "GMsFEM with SLEPc bases on the same held-out κ, forcing and fine reference"
            paper_cmp = f"the paper's GMsFEM-NO (SAL) column of {name_table}"
            t = (section or {}).get("tables", {}).get(table)
            if t is None:
                out.append(threshold(within, None, "<=", WITHIN, " %", within_cmp, None))
                out.append(threshold(vs_paper, None, "<=", PAPER_FACTOR, "x", paper_cmp, None))
                continue
            rows = [r for r in t["rows"] if r["method"] == method]
            slepc = {(r["problem"], r["forcing"]): r for r in t["rows"] if r["method"] == SLEPC}
            setup = (f"ours at {t['fine']}^2 / {t['coarse']}x{t['coarse']} ({t['patch_vertices']}^2 patches; trained "
                     f"on {t['training_patch_vertices']}^2 patches at 100^2), the paper's at {t['paper_grid'][0]}^2")
            gaps, notes, unsolved = [], [], []
            for r in rows:
                cell = f"{r['problem']}/{r['forcing']}"
                ref = slepc[r["problem"], r["forcing"]]
                if not _solved(ref):
                    notes.append(f"{cell}: no SLEPc solution either ({ref.get('failure')}); left out")
                    continue
                if not _solved(r):
                    unsolved.append(f"{cell}: no GMsFEM-NO solution on {r.get('failed', 0)} samples "
                                    f"({r.get('failure')})")
                    continue
                for norm in ("l2", "h1"):
                    gaps.append((r[f"{norm}_vs_slepc_pct"], f"{cell} {norm.upper()}"))
            n = min((r["samples"] for r in rows if _solved(r)), default=None) or None
            if unsolved:
                out.append(threshold(within, None, "<=", WITHIN, " %", within_cmp, n, unsolved + notes,
                                     missing="a cell SLEPc solved has no GMsFEM-NO solution"))
            else:
                worst = max(gaps, default=(None, ""))
                caveats = [f"worst cell: {worst[1]}", setup, "the network's own bases (no fallback to SLEPc)"]
                out.append(threshold(within, worst[0], "<=", WITHIN, " %", within_cmp, n, caveats + notes))
            factors, paper_notes = [], []
            for r in rows:
                if not _solved(r) or r["paper_l2_pct"] is None:
                    continue
                for norm in ("l2", "h1"):
                    ratio = r[f"{norm}_mean_pct"] / r[f"paper_{norm}_pct"]
                    factors.append(max(ratio, 1 / ratio))
                    paper_notes.append(f"{r['problem']}/{r['forcing']} {norm.upper()}: {r[f'{norm}_mean_pct']:.2f} % "
                                       f"vs paper {r[f'paper_{norm}_pct']:.2f} % (x{ratio:.2f})")
            out.append(threshold(vs_paper, max(factors, default=None), "<=", PAPER_FACTOR, "x", paper_cmp, n,
                                 [setup, "the paper convention, not refitted"] + paper_notes + notes + unsolved,
                                 missing="no cell solved"))
    return out
