"""What a benchmark's JSON records besides its figures: the header of the run, its targets, the
provenance of rows it reused, and the atomic write.

Every ``benchmarks/results/*.json`` holds

* a header: ``created`` (when the file was written), ``started`` (when the run began),
  ``machine`` (what was detected: CPU model, cores, threads, load average, compute device),
  ``versions`` (package versions and the git commit the run's code was loaded from);
* the benchmark's own fields (settings, rows of figures);
* ``targets``: a list of records ``{name, target, measured, comparator, n, met, caveats}``,
  computed by the benchmark's ``targets(payload)`` from the stored figures alone, so that the
  same function re-derives them for a file written earlier (:mod:`benchmarks.rederive`).

A row reused from an earlier run (a resumed run, or cases kept from an earlier file) carries
``provenance: {created, git_commit}`` of the run that measured it; rows without it were
measured by the run of the header.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fem_ms.atomic import write_text_atomically

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_KEYS = ("name", "target", "measured", "comparator", "n", "met", "caveats")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@functools.cache
def run_start() -> dict:
    """When this run started, the git commit its code was loaded from and whether tracked files
    differed from that commit; cached, so that a commit made while a long run goes on is not
    stamped on its figures."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=repo)
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"started": utc_now(), "git_commit": git("rev-parse", "--short", "HEAD"),
            "git_dirty": None if status is None else bool(status),
            "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()]}


def machine() -> dict:
    """What was detected on this machine: CPU, cores, memory, thread settings, load, device."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
           "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
           "platform": platform.platform(), "python": platform.python_version(),
           **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
           # other work on the machine slows timings down: how busy it was at the start and at the end
           "load_average_1_5_15min_at_start": run_start()["load_average_1_5_15min"],
           "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()]}
    out.update(_torch_device())
    return out


def _torch_device() -> dict:
    """torch's threads and the device it would compute on, where the benchmark loaded torch
    (a benchmark that never imports torch computes on the CPU through PETSc alone)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {"device": "cpu", "torch_threads": None}
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)} (of {torch.cuda.device_count()})"
    else:
        device = "cpu"
    return {"device": device, "torch_threads": torch.get_num_threads()}


def versions() -> dict:
    from petsc4py import PETSc
    from slepc4py import SLEPc

    import fem_ms  # first: Firedrake initialises PETSc

    start = run_start()
    return {"fem_ms": fem_ms.__version__,
            "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
            "slepc": ".".join(map(str, SLEPc.Sys.getVersion())),
            "git_commit": start["git_commit"], "git_dirty": start["git_dirty"]}


# --- targets ---------------------------------------------------------------------------------

@dataclass
class Target:
    """One target of a benchmark and how the run fared against it.

    ``measured`` is the figure the target is judged on. It is ``None`` where this run did not
    measure it (a case a quick run leaves out, a model a partial run did not train; ``met`` is
    ``None`` then too), or where no run reached the level the figure is taken at (``met`` is
    ``False`` then). ``n`` is the number of samples, test functions or repetitions behind the
    figure (``None`` where the run did not record it). ``comparator`` says what the figure is measured
    against: the fairest one the documentation uses (the best-tuned baseline, equal parameters,
    equal CPU time).
    """

    name: str
    target: str
    measured: float | None
    comparator: str
    n: int | None
    met: bool | None
    caveats: list[str] = field(default_factory=list)

    def record(self) -> dict:
        return asdict(self)


_COMPARISONS = {"<": lambda m, b: m < b, "<=": lambda m, b: m <= b, ">=": lambda m, b: m >= b,
                ">": lambda m, b: m > b, "in": lambda m, b: b[0] <= m <= b[1]}
_SYMBOLS = {"<": "<", "<=": "≤", ">=": "≥", ">": ">"}


def threshold(name: str, measured: float | None, op: str, bound, unit: str, comparator: str, n: int | None,
              caveats=(), missing: str = "not measured in this run") -> dict:
    """A target ``measured op bound`` (op one of ``<``, ``<=``, ``>=``, ``>``, ``in`` with a
    (low, high) bound), judged here so that the stated target and ``met`` cannot disagree."""
    if op not in _COMPARISONS:
        raise ValueError(f"op must be one of {sorted(_COMPARISONS)}, got {op!r}")
    caveats = list(caveats)
    text = f"{bound[0]:g}–{bound[1]:g}{unit}" if op == "in" else f"{_SYMBOLS[op]} {bound:g}{unit}"
    if measured is None:
        return Target(name, text, None, comparator, n, None, [missing, *caveats]).record()
    measured = float(measured)
    return Target(name, text, measured, comparator, n, bool(_COMPARISONS[op](measured, bound)), caveats).record()


def check_targets(targets, source="targets") -> None:
    """Raise ValueError naming the record and the key if ``targets`` is not a list of records
    with exactly the seven keys, a finite numeric or null ``measured``, a bool or null ``met``,
    an int or null ``n`` and a list of strings as ``caveats``."""
    if not isinstance(targets, list):
        raise ValueError(f"{source}: 'targets' must be a list, got {type(targets).__name__}")
    for i, t in enumerate(targets):
        where = f"{source}: targets[{i}]"
        if not isinstance(t, dict) or set(t) != set(TARGET_KEYS):
            keys = sorted(t) if isinstance(t, dict) else type(t).__name__
            raise ValueError(f"{where} must have exactly the keys {list(TARGET_KEYS)}, got {keys}")
        where += f" ({t['name']!r})"
        for key in ("name", "target", "comparator"):
            if not isinstance(t[key], str) or not t[key]:
                raise ValueError(f"{where}: {key!r} must be a non-empty string, got {t[key]!r}")
        m = t["measured"]
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m)):
            raise ValueError(f"{where}: 'measured' must be a finite number or null, got {m!r}")
        if t["met"] is not None and not isinstance(t["met"], bool):
            raise ValueError(f"{where}: 'met' must be true, false or null, got {t['met']!r}")
        if m is None and t["met"] is True:  # false is possible: nothing reached the comparator's level
            raise ValueError(f"{where}: 'met' is true but nothing was measured")
        if t["n"] is not None and (isinstance(t["n"], bool) or not isinstance(t["n"], int) or t["n"] < 1):
            raise ValueError(f"{where}: 'n' must be a positive integer or null, got {t['n']!r}")
        if not isinstance(t["caveats"], list) or not all(isinstance(c, str) for c in t["caveats"]):
            raise ValueError(f"{where}: 'caveats' must be a list of strings, got {t['caveats']!r}")


# --- provenance ------------------------------------------------------------------------------

def reused(rows: list[dict], earlier: dict) -> list[dict]:
    """``rows`` taken from the file ``earlier`` (a parsed result), each stamped with the run that
    measured it: its own ``provenance`` if it has one, else ``earlier``'s header."""
    stamp = {"created": earlier.get("created"), "git_commit": earlier.get("versions", {}).get("git_commit")}
    return [{**row, "provenance": row.get("provenance", stamp)} for row in rows]


# --- writing ---------------------------------------------------------------------------------

def write_result(path: Path, payload: dict, targets: list[dict]) -> Path:
    """Write the header, ``payload`` and ``targets`` to ``path`` atomically (a temporary file in
    the same directory, then a rename), after checking the targets' form."""
    check_targets(targets, str(path))
    start = run_start()
    document = {"created": utc_now(), "started": start["started"], "machine": machine(), "versions": versions(),
                **payload, "targets": targets}
    return write_json_atomic(path, document)


def write_json_atomic(path: Path, document: dict) -> Path:
    """``document`` as indented JSON at ``path``, replaced in one rename (readers never see half
    a file, an interrupted write leaves the old one)."""
    return write_text_atomically(path, json.dumps(document, indent=2) + "\n")


def default_output(name: str, quick: bool) -> Path:
    """``results/NAME.json``, or ``results/NAME_quick.json`` for a quick run (never over the
    full results)."""
    return RESULTS / f"{name}{'_quick' if quick else ''}.json"
