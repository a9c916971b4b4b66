"""GMsFEM at 100³ (1.03 M fine DOFs, 10×10×10 coarse) and how each stage grows from 25³ over 50³.

Each size runs in its own 2-rank process (``mpiexec -n 2``, 1 torch thread per rank, so the
classical and the learned paths get the same two cores) and, for ``--samples`` κ of the paper's
3D KLE in the paper's convention (``paper_kle(..., convention="paper")``: one scale a for all κ,
the convention the GMsFEM-NO paper's data use), diffusion with f = 1:

* the fine reference solve with CG + GAMG (MUMPS does not fit at 100³);
* the classical offline stage (SLEPc, N_bf = 8);
* the learned offline stage (GMsFEM-NO, the checkpoint of ``--checkpoint``, with the
  verification policy ``--verify``, the provider's default ``fallback``: flagged neighbourhoods
  are recomputed by SLEPc);
* the online solve in both spaces, and their relative L2/H1-seminorm errors against the fine solution.

The neighbourhood geometry (κ-independent, once per mesh pair) and the mesh are their own stages.
Per stage: wall seconds (maximum over the ranks), CPU seconds (sum over the ranks: the other
processes on a shared machine do not inflate them) and the peak resident memory of the process
at the end of the stage (summed over the ranks, an upper bound of the run's memory at that point).
Sample 0 is the cold one (kernels compiled or read, the model loaded); the timed figures are the
medians over the later samples. The checkpoint's patch size is 21³ vertices (50³/5³); 100³/10³
neighbourhoods have the same patches, 25³/5³ ones 11³ (resolution transfer).

Without ``--checkpoint`` the benchmark trains its own model (full: 4 κ at 50³/5³, the
gmsfem_no_accuracy recipe, SAL + 8 oversampled functions + Rayleigh–Ritz, a few epochs; quick:
a tiny model on 20³/5³) and records its settings.

    scripts/env python -m benchmarks.scale_3d [--quick] [--checkpoint PATH] [--samples N] [--out PATH]

Writes results/scale_3d.json and results/scale_3d.png (CPU seconds vs fine DOFs per stage, log–log).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .common import (
    benchmark_arguments,
    cached_dataset,
    emit_case,
    parse_benchmark_arguments,
    peak_rss_mib,
    print_table,
    run_case_in_subprocess,
)
from .record import threshold, write_result

NAME = "scale_3d"
FULL = [(25, 5), (50, 5), (100, 10)]
QUICK = [(15, 5), (20, 5), (40, 10)]  # the full run's shape: the last two cases share their patch size
N_BASIS, RANKS, SAMPLES, SEED = 8, 2, 3, 200_001  # κ seeds SEED + 2 s: never in a training set (seeds 2 s)
# the stages of the scaling table and plot → the row keys of their figures (mesh, geometry, fine solve and
# online solve as the classical path's process measured them)
STAGES = {"mesh": "classical_mesh", "geometry": "classical_geometry", "fine_solve": "classical_fine_solve",
          "classical_offline": "classical_offline", "learned_offline": "learned_offline",
          "online": "classical_online"}
MEMORY_GIB, SPEEDUP, ERROR_FACTOR = 16.0, 30.0, 1.10
# the model trained here when no --checkpoint is given: gmsfem_no_accuracy's recipe, sized to ≤ 15 CPU-minutes
TRAINING = dict(epochs=2, loss="sal", width=16, depth=4, modes=8, batch_size=4, lr=3e-3, inner_product="energy",
                architecture="ffno", oversample=8, seed=0)
TRAINING_DATA = dict(name="p28-scale3d_basis50", dim=3, samples=4, fine=50, coarse=5)
QUICK_TRAINING = {**TRAINING, "epochs": 2, "width": 8, "modes": 4}
QUICK_TRAINING_DATA = dict(name="p28-scale3d_quick20", dim=3, samples=4, fine=20, coarse=5)
PAPER_100 = {"GMsFEM": (1.62, 14.76), "GMsFEM-NO": (1.68, 14.98)}  # Table 5, diffusion f = 1, L2/H1 %


def trained_model(data: dict, settings: dict) -> Path:
    """A GMsFEM-NO checkpoint trained on the paper-convention dataset ``data`` (cached: trained on
    first use, then read beside the dataset)."""
    import torch

    from fem_ms.data import GMsFEMBasisConfig
    from fem_ms_torch.basis.train import train_basis

    torch.set_num_threads(1)  # two threads on a machine shared with other runs wait for each other
    dataset = cached_dataset(GMsFEMBasisConfig(**data, n_basis=N_BASIS, convention="paper", train_fraction=1.0))
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return train_basis(dataset, dataset.parent / f"sal-{key}.pt", **settings)


def checkpoint_settings(path: Path) -> dict:
    """What the checkpoint says of its training (its stored config and meta), and the settings
    file its trainer wrote beside it (``READY``), if any."""
    from fem_ms_torch.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(path)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in checkpoint["config"].items()}
    out = {"path": str(path), "config": config, "meta": checkpoint["meta"],
           "epochs_done": {k: len(r.get("history", [])) for k, r in checkpoint.get("runs", {}).items()}}
    ready = Path(path).parent / "READY"
    if ready.is_file():
        try:
            out["ready"] = json.loads(ready.read_text())
        except json.JSONDecodeError:
            out["ready"] = ready.read_text()
    return out


PARTS = ("classical", "learned")


def run_case(fine: int, coarse: int, samples: int, part: str, checkpoint: str | None, verify: str) -> dict:
    """One size and one path (``part``: classical or learned) in this (2-rank) process: the mesh,
    and on each of ``samples`` κ the fine solve, the offline stage, the online solve and the errors.
    Keys of the figures start with ``part``; rank 0's result."""
    import torch
    from mpi4py import MPI

    from pyop2.mpi import COMM_WORLD

    torch.set_num_threads(1)
    comm = COMM_WORLD
    rows: dict[str, list] = {s: [] for s in ("mesh", "fine_solve", "offline", "online")}
    rss: dict[str, float] = {}

    def clock():
        comm.barrier()  # the stage starts and ends together on every rank: its wall is the slowest rank's
        return time.perf_counter(), time.process_time()

    def record(stage, start):
        wall, cpu = clock()
        rows[stage].append((comm.allreduce(wall - start[0], op=MPI.MAX), comm.allreduce(cpu - start[1], op=MPI.SUM)))
        peak = peak_rss_mib() / 1024  # GiB
        rss[stage] = max(rss.get(stage, 0.0), comm.allreduce(peak, op=MPI.SUM))

    import firedrake as fd

    from fem_ms import Diffusion, cell_field, solve, structured_hierarchy
    from fem_ms.coefficients import paper_kle

    from .compare import Method, build_space, relative_errors

    start = clock()
    pair = structured_hierarchy(coarse, fine, dim=3, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kle = paper_kle((fine,) * 3, convention="paper")
    record("mesh", start)
    if part == "classical":
        method = Method(part, "slepc", {"progress": False}, N_BASIS)
    else:
        method = Method(part, "learned", {"checkpoint": checkpoint, "device": "cpu", "verify": verify}, N_BASIS)
    errors, reports = [], []
    for s in tqdm(range(samples), desc=f"{part} {fine}^3", unit="κ", disable=comm.rank != 0):
        kappa = cell_field(pair.fine, kle.sample_kappa(SEED + 2 * s))
        problem = Diffusion(V, kappa, 1.0)
        start = clock()
        reference = solve(problem, solver="cg-gamg").u
        record("fine_solve", start)
        start = clock()
        space, _ = build_space(pair, V, kappa, method)
        record("offline", start)
        if s == 0:  # κ-independent, built with the first space of the mesh pair
            geometry = comm.allreduce(space.timings["geometry"], op=MPI.MAX)
            n_v = len(space.neighbourhoods)
        report = space.bases.verification
        if part == "learned" and report is not None and report.policy != "off":
            reports.append({"checked": comm.allreduce(report.checked), "flagged": comm.allreduce(len(report.flagged)),
                            "refined": comm.allreduce(len(report.refined)),
                            "fallen_back": comm.allreduce(len(report.fallen_back)),
                            "unresolved": comm.allreduce(len(report.unresolved)),
                            **{f"{k}_s": comm.allreduce(v, op=MPI.MAX) for k, v in report.timings.items()}})
        start = clock()
        u = space.reduce(problem).solve().u
        record("online", start)
        errors.append(relative_errors(u, reference))
        del space, reference, u
    if not np.all(np.isfinite(errors)):
        raise FloatingPointError(f"a non-finite GMsFEM error at {fine}^3 ({part})")
    out = {"case": f"{fine}^3/{coarse}^3", "fine": fine, "coarse": coarse, "ranks": comm.size, "dofs": V.dim(),
           "N_v": n_v, "patch_vertices": 2 * fine // coarse + 1, "n_basis": N_BASIS, "samples": samples,
           "kappa_seeds": [SEED + 2 * s for s in range(samples)]}
    p = f"{part}_"
    out[p + "per_sample"] = {stage: [{"wall_s": w, "cpu_s": c} for w, c in timed] for stage, timed in rows.items()}
    for stage, timed in rows.items():
        warm = timed[1:] if len(timed) > 1 else timed  # sample 0 is the cold one
        out[f"{p}{stage}_s"] = float(np.median([w for w, _ in warm]))
        out[f"{p}{stage}_cpu_s"] = float(np.median([c for _, c in warm]))
    out[p + "geometry_s"] = geometry
    e = 100 * np.asarray(errors)
    out.update({p + "l2_pct": float(e[:, 0].mean()), p + "h1_pct": float(e[:, 1].mean()),
                p + "l2_pct_per_sample": e[:, 0].tolist(), p + "h1_pct_per_sample": e[:, 1].tolist(),
                p + "peak_rss_gib_after": rss, p + "peak_rss_gib": max(rss.values())})
    if part == "learned":
        out.update(verify=verify, verification=reports)
    return out


def merged(classical: dict | None, learned: dict | None, stub: dict | None = None) -> dict:
    """One size's row from its two parts (either None where that path was not run), with the
    ratios the targets judge where both were. ``stub``: the size's own keys, for a size neither
    path has figures of."""
    row = {**(stub or {}), **(classical or {}), **(learned or {})}
    peaks = [part[f"{name}_peak_rss_gib"] for name, part in zip(PARTS, (classical, learned)) if part]
    row["peak_rss_gib"] = max(peaks) if peaks else None
    if classical and learned:
        row["speedup_learned"] = classical["classical_offline_s"] / learned["learned_offline_s"]
        row["speedup_learned_cpu"] = classical["classical_offline_cpu_s"] / learned["learned_offline_cpu_s"]
        row["l2_ratio"] = learned["learned_l2_pct"] / classical["classical_l2_pct"]
    return row


def scaling(rows: list[dict]) -> dict:
    """Per stage, the least-squares exponent p of time ∝ DOFs^p over the sizes with that figure,
    and the local one between the last two of them (wall and CPU seconds)."""
    out = {}
    dofs = np.log([r["dofs"] for r in rows])
    for stage, key in STAGES.items():
        entry = {}
        for kind, suffix in (("wall", "_s"), ("cpu", "_cpu_s")):
            points = [(x, np.log(r[key + suffix])) for x, r in zip(dofs, rows) if r.get(key + suffix)]
            if len(points) < 2:  # sizes without the figure (not run) are left out of the fit
                continue
            x, t = map(np.asarray, zip(*points))
            entry[f"exponent_{kind}"] = float(np.polyfit(x, t, 1)[0])
            entry[f"exponent_{kind}_last_two"] = float((t[-1] - t[-2]) / (x[-1] - x[-2]))
            entry[f"sizes_{kind}"] = len(points)
        out[stage] = entry
    return out


def targets(payload: dict) -> list[dict]:
    """Issue 28 §3's targets at the largest size of the run (100³ in the full one): the peak memory
    of the run ≤ 16 GiB, the learned offline stage ≥ 30× faster than the classical one and its L2
    error ≤ 1.10× the classical one, on the same κ, each path in its own 2-rank process."""
    rows = payload["cases"]
    big = rows[-1]
    case, n = big["case"], big["samples"]
    peak = big.get("peak_rss_gib")
    trained_on = f"model trained on {(payload['checkpoint'] or {}).get('trained_on', 'see checkpoint')}"
    after = {f"{part} {k}": v for part in PARTS for k, v in big.get(f"{part}_peak_rss_gib_after", {}).items()}
    per_stage = ", ".join(f"{k} {v:.2f} GiB" for k, v in after.items())
    out = [threshold(f"peak memory at {case}", peak, "<=", MEMORY_GIB, " GiB",
                     "absolute (issue 28 §3): the peak resident memory of each 2-rank process (mesh, fine CG+GAMG "
                     "solve, offline stage, online solve, errors), summed over its ranks; the larger of the paths",
                     n, [*([f"peak after each stage at {case}: {per_stage}"] if after else []),
                         "sum of the ranks' peaks: an upper bound, the ranks need not peak together",
                         *(payload.get("notes", []) if any(f"{p}_peak_rss_gib" not in big for p in PARTS) else [])])]
    missing = f"the classical or the learned path was not run at {case}"
    notes = payload.get("notes", [])
    noise = (f"CPU seconds summed over the {big['ranks']} ranks, median of samples 1–{n - 1} (sample 0 cold): the "
             "two paths ran in their own processes, possibly at different loads of a shared 2-core machine, which "
             "inflate wall seconds and not CPU seconds")
    caveats = [noise, trained_on]
    if "verify" in big:
        caveats.append(f"verification policy {big['verify']!r}")
        if big["verification"]:
            caveats.append("neighbourhoods recomputed by SLEPc per sample: " +
                           ", ".join(str(v["fallen_back"]) for v in big["verification"]) + f" of {big['N_v']}")
    if "speedup_learned" in big:
        caveats.append(f"in wall seconds (maximum over the ranks): {big['speedup_learned']:.2f}×")
    out.append(threshold(f"learned offline stage vs classical at {case}", big.get("speedup_learned_cpu"), ">=", SPEEDUP,
                         "×", "the classical (SLEPc) offline stage on the same κ, 2 ranks, its own process", n,
                         caveats + (notes if "speedup_learned_cpu" not in big else []), missing=missing))
    caveats = [trained_on]
    if "l2_ratio" in big:
        caveats.insert(0, f"classical {big['classical_l2_pct']:.3g} %, learned {big['learned_l2_pct']:.3g} % (L2); "
                          f"H1: {big['classical_h1_pct']:.3g} %, {big['learned_h1_pct']:.3g} %")
        caveats.append(f"verification policy {big['verify']!r}")
    out.append(threshold(f"learned L2 error vs classical at {case}", big.get("l2_ratio"), "<=", ERROR_FACTOR, "×",
                         "GMsFEM with SLEPc bases on the same κ (mean relative L2 error against the fine CG+GAMG "
                         "solution, diffusion f = 1)", n, caveats + (notes if "l2_ratio" not in big else []),
                         missing=missing))
    return out


def plot(rows: list[dict], path: Path) -> None:
    """CPU seconds (summed over the ranks) of each stage vs fine DOFs, log–log: on a machine shared
    with other processes, waiting for a core inflates wall seconds but not these."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fem_ms.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for stage, key in STAGES.items():
        points = [(r["dofs"], r[key + "_cpu_s"]) for r in rows if r.get(key + "_cpu_s")]
        if points:
            ax.loglog(*zip(*points), "o-", label=stage.replace("_", " "))
    ax.set_xlabel("fine DOFs")
    ax.set_ylabel(f"CPU seconds (sum over {rows[0]['ranks']} ranks), median over warm samples")
    ax.set_title("GMsFEM stages, " + " → ".join(r["case"] for r in rows), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> None:
    parser = benchmark_arguments(NAME, __doc__, "15^3, 20^3 and 40^3/10^3, a tiny model trained here")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="GMsFEM-NO checkpoint (3D, N_bf = 8); default: train one here (see the module doc)")
    parser.add_argument("--samples", type=int, default=SAMPLES, help=f"κ samples per size (default {SAMPLES})")
    parser.add_argument("--verify", default="fallback", choices=("off", "warn", "refine", "fallback"),
                        help="the learned provider's verification policy (default: fallback, its default)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="paths to run: classical, learned, both (default) or none; the others' figures come "
                             "from --merge (else they and their targets stay empty)")
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="earlier results of this benchmark whose rows give the paths not run now (same sizes "
                             "and samples; each reused part keeps the run that measured it as its provenance)")
    parser.add_argument("--sizes", default=None,
                        help="FINE:COARSE sizes to run, comma-separated, in this order (default: the full or quick "
                             "list); the result lists them by DOFs and is rewritten after each")
    parser.add_argument("--note", action="append", default=[],
                        help="a note for the result (repeatable), e.g. why a size or path is missing; the targets "
                             "that could not be judged carry it")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: the path of a --case
    args = parse_benchmark_arguments(parser, argv)
    if args.case:
        fine, coarse, samples = map(int, args.case.split(","))
        emit_case(run_case(fine, coarse, samples, args.part, str(args.checkpoint), args.verify))
        return
    parts = () if args.parts == "none" else tuple(p for p in args.parts.split(",") if p)
    if set(parts) - set(PARTS):
        raise SystemExit(f"--parts must name some of {PARTS} or be 'none', got {args.parts!r}")
    if args.samples < 2:
        raise SystemExit("--samples must be at least 2 (sample 0 is the cold one, not timed)")
    earlier = [json.loads(path.read_text()) for path in args.merge]
    cases = QUICK if args.quick else FULL
    info = _checkpoint(args) if "learned" in parts else next((e["checkpoint"] for e in earlier if e.get("checkpoint")),
                                                              None)
    if args.sizes:
        cases = [tuple(map(int, size.split(":"))) for size in args.sizes.split(",")]
    rows = []
    for fine, coarse in tqdm(cases, desc="scale_3d sizes", unit="size"):
        found = {}
        for part in PARTS:
            if part in parts:
                found[part] = run_case_in_subprocess(
                    f"benchmarks.{NAME}", ["--case", f"{fine},{coarse},{args.samples}", "--part", part,
                                           "--checkpoint", str(info["path"] if info else None),
                                           "--verify", args.verify], RANKS)
            else:
                found[part] = _earlier_part(earlier, part, f"{fine}^3/{coarse}^3", args.samples)
        stub = None
        if not any(found.values()):
            if not args.note:
                raise SystemExit(f"no figures for {fine}^3/{coarse}^3: --parts runs none and --merge holds none "
                                 "(a --note saying why records the size as missing)")
            stub = {"case": f"{fine}^3/{coarse}^3", "fine": fine, "coarse": coarse, "ranks": RANKS,
                    "dofs": (fine + 1) ** 3, "N_v": (coarse + 1) ** 3, "samples": args.samples, "missing": True}
        rows = sorted([*rows, merged(found["classical"], found["learned"], stub)], key=lambda r: r["dofs"])
        # after every size: a long run stopped later keeps the sizes it finished
        path = _write(args, parts, info, rows, complete=len(rows) == len(cases))
    print_table(rows, [("case", "case", ""), ("dofs", "DOFs", "d"), ("classical_fine_solve_s", "fine CG", ".2f"),
                       ("classical_offline_s", "classical", ".2f"), ("learned_offline_s", "learned", ".2f"),
                       ("speedup_learned", "speedup", ".2f"), ("classical_online_s", "online", ".2f"),
                       ("classical_l2_pct", "L2 % cl.", ".2f"), ("learned_l2_pct", "L2 % NO", ".2f"),
                       ("peak_rss_gib", "peak GiB", ".2f")])
    print(f"wrote {path} and {path.with_suffix('.png')}")


def _write(args, parts, info, rows, complete: bool) -> Path:
    payload = {"benchmark": NAME, "quick": args.quick, "complete": complete, "ranks": RANKS, "samples": args.samples,
               "n_basis": N_BASIS,
               "problem": "diffusion, f = 1, Q1 on hexahedra, u = 0 on the boundary; κ of the paper's 3D KLE in the "
                          "paper convention (paper_kle(..., convention='paper'))",
               "timing": "per stage: wall seconds (max over ranks) and CPU seconds (sum over ranks), median over "
                         "samples 1.. (sample 0 cold); peak RSS summed over ranks after each stage; the classical "
                         "and the learned path each in its own 2-rank process per size",
               "sizes": "full: 25^3/5^3, 50^3/5^3, 100^3/10^3 (the paper's 100^3, not CPU-scaled); "
                        "quick: 15^3/5^3, 20^3/5^3, 40^3/10^3",
               "paper_100_diffusion_f1_pct": PAPER_100, "parts_run": list(parts), "notes": args.note,
               "checkpoint": info, "cases": rows, "scaling": scaling(rows)}
    path = write_result(args.out, payload, targets(payload))
    plot(rows, path.with_suffix(".png"))
    return path


def _checkpoint(args) -> dict:
    """The learned path's checkpoint and what is known of its training: ``--checkpoint``, or one
    trained here."""
    t0 = time.process_time()
    if args.checkpoint is None:
        data, settings = (QUICK_TRAINING_DATA, QUICK_TRAINING) if args.quick else (TRAINING_DATA, TRAINING)
        checkpoint = trained_model(data, settings)
        trained = {"trained_here": True, "data": {**data, "convention": "paper", "n_basis": N_BASIS},
                   "training": settings, "training_cpu_s": time.process_time() - t0}
    else:
        if not args.checkpoint.is_file():
            raise SystemExit(f"--checkpoint {args.checkpoint}: no such file")
        checkpoint, trained = args.checkpoint, {"trained_here": False}
    info = {**checkpoint_settings(checkpoint), **trained}
    meta = info["meta"]
    if meta.get("dim") != 3 or meta.get("n_basis") != N_BASIS:
        raise SystemExit(f"checkpoint {checkpoint}: a 3D model with N_bf = {N_BASIS} is needed, "
                         f"it has dim={meta.get('dim')}, n_basis={meta.get('n_basis')}")
    info["trained_on"] = _trained_on(info)
    return info


def _earlier_part(earlier: list[dict], part: str, case: str, samples: int) -> dict | None:
    """The keys of ``part`` (and the size's own) from the first earlier result with figures of
    ``part`` at ``case``, with ``{part}_provenance`` naming the run that measured them; None if
    none has them."""
    for document in earlier:
        row = next((r for r in document["cases"] if r["case"] == case and f"{part}_offline_s" in r), None)
        if row is None:
            continue
        if row["samples"] != samples:
            raise SystemExit(f"--merge: the earlier {case} row has {row['samples']} samples, this run {samples}")
        own = ("case", "fine", "coarse", "ranks", "dofs", "N_v", "patch_vertices", "n_basis", "samples",
               "kappa_seeds")
        keep = {k: v for k, v in row.items() if k in own or k.startswith(f"{part}_")}
        if part == "learned":
            keep.update(verify=row["verify"], verification=row["verification"])
        stamp = {"created": document.get("created"), "git_commit": document.get("versions", {}).get("git_commit")}
        keep[f"{part}_provenance"] = row.get(f"{part}_provenance", stamp)
        return keep
    return None


def _trained_on(info: dict) -> str:
    config = info.get("config", {})
    data = info.get("data") or {}
    if data:
        return f"{data['samples']} κ at {data['fine']}^3/{data['coarse']}^3 (paper convention), " \
               f"{info['training']['epochs']} epochs"
    return f"{config.get('dataset', 'unknown data')}, {config.get('epochs', '?')} epochs"


if __name__ == "__main__":
    main()
