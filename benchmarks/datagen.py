"""Benchmark of dataset generation: samples per second and bytes per sample, 1 and 2 ranks.

Each case runs in its own process (under mpiexec for 2 ranks); a one-sample dataset is
generated first to compile the kernels, then the timed dataset (generation + merge into HDF5).

    scripts/env python -m benchmarks.datagen [--quick] [--out PATH]
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time

from tqdm import tqdm

from .common import RESULTS, benchmark_arguments, parse_benchmark_arguments, emit_case, print_table, run_case_in_subprocess, write_json

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


def run_case(name: str, samples: int) -> dict:
    import firedrake  # noqa: F401  (initialises PETSc before PyOP2 does)
    from pyop2.mpi import COMM_WORLD

    from fem_ms.data import generate, load_config

    comm = COMM_WORLD
    root = comm.bcast(tempfile.mkdtemp(prefix="fem-ms-datagen-") if comm.rank == 0 else None)
    warm = load_config({**CASES[name], **WARM.get(name, {}), "name": "warm", "samples": comm.size})
    generate(warm, root, progress=False)
    config = load_config({**CASES[name], "name": name, "samples": samples})
    comm.barrier()
    t0 = time.perf_counter()
    path = generate(config, root, progress=False)
    wall = time.perf_counter() - t0
    size = path.stat().st_size
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(root)
    return {"dataset": name, "ranks": comm.size, "samples": samples, "wall_s": wall,
            "samples_per_s": samples / wall, "bytes_per_sample": size / samples, "config": CASES[name]}


def main(argv=None) -> None:
    parser = benchmark_arguments(__doc__, "4 samples per case (< 3 minutes)")
    parser.add_argument("--only", help="comma-separated case names; the others are kept from an existing "
                                       "JSON at the output path")
    args = parse_benchmark_arguments(parser, argv)
    if args.case:
        name, samples = args.case.split(",")
        emit_case(run_case(name, int(samples)))
        return
    out = args.out or RESULTS / ("datagen_quick.json" if args.quick else "datagen.json")
    only = set(args.only.split(",")) if args.only else set(CASES)
    unknown = only - set(CASES)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; known: {sorted(CASES)}")
    kept = [r for r in (json.loads(out.read_text())["cases"] if args.only and out.exists() else [])
            if r["dataset"] in CASES and r["dataset"] not in only]
    jobs = [(name, ranks) for name in CASES if name in only for ranks in (1, 2)]
    rows = []
    for name, ranks in tqdm(jobs, desc="datagen cases", unit="case"):
        samples = SAMPLES.get(name, 4 if args.quick else 16)
        rows.append(run_case_in_subprocess("benchmarks.datagen", ["--case", f"{name},{samples}"], ranks))
    order = list(CASES)
    rows = sorted(kept + rows, key=lambda r: (order.index(r["dataset"]), r["ranks"]))
    print_table(rows, [("dataset", "dataset", ""), ("ranks", "ranks", "d"), ("samples", "samples", "d"),
                       ("samples_per_s", "samples/s", ".3g"), ("bytes_per_sample", "bytes/sample", ".0f")])
    path = write_json(out, {"benchmark": "datagen", "quick": args.quick,
                            "timing": "generate() of a fresh dataset incl. the HDF5 merge, kernels compiled "
                                      "by a one-sample warm-up; wall seconds",
                            "cases": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
