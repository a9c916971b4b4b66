"""The entry-point groups through which fem_ms finds its plugins (it never imports them by name).

* ``fem_ms.basis_providers`` — GMsFEM basis providers by name (``basis="slepc"``, ``"learned"``).
* ``fem_ms.cli_commands`` — ``fem-ms`` subcommands: an entry point named like its command refers
  to a function that adds that command's parser to the ``add_subparsers`` action it is given.
* ``fem_ms.dataset_samplers`` — samplers of the dataset kinds whose physics a plugin computes
  (``shallow_water_sphere``: torch-harmonics' solver): an entry point named like the kind refers
  to a class built from the kind's config, with ``sample(s)``, ``shared()`` and
  ``mesh_description`` like the core's samplers (:mod:`fem_ms.data.generate`).

Kept free of heavy imports: the CLI lists providers before Firedrake (and PETSc) start.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

__all__ = ["BASIS_PROVIDERS", "CLI_COMMANDS", "DATASET_SAMPLERS", "registered"]

BASIS_PROVIDERS = "fem_ms.basis_providers"
CLI_COMMANDS = "fem_ms.cli_commands"
DATASET_SAMPLERS = "fem_ms.dataset_samplers"


def registered(group: str, refresh: bool = False) -> list[EntryPoint]:
    """The entry points of ``group``, sorted by name, one per name (the first found wins, as on
    ``sys.path``: a checkout's metadata before an installed copy's).

    Reading every installed distribution's metadata costs ~10 ms, which a multiscale space built
    per κ sample paid each time it looked its provider up; the result is kept per group and
    ``sys.path``. ``refresh=True`` reads the metadata again (a plugin installed while the process
    runs): :func:`fem_ms.gmsfem.providers.get_provider` does so before it calls a name unknown.
    """
    key = (group, tuple(sys.path))
    if refresh or key not in _REGISTERED:
        seen: dict[str, EntryPoint] = {}
        for ep in entry_points(group=group):
            seen.setdefault(ep.name, ep)
        _REGISTERED[key] = [seen[name] for name in sorted(seen)]
    return list(_REGISTERED[key])


_REGISTERED: dict[tuple, list[EntryPoint]] = {}
