"""Print the plugin's dependencies from plugins/pyproject.toml, the one place they are declared.

Usage: python scripts/plugin_requirements.py [--missing] [PYPROJECT]

scripts/bootstrap.sh installs what this prints into the fem-ms environment: the dependencies, then
the ``dev`` and ``docs`` extras (the tools ``make test`` and ``make docs`` run). fem-ms itself is
left out (scripts/env takes it from the checkout). With ``--missing``, only the requirements that the
running interpreter's installed distributions do not satisfy are printed, so that the bootstrap
can tell in a fraction of a second whether its plugin layer is complete whichever checkout
installed it.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CORE = canonicalize_name("fem-ms")
# the extras the environment holds besides the dependencies, in this order
EXTRAS = ("dev", "docs")


def requirements(pyproject: Path) -> list[Requirement]:
    """The ``[project] dependencies`` of ``pyproject`` but fem-ms, then its :data:`EXTRAS`, in file
    order."""
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = project.get("optional-dependencies", {})
        declared = project["dependencies"] + [line for name in EXTRAS for line in extras.get(name, [])]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise SystemExit(f"{pyproject}: cannot read [project] dependencies: {exc}") from None
    found = [Requirement(line) for line in declared]
    return [req for req in found if canonicalize_name(req.name) != CORE]


def satisfied(req: Requirement) -> bool:
    """Whether an installed distribution satisfies ``req`` (local labels such as ``+cpu`` allowed)."""
    if req.marker is not None and not req.marker.evaluate():
        return True
    try:
        installed = version(req.name)
    except PackageNotFoundError:
        return False
    return req.specifier.contains(installed, prereleases=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", nargs="?", type=Path,
                        default=Path(__file__).resolve().parent.parent / "plugins" / "pyproject.toml")
    parser.add_argument("--missing", action="store_true", help="only those the installed distributions lack")
    args = parser.parse_args(argv)
    for req in requirements(args.pyproject):
        if not (args.missing and satisfied(req)):
            print(req)
    return 0


if __name__ == "__main__":
    sys.exit(main())
