"""Re-derive the ``targets`` of benchmark JSONs written earlier from their stored figures.

Each benchmark module has a ``targets(payload)`` function of its own results; this applies it to
files that are already written (results of runs that took hours, or that predate a change of a
target's comparator), without re-measuring anything. A re-derived file keeps its ``created``
date, machine and versions (those of the run that measured it); it gains a ``rederived`` note
(when, at which commit) and every target record says in its caveats that it was re-derived.

    scripts/env python -m benchmarks.rederive [FILE ...]   # default: every benchmarks/results/*.json
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from .record import RESULTS, check_targets, run_start, utc_now, write_json_atomic


def rederive(path: Path) -> list[dict]:
    """Recompute and store the targets of the result file ``path``; return them."""
    path = Path(path)
    document = json.loads(path.read_text())
    name = document.get("benchmark")
    here = Path(__file__).parent
    if not isinstance(name, str) or not ((here / f"{name}.py").is_file() or (here / name / "__init__.py").is_file()):
        raise ValueError(f"{path}: 'benchmark' names no benchmark module (got {name!r})")
    module = importlib.import_module(f"benchmarks.{name}")
    start = run_start()
    note = (f"re-derived on {start['started'][:10]} at commit {start['git_commit']} from the figures stored by the "
            f"run of {document.get('created', 'unknown date')} (commit "
            f"{document.get('versions', {}).get('git_commit', 'unknown')}); nothing was re-measured")
    targets = module.targets(document)
    for record in targets:
        record["caveats"].append(note)
    check_targets(targets, str(path))
    document["targets"] = targets
    document["rederived"] = {"date": utc_now(), "git_commit": start["git_commit"], "git_dirty": start["git_dirty"]}
    write_json_atomic(path, document)
    return targets


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rederive", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="result files (default: every benchmarks/results/*.json)")
    args = parser.parse_args(argv)
    for path in args.files or sorted(RESULTS.glob("*.json")):
        targets = rederive(path)
        verdicts = ", ".join({True: "met", False: "missed", None: "not measured"}[t["met"]] for t in targets)
        print(f"{path.name}: {len(targets)} target(s){': ' + verdicts if targets else ''}")


if __name__ == "__main__":
    main()
