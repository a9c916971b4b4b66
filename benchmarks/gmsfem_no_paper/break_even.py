"""``break-even``: Table 16, the number of solves after which GMsFEM-NO's data and training
have paid for themselves, measured on this machine with the ``paper`` convention.

x solves T_data + T_train + T_inf·x = T_GMsFEM·x, per size 100² / 5×5, 250² / 10×10 and
50³ / 5³ (N_bf = 8), every time in CPU-seconds of the process (the machine is shared: wall
clocks are recorded too, but depend on the load):

- T_data: ``fem_ms.data.generate`` of a ``gmsfem_basis`` set (paper convention) per sample,
  after a small warm-up set that compiles the kernels; on 1 rank, and on 2 ranks under
  ``mpiexec -n 2`` where the samples are spread over the ranks (there the slower rank's
  CPU-seconds: the elapsed time on two cores of their own). Times N_train training samples.
- T_GMsFEM: SLEPc's offline stage (local eigenproblems, R) per solve.
- T_inf: the learned offline stage per solve, warm: the model that met "within 5 % of SLEPc"
  in 2D (benchmarks/gmsfem_no_accuracy.py: F-FNO width 16, 8 modes, oversampled by 8, reduced
  by Rayleigh–Ritz), with untrained weights (inference costs the same).
- T_train: the CPU-seconds of one epoch of that model's training on the generated set,
  per κ, times that recipe's 192 κ × 20 epochs; at 50³ also the 3D training that ``table4
  --part training`` recorded in the result file (section ``table4_training``), where it has run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from ..common import emit_case, print_table, run_case_in_subprocess
from ..gmsfem_no_accuracy import OVERSAMPLE
from ..record import reused, threshold

COMMAND = "break-even"
ORDER = 7
SECTIONS = ("table16",)
SUMMARY = "Table 16: the break-even number of solves (data, training, SLEPc and learned bases timed here)"

# (dim, fine, coarse, samples generated per rank count)
SIZES = {"100^2": (2, 100, 5, 8), "250^2": (2, 250, 10, 4), "50^3": (3, 50, 5, 2)}
QUICK_SIZES = {"100^2": (2, 50, 5, 2), "250^2": (2, 50, 10, 2), "50^3": (3, 20, 5, 2)}
# The training recipe that met "within 5 % of SLEPc" (gmsfem_no_accuracy.json, 100²).
RECIPE = {"train_samples": 192, "epochs": 20, "loss": "sal", "oversample": OVERSAMPLE, "width": 16, "depth": 4,
          "modes": 8, "batch_size": 4, "lr": 3e-3}
# The paper's Table 16 (wall seconds on its hardware; T_train "parallel": several GPUs).
PAPER_TABLE16 = {
    "100^2": {"t_gmsfem_s": 16.87, "t_inf_s": 0.28, "samples": 800, "t_train_sequential_s": 37800,
              "t_train_parallel_s": 12600, "x_sequential": 3270, "x_parallel": 1570},
    "250^2": {"t_gmsfem_s": 210.5, "t_inf_s": 0.31, "samples": 800, "t_train_sequential_s": 43200,
              "t_train_parallel_s": 14400, "x_sequential": 1040, "x_parallel": 870},
    "50^3": {"t_gmsfem_s": 935.4, "t_inf_s": 0.84, "samples": 800, "t_train_sequential_s": 86400,
             "t_train_parallel_s": 21600, "x_sequential": 1090, "x_parallel": 820},
}
TARGET_SIZE, TARGET_BOUND = "50^3", 1090


def add_arguments(parser) -> None:
    parser.add_argument("--reuse", action="store_true",
                        help="recompute the break-evens from the times an earlier run of the same size measured "
                             "(kept in the output file, stamped with that run) instead of measuring them again")


# The measured figures of a row (per sample or per solve); the rest is derived from them.
MEASURED = ("size", "dim", "fine", "coarse", "generated_samples", "t_data_cpu_s", "t_data_wall_s", "t_data_2ranks_s",
            "t_data_2ranks_cpu_total_s", "t_data_2ranks_wall_s", "t_gmsfem_cpu_s", "t_gmsfem_wall_s", "t_inf_cpu_s",
            "t_inf_wall_s", "train_cpu_per_kappa_epoch_s")


def run(args, earlier: dict) -> dict:
    sizes = QUICK_SIZES if args.quick else SIZES
    rows = []
    if args.reuse:
        old = (earlier.get("table16") or {}).get("rows", [])
        found = {row["size"]: row for row in reused(old, earlier)}
        missing = [size for size, (dim, fine, *_) in sizes.items()
                   if size not in found or (found[size]["dim"], found[size]["fine"]) != (dim, fine)]
        if missing:
            raise SystemExit(f"--reuse: {args.out} has no measurement of {missing} at this run's sizes")
        for size in sizes:
            measured = {k: found[size][k] for k in MEASURED}
            rows.append({**break_even(measured, earlier.get("table4_training")),
                         "provenance": found[size]["provenance"]})
    for size, (dim, fine, coarse, samples) in tqdm(sizes.items() if not args.reuse else (), desc="break-even sizes",
                                                    unit="size"):
        case = {"size": size, "dim": dim, "fine": fine, "coarse": coarse, "samples": samples, "quick": args.quick}
        one = run_case_in_subprocess(__name__, [json.dumps({**case, "timings": True})], ranks=1)
        two = run_case_in_subprocess(__name__, [json.dumps({**case, "timings": False})], ranks=2)
        rows.append(break_even(measured_row(size, one, two), earlier.get("table4_training")))
    print_table(rows, [("size", "size", ""), ("t_data_cpu_s", "T_data", ".3g"),
                       ("t_data_2ranks_s", "T_data 2r", ".3g"), ("t_gmsfem_cpu_s", "T_GMsFEM", ".3g"),
                       ("t_inf_cpu_s", "T_inf", ".3g"), ("t_train_cpu_s", "T_train", ".3g"),
                       ("x_sequential", "x", ".4g"), ("x_2ranks", "x 2 ranks", ".4g"),
                       ("x_table4_training_sequential", "x Table 4 training", ".4g")])
    return {"table16": {"timing": "CPU-seconds of the process (time.process_time), wall seconds beside them",
                        "recipe": RECIPE, "rows": rows}}


def measured_row(size: str, one: dict, two: dict) -> dict:
    """The figures per sample or solve of the 1-rank and 2-rank measurements of ``size``."""
    return {"size": size, "dim": one["dim"], "fine": one["fine"], "coarse": one["coarse"],
            "generated_samples": one["samples"], "t_data_cpu_s": one["cpu_s"] / one["samples"],
            "t_data_wall_s": one["wall_s"] / one["samples"], "t_data_2ranks_s": two["cpu_max_s"] / two["samples"],
            "t_data_2ranks_cpu_total_s": two["cpu_sum_s"] / two["samples"],
            "t_data_2ranks_wall_s": two["wall_s"] / two["samples"],
            "t_gmsfem_cpu_s": one["t_gmsfem_cpu_s"], "t_gmsfem_wall_s": one["t_gmsfem_wall_s"],
            "t_inf_cpu_s": one["t_inf_cpu_s"], "t_inf_wall_s": one["t_inf_wall_s"],
            "train_cpu_per_kappa_epoch_s": one["train_cpu_per_kappa_epoch_s"]}


def break_even(measured: dict, training: dict | None = None) -> dict:
    """A row of Table 16 from its ``measured`` figures: T_train and x, sequential (generation on
    1 rank) and with 2-rank generation, for the 2D recipe (its 192 κ generated and trained 20
    epochs, the epoch timed here), and, where ``training`` (the ``table4_training`` section of
    the result file) was trained at this row's size, for that training (its κ, its training
    CPU-seconds). x is None where the learned bases are not cheaper than SLEPc's."""
    n = RECIPE["train_samples"]
    train = measured["train_cpu_per_kappa_epoch_s"] * n * RECIPE["epochs"]
    saving = measured["t_gmsfem_cpu_s"] - measured["t_inf_cpu_s"]

    def x(samples, train_s, per_sample):
        return (per_sample * samples + train_s) / saving if saving > 0 else None

    row = {**measured, "n_basis": 8, "train_samples": n, "t_train_cpu_s": train,
           "t_train_source": f"the last training epoch on {measured['generated_samples']} generated κ, per κ, "
                             f"x {n} κ x {RECIPE['epochs']} epochs (the 2D recipe)",
           "x_sequential": x(n, train, measured["t_data_cpu_s"]),
           "x_2ranks": x(n, train, measured["t_data_2ranks_s"]), "paper": PAPER_TABLE16[measured["size"]]}
    record = _table4_training(training)
    if record is not None and (record["dim"], record["fine"], record["coarse"]) == (
            measured["dim"], measured["fine"], measured["coarse"]):
        samples = record["samples"]
        row.update(table4_training=record,
                   x_table4_training_sequential=x(samples, record["train_cpu_s"], measured["t_data_cpu_s"]),
                   x_table4_training_2ranks=x(samples, record["train_cpu_s"], measured["t_data_2ranks_s"]))
    return row


def _table4_training(section: dict | None) -> dict | None:
    """What Table 16 needs of the ``table4_training`` section: the data set's size and grid, the
    training's CPU-seconds and settings (None without the section)."""
    if section is None:
        return None
    try:
        dataset, train = section["dataset_config"], section["train_config"]
        record = {"dim": dataset["dim"], "fine": dataset["fine"], "coarse": dataset["coarse"],
                  "samples": dataset["samples"], "train_cpu_s": float(section["train_cpu_s"]),
                  **{k: train[k] for k in ("epochs", "width", "modes")}}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"the table4_training section lacks what Table 16 needs ({error!r}); it has "
                         f"{sorted(section)}") from None
    return {**record, **({"provenance": section["provenance"]} if "provenance" in section else {})}


def measure(case: dict) -> dict:
    """One size on this process's ranks: the generation of ``samples`` samples (CPU per rank,
    wall), and on 1 rank (``timings``) the SLEPc and learned offline stages and a training epoch."""
    import firedrake  # noqa: F401  (initialises PETSc before PyOP2 does)
    from pyop2.mpi import COMM_WORLD

    from fem_ms.data import GMsFEMBasisConfig, generate

    comm = COMM_WORLD
    dim, fine, coarse, samples = case["dim"], case["fine"], case["coarse"], case["samples"]
    root = Path(comm.bcast(tempfile.mkdtemp(prefix="fem-ms-break-even-") if comm.rank == 0 else None))
    options = {"dim": dim, "coarse": coarse, "n_basis": 8, "convention": "paper", "train_fraction": 1.0}
    # the kernels do not depend on the mesh size: a small set compiles them (4 fine cells per
    # coarse one: fewer leave a 3D corner neighbourhood fewer free DOFs than N_bf)
    generate(GMsFEMBasisConfig(name="p26-ablations_warm", samples=comm.size, fine=4 * coarse, **options), root,
             progress=False)
    config = GMsFEMBasisConfig(name="p26-ablations_break_even", samples=samples, fine=fine, **options)
    comm.barrier()
    cpu, wall = time.process_time(), time.perf_counter()
    path = generate(config, root, progress=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out = {"dim": dim, "fine": fine, "coarse": coarse, "samples": samples, "ranks": comm.size, "wall_s": wall,
           "cpu_s": cpu, "cpu_max_s": comm.allreduce(cpu, op=_max()), "cpu_sum_s": comm.allreduce(cpu)}
    if case["timings"]:
        out.update(_offline_and_training(path, samples, root, dim, fine, coarse, case["quick"]))
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(root)
    return out


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _offline_and_training(dataset: Path, samples: int, root: Path, dim: int, fine: int, coarse: int,
                          quick: bool) -> dict:
    import math

    import torch

    import firedrake as fd

    from fem_ms import cell_field, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.checkpoints import load_checkpoint

    from ..basis_speed import untrained_checkpoint
    from ..compare import Method, build_space
    from .paper import HELD_OUT

    torch.set_num_threads(1)
    pair = structured_hierarchy(coarse, fine, dim=dim, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((fine,) * dim, convention="paper").sample_kappa(HELD_OUT))
    checkpoint = root / "untrained.pt"
    untrained_checkpoint(checkpoint, dim, width=RECIPE["width"], modes=RECIPE["modes"], oversample=OVERSAMPLE)
    slepc = Method("slepc", "slepc", {"progress": False}, 8)
    learned = Method("learned", "learned", {"checkpoint": str(checkpoint), "verify": "off"}, 8)
    out = {}
    build_space(pair, V, kappa, learned)  # warm-up: torch, the mapping back, R's kernels
    for key, method, repetitions in (("t_inf", learned, 2), ("t_gmsfem", slepc, 1)):
        best = (math.inf, math.inf)
        for _ in range(repetitions):
            cpu = time.process_time()
            wall = build_space(pair, V, kappa, method)[1]
            best = min(best, (time.process_time() - cpu, wall))
        out[f"{key}_cpu_s"], out[f"{key}_wall_s"] = best
    settings = {k: v for k, v in RECIPE.items() if k != "train_samples"}
    # two epochs, the second warm; one in 3D (its CPU time on this shared machine), which counts
    # the first epoch's warm-up too
    epochs = 1 if quick or dim == 3 else 2
    trained = train_basis(dataset, root / "timed.pt", **{**settings, "epochs": epochs}, progress=False, device="cpu")
    runs = load_checkpoint(trained)["runs"]
    # the last epoch of every kind: one pass over the set's κ
    out["train_cpu_per_kappa_epoch_s"] = sum(run["history"][-1]["cpu_s"] for run in runs.values()) / samples
    out["train_epochs"] = epochs
    return out


def targets(payload: dict) -> list[dict]:
    """The break-even at 50³ (sequential: generation on 1 rank) below the paper's 1090 solves:
    with the 2D recipe's training (192 κ × 20 epochs, the epoch timed here), and with Table 4's
    3D training (``table4_training``) where the row has it."""
    section = payload.get("table16")
    row = next((r for r in section["rows"] if r["size"] == TARGET_SIZE), None) if section else None
    comparator = f"the paper's break-even at {TARGET_SIZE}, sequential (its own hardware, 800 samples)"
    names = {"x_sequential": f"Table 16: break-even solves at {TARGET_SIZE} (sequential), the 2D recipe's "
                             "192 κ x 20 epochs, timed here",
             "x_table4_training_sequential": f"Table 16: break-even solves at {TARGET_SIZE} (sequential), "
                                             "Table 4's 3D training (its samples and CPU-seconds)"}
    out = []
    for key, name in names.items():
        if row is None or (key == "x_table4_training_sequential" and "table4_training" not in row):
            out.append(threshold(name, None, "<", TARGET_BOUND, " solves", comparator, None))
            continue
        caveats = [f"CPU-seconds on this machine: T_data {row['t_data_cpu_s']:.3g} s/sample, "
                   f"T_GMsFEM {row['t_gmsfem_cpu_s']:.3g} s, T_inf {row['t_inf_cpu_s']:.3g} s "
                   f"(an untrained model of the recipe's architecture)"]
        if key == "x_sequential":
            caveats.append(f"T_train {row['t_train_cpu_s']:.3g} s: {row['t_train_source']}; the recipe met the 2D "
                           f"accuracy target, its 3D accuracy is not established; {row['train_samples']} samples")
        else:
            record = row["table4_training"]
            caveats.append(f"T_train {record['train_cpu_s']:.3g} s, {record['samples']} samples: table4 --part "
                           f"training ({record['epochs']} epochs, width {record['width']}, modes "
                           f"{record['modes']}); whether that model meets the accuracy target is Table 4's")
        out.append(threshold(name, row[key], "<", TARGET_BOUND, " solves", comparator, row["generated_samples"],
                             caveats, missing="never: the learned bases are not cheaper than SLEPc's"))
    return out


if __name__ == "__main__":
    import sys

    emit_case(measure(json.loads(sys.argv[1])))
