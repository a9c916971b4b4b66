"""Make torch and fem_ms_torch unimportable in this interpreter (``scripts/env --without-torch``).

Imported at start-up by a ``.pth`` file of the venv that ``scripts/env --without-torch`` makes, so
that the core's tests run as they would where torch is not installed: any import of torch, of
the plugin, or of a library that imports torch fails with ``ModuleNotFoundError``.
"""

import sys
from importlib.abc import MetaPathFinder

BLOCKED = ("torch", "fem_ms_torch")


class TorchBlocker(MetaPathFinder):
    """A finder placed first on ``sys.meta_path`` that refuses the blocked top-level packages."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: this interpreter runs the fem-ms "
                                      "core without torch, scripts/env --without-torch)", name=fullname)
        return None


sys.meta_path.insert(0, TorchBlocker())
