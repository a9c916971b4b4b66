"""What every benchmark script shares: its command line, cases in child processes, a printed table,
cached datasets. The JSON it writes (header, targets, provenance) is :mod:`benchmarks.record`."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from .record import default_output, run_start


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Print ``rows`` as a table; ``columns`` = (key, header, format)."""
    header = " ".join(f"{h:>12}" for _, h, _ in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(" ".join(f"{format(row[k], fmt):>12}" if row.get(k) is not None else f"{'-':>12}"
                       for k, _, fmt in columns))
    sys.stdout.flush()


def run_case_in_subprocess(module: str, args: list[str], ranks: int = 1) -> dict:
    """Run ``python -m module *args`` (under ``mpiexec -n ranks`` if ranks > 1) in a fresh
    process, so that its peak memory and Firedrake/PETSc state are its own; return the JSON
    object its last line of output holds."""
    cmd = [sys.executable, "-m", module, *args]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    # os.environ, not the process's C environment: a caller that has initialised MPI as a
    # singleton (a test process) carries OMPI_/PMIX_ variables there that make mpiexec fail silently
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                          env=dict(os.environ))
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def emit_case(row: dict | list) -> None:
    """Print a case's figures as the one JSON line :func:`run_case_in_subprocess` reads (rank 0)."""
    from pyop2.mpi import COMM_WORLD

    if COMM_WORLD.rank == 0:
        print(json.dumps(row))


def benchmark_arguments(name: str, doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes: --quick, --out, and the internal --case."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{quick_help}; same schema as the full run, "
                        "written to results/NAME_quick.json unless --out says otherwise")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output path (default results/{name}.json, results/{name}_quick.json with --quick)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case in a child process
    parser.set_defaults(benchmark=name)
    return parser


def parse_benchmark_arguments(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, fill in the default ``--out``, and note the run's start (time, commit, load)."""
    args = parser.parse_args(argv)
    del sys.argv[1:]  # PETSc reads sys.argv when Firedrake is first imported: these are ours
    args.out = args.out or default_output(args.benchmark, args.quick)
    run_start()
    return args


def cached_dataset(config) -> Path:
    """Generate (or reuse) the dataset ``config`` describes in a cache outside the clone.

    The directory is ``$FEM_MS_DATA`` (default ``~/.cache/fem-ms/data``)/``<hash of the config>``:
    a config generated once is reused by every benchmark and every later run, and an
    interrupted generation resumes where it stopped (the store refuses a different config).
    """
    import hashlib

    from fem_ms.data import generate

    root = Path(os.environ.get("FEM_MS_DATA", Path.home() / ".cache" / "fem-ms" / "data"))
    key = hashlib.sha256(config.to_json().encode()).hexdigest()[:12]
    return generate(config, root / key)
