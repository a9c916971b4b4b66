"""What every benchmark shares: machine facts, versions, atomic JSON output, a printed table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """CPU, cores, memory and the thread settings the figures were measured with."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            # other work on the machine slows timings down: say how busy it was
            "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict:
    import fem_ms  # first: Firedrake initialises PETSc
    from petsc4py import PETSc
    from slepc4py import SLEPc

    out = {"fem_ms": fem_ms.__version__,
           "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
           "slepc": ".".join(map(str, SLEPc.Sys.getVersion()))}
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                           text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    return out


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(path: Path, payload: dict) -> Path:
    """Write ``payload`` with machine/versions/time to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "versions": versions(), **payload}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


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
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def emit_case(row: dict) -> None:
    """Print a case's figures as the one JSON line :func:`run_case_in_subprocess` reads (rank 0)."""
    from pyop2.mpi import COMM_WORLD

    if COMM_WORLD.rank == 0:
        print(json.dumps(row))


def benchmark_arguments(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes: --quick, --out, and the internal --case."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case in a child process
    return parser


def parse_benchmark_arguments(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    del sys.argv[1:]  # PETSc reads sys.argv when Firedrake is first imported: these are ours
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
