"""Several checkouts share one environment: each process started through a checkout's scripts/env
(and every subprocess and MPI rank it starts) imports that checkout's code and entry points."""

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

PROBE = """
import json, subprocess, sys
import fem_ms
from importlib.metadata import entry_points
from mpi4py import MPI
child = subprocess.run([sys.executable, "-c", "import fem_ms; print(fem_ms.CHECKOUT)"], capture_output=True,
                       text=True, check=True).stdout.strip()
slepc = next(ep for ep in entry_points(group="fem_ms.basis_providers") if ep.name == "slepc")
print(json.dumps({"rank": MPI.COMM_WORLD.rank, "checkout": fem_ms.CHECKOUT, "file": fem_ms.__file__,
                  "child": child, "metadata": str(slepc.dist.locate_file(""))}))
"""


def _checkout(root, name: str):
    """A copy of the packages and scripts of this checkout, marked with ``name``."""
    for part in ("scripts", "fem_ms", "plugins", "setup.cfg", "pyproject.toml"):
        source = REPO / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / part,
                                                              **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                                 if source.is_dir() else {}))
    init = root / "fem_ms" / "__init__.py"
    init.write_text(init.read_text() + f"\nCHECKOUT = {name!r}\n")
    return root


def _layer_key(root) -> str:
    """scripts/env's key of a checkout's metadata layers: the hash of its path."""
    return hashlib.sha256(str(root).encode()).hexdigest()[:12]


def test_two_checkouts_run_at_once_each_on_its_own_code(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    roots = {name: _checkout(tmp_path / name, name) for name in ("A", "B")}
    prefix = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.sh"), "--print-prefix"], capture_output=True,
                            text=True, check=True).stdout.strip()
    try:
        runs = {}
        for name, root in roots.items():  # started together: both make their metadata layer at once
            for ranks in (1, 2):
                command = [str(root / "scripts" / "env"), "python", "-c", PROBE]
                if ranks > 1:
                    command[1:1] = ["mpiexec", "-n", str(ranks)]
                # from the checkout's root, as its user would (python -c puts the cwd first on sys.path)
                runs[name, ranks] = subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE, text=True)
        for (name, ranks), proc in runs.items():
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            assert sorted(r["rank"] for r in records) == list(range(ranks))
            for record in records:
                assert record["checkout"] == record["child"] == name
                assert record["file"] == str(roots[name] / "fem_ms" / "__init__.py")
                assert Path(record["metadata"]).name.startswith(_layer_key(roots[name]))
    finally:
        for root in roots.values():
            for layer in (Path(prefix) / "checkouts").glob(_layer_key(root) + "*"):
                shutil.rmtree(layer) if layer.is_dir() else layer.unlink()


@pytest.mark.parametrize("variable", ["PYTHONPATH"])
def test_scripts_env_puts_this_checkout_first(variable):
    path = os.environ.get(variable, "").split(os.pathsep)
    assert path[:2] == [str(REPO), str(REPO / "plugins")] or path[:1] == [str(REPO)]
