"""Benchmark of dataset generation: samples per second and bytes per sample, 1 and 2 ranks.

Each case runs in its own process (under mpiexec for 2 ranks; a quick run times every case in
one process per rank count); a dataset of one sample per rank is generated first to compile the
kernels, then the timed dataset (generation + merge into HDF5).

    scripts/env python -m benchmarks.datagen [--quick] [--out PATH]
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time

from tqdm import tqdm

from .common import benchmark_arguments, emit_case, parse_benchmark_arguments, print_table, run_case_in_subprocess
from .record import reused, write_result

CASES = {
    "gmsfem_basis_100": {"kind": "gmsfem_basis", "fine": 100, "coarse": 5, "n_basis": 8},
    "gmsfem_basis_250": {"kind": "gmsfem_basis", "fine": 250, "coarse": 10, "n_basis": 8},
    "multilevel_16_256": {"kind": "multilevel", "levels": [16, 32, 64, 128, 256]},
    "darcy_notch": {"kind": "darcy_notch"},
    "cylinder_flow": {"kind": "cylinder_flow"},  # T = 50 (200 steps) on the four meshes
}
SAMPLES = {"cylinder_flow": 2}
# The warm-up only has to compile the kernels: a short trajectory does that.
WARM = {"cylinder_flow": {"t_end": 1.0}}
# A quick run times a short horizon (the same time steps, fewer of them)
QUICK = {"cylinder_flow": {"t_end": 1.0}}


def case_config(name: str, quick: bool) -> dict:
    return {**CASES[name], **(QUICK.get(name, {}) if quick else {})}


def run_cases(cases: list, quick: bool) -> list[dict]:
    """Time each (name, samples) of ``cases`` in turn (one process)."""
    return [run_case(name, samples, quick) for name, samples in cases]


def run_case(name: str, samples: int, quick: bool) -> dict:
    import firedrake  # noqa: F401  (initialises PETSc before PyOP2 does)
    from pyop2.mpi import COMM_WORLD

    from fem_ms.data import generate, load_config

    comm = COMM_WORLD
    root = comm.bcast(tempfile.mkdtemp(prefix="fem-ms-datagen-") if comm.rank == 0 else None)
    warm = load_config({**CASES[name], **WARM.get(name, {}), "name": "warm", "samples": comm.size})
    generate(warm, root, progress=False)
    config = load_config({**case_config(name, quick), "name": name, "samples": samples})
    comm.barrier()
    t0 = time.perf_counter()
    path = generate(config, root, progress=False)
    wall = time.perf_counter() - t0
    size = path.stat().st_size
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(root)
    return {"dataset": name, "ranks": comm.size, "samples": samples, "wall_s": wall,
            "samples_per_s": samples / wall, "bytes_per_sample": size / samples, "config": case_config(name, quick)}


def targets(payload: dict) -> list[dict]:
    """None: issue 5 asked for the rates, not for a threshold."""
    return []


def main(argv=None) -> None:
    parser = benchmark_arguments("datagen", __doc__, "2 samples per case, cylinder trajectories to t = 1")
    parser.add_argument("--only", help="comma-separated case names; the others are kept from an existing "
                                       "JSON at the output path")
    args = parse_benchmark_arguments(parser, argv)
    if args.case:
        emit_case(run_cases(json.loads(args.case), args.quick))
        return
    out = args.out
    only = set(args.only.split(",")) if args.only else set(CASES)
    unknown = only - set(CASES)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; known: {sorted(CASES)}")
    kept = []
    if args.only and out.exists():  # the other cases from the earlier file, stamped with the run that measured them
        earlier = json.loads(out.read_text())
        kept = [r for r in reused(earlier["cases"], earlier) if r["dataset"] in CASES and r["dataset"] not in only]
    cases = [(name, SAMPLES.get(name, 2 if args.quick else 16)) for name in CASES if name in only]
    # each case in a fresh process (a quick run: one process per rank count for all of them)
    groups = [cases] if args.quick else [[case] for case in cases]
    rows = []
    for group, ranks in tqdm([(g, r) for g in groups for r in (1, 2)], desc="datagen cases", unit="process"):
        rows += run_case_in_subprocess("benchmarks.datagen", ["--case", json.dumps(group),
                                                              *(["--quick"] if args.quick else [])], ranks)
    order = list(CASES)
    rows = sorted(kept + rows, key=lambda r: (order.index(r["dataset"]), r["ranks"]))
    print_table(rows, [("dataset", "dataset", ""), ("ranks", "ranks", "d"), ("samples", "samples", "d"),
                       ("samples_per_s", "samples/s", ".3g"), ("bytes_per_sample", "bytes/sample", ".0f")])
    payload = {"benchmark": "datagen", "quick": args.quick,
               "timing": "generate() of a fresh dataset incl. the HDF5 merge, kernels compiled by a one-sample "
                         "warm-up; wall seconds",
               "cases": rows}
    path = write_result(out, payload, targets(payload))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
