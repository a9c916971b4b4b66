"""The GMsFEM-NO paper's experiments against fem-ms: a calibrated ``paper`` convention and the tables it predicts.

One sub-command per table group, each a module of this package with ``--quick``; all write
sections of ``results/gmsfem_no_paper.json`` (a section another sub-command wrote earlier is
kept, stamped with the run that measured it), and the file's ``targets`` are those of every
section present:

    scripts/env python -m benchmarks.gmsfem_no_paper COMMAND [--quick] [options]
    scripts/env python -m benchmarks.gmsfem_no_paper --help        # the sub-commands

A sub-command module defines ``COMMAND`` (its name), ``ORDER`` (its place in the file's
targets), ``SECTIONS`` (the JSON sections it writes), ``SUMMARY``, ``add_arguments(parser)``,
``run(args, earlier) -> {section: payload}`` and ``targets(payload) -> [target records]``
(records for its sections, a record without a measurement where a section is absent).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from pathlib import Path
from types import ModuleType

from ..common import benchmark_arguments, parse_benchmark_arguments
from ..record import reused, write_result


def commands() -> dict[str, ModuleType]:
    """The sub-command modules of this package by name, in their targets' order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):  # __main__ runs the command line when imported
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "COMMAND"):
            found.append(module)
    return {m.COMMAND: m for m in sorted(found, key=lambda m: (m.ORDER, m.COMMAND))}


def targets(payload: dict) -> list[dict]:
    """Every sub-command's targets of ``payload``, in the sub-commands' order."""
    return [record for module in commands().values() for record in module.targets(payload)]


def main(argv=None) -> None:
    modules = commands()
    parser = benchmark_arguments("gmsfem_no_paper", __doc__, "a smoke-size run of the sub-command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in modules.items():
        command = sub.add_parser(name, help=module.SUMMARY, description=module.__doc__.splitlines()[0])
        # also after the sub-command's name (``classical --quick``); SUPPRESS keeps the value given before it
        command.add_argument("--quick", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--out", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(command)
    args = parse_benchmark_arguments(parser, argv)
    if getattr(args, "samples", None) is not None and args.samples < 1:
        raise ValueError(f"--samples must be positive, got {args.samples}")
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    sections = modules[args.command].run(args, earlier)
    # the file as it is now: a sub-command that ran meanwhile in another process keeps its sections
    current = json.loads(args.out.read_text()) if args.out.exists() else {}
    payload = {"benchmark": "gmsfem_no_paper", "quick": args.quick}
    for key in (k for module in modules.values() for k in module.SECTIONS):
        if key in current:
            payload[key] = reused([current[key]], current)[0]
    payload.update(sections)
    path = write_result(args.out, payload, targets(payload))
    print(f"wrote {path}")
