"""The two distributions, fem-ms and fem-ms-torch, as pip installs them outside this checkout.

The install test builds both from copies of their sources and installs them, not editable, into a
scratch venv that sees the fem-ms environment's site-packages (so nothing is downloaded) with no
package index: pip must find every declared dependency already satisfied. It then works from a
temporary directory with PYTHONPATH cleared, so that only the installed copies can be imported.
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PLUGIN_COMMANDS = ("train-basis", "train-mlmc", "train-gpo")


def core_requirements() -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def plugin_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "plugins" / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def pinned_versions() -> dict[str, str]:
    """KEY=VALUE lines of scripts/versions.env, the bootstrap's pins."""
    pins = {}
    for line in (REPO / "scripts" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            pins[key.strip()] = value.strip().strip('"')
    return pins


def test_declared_pins_match_the_bootstrap():
    pins = pinned_versions()
    core = {canonicalize_name(r.name): str(r.specifier) for r in core_requirements()}
    plugin = {canonicalize_name(r.name): str(r.specifier) for r in plugin_requirements()}
    assert core["firedrake"] == f"=={pins['FIREDRAKE_VERSION']}"
    assert core["petsc4py"] == f"=={pins['PETSC_VERSION']}"
    assert core["slepc4py"] == f"=={pins['SLEPC_VERSION']}"
    assert plugin["torch"] == f"=={pins['TORCH_VERSION']}"


def test_bootstrap_installs_what_the_plugin_declares():
    """scripts/bootstrap.sh installs the list scripts/plugin_requirements.py prints: the plugin's
    declared dependencies but fem-ms (the environment takes it from the checkout), then its
    ``dev`` and ``docs`` extras (the tools make test and make docs run). This environment satisfies
    all of them."""
    script = [sys.executable, str(REPO / "scripts" / "plugin_requirements.py")]
    printed = subprocess.run(script, check=True, capture_output=True, text=True).stdout.splitlines()
    project = tomllib.loads((REPO / "plugins" / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = [str(r) for r in plugin_requirements() if canonicalize_name(r.name) != "fem-ms"]
    assert printed == declared + extras["dev"] + extras["docs"] and "torch==2.13.0" in printed
    assert {"sphinx", "ruff"} <= {canonicalize_name(Requirement(line).name) for line in printed}
    missing = subprocess.run([*script, "--missing"], check=True, capture_output=True, text=True).stdout
    assert missing == ""


def _optional(node, parents) -> bool:
    """Whether an import statement sits in a ``try`` that catches ImportError (an optional import)."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = [caught] if not isinstance(caught, ast.Tuple) else list(caught.elts)
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                    return True
        node = parent
    return False


def imported_top_level_names(package: Path) -> dict[str, str]:
    """Top-level modules imported (not optionally) anywhere in ``package``, each with one file that
    imports it."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            if not _optional(node, parents):
                for name in names:
                    found.setdefault(name.partition(".")[0], str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize("package,requirements,own", [
    (REPO / "fem_ms", core_requirements, "fem_ms"),
    (REPO / "plugins" / "fem_ms_torch", plugin_requirements, "fem_ms_torch"),
], ids=["fem-ms", "fem-ms-torch"])
def test_every_imported_distribution_is_declared(package, requirements, own):
    """Each third-party module the package imports comes from a distribution its metadata declares."""
    declared = {canonicalize_name(r.name) for r in requirements()}
    providers = packages_distributions()
    undeclared = {}
    for name, where in imported_top_level_names(package).items():
        if name == own or name in sys.stdlib_module_names:
            continue
        dists = {canonicalize_name(d) for d in providers.get(name, [])}
        if name == "fem_ms":
            dists = {"fem-ms"}  # on PYTHONPATH here, its metadata in the checkout's layer
        if not dists & declared:
            undeclared[name] = (sorted(dists) or "no installed distribution", where)
    assert not undeclared, f"imported but not declared (module: (distributions, first file)): {undeclared}"


# ---------------------------------------------------------------------------------------------------
# Non-editable install into a scratch venv

def _copy_sources(dest: Path) -> tuple[Path, Path]:
    """The two distributions' sources, copied so that building them leaves the checkout untouched."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    core = dest / "fem-ms"
    core.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, core / name)
    shutil.copytree(REPO / "fem_ms", core / "fem_ms", ignore=skip)
    plugin = dest / "fem-ms-torch"
    plugin.mkdir()
    shutil.copy2(REPO / "plugins" / "pyproject.toml", plugin / "pyproject.toml")
    shutil.copytree(REPO / "plugins" / "fem_ms_torch", plugin / "fem_ms_torch", ignore=skip)
    return core, plugin


def _scratch_venv(path: Path) -> Path:
    """A venv whose site-packages adds this environment's (a venv made from a venv sees only the
    base interpreter's packages, even with --system-site-packages, hence the .pth file)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True,
                          capture_output=True, text=True).stdout.strip()
    environment = sysconfig.get_path("purelib")
    Path(site, "fem_ms_environment.pth").write_text(f"import site; site.addsitedir({environment!r})\n")
    return python


class _Installed:
    """Commands run in the scratch venv, from ``cwd``, with PYTHONPATH cleared."""

    def __init__(self, python: Path, cwd: Path):
        self.python, self.cwd = python, cwd
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.env["PATH"] = f"{python.parent}{os.pathsep}{self.env['PATH']}"

    def run(self, *args, check=True) -> subprocess.CompletedProcess:
        out = subprocess.run([str(a) for a in args], cwd=self.cwd, env=self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(map(str, args))} exited with {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    def pip_install(self, source: Path) -> None:
        """A wheel built from ``source`` and installed, every dependency found installed or failing."""
        self.run(self.python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-cache-dir",
                 "--disable-pip-version-check", source)
        self.run(self.python, "-m", "pip", "check", "--disable-pip-version-check")


IMPORT_ALL = """
import importlib, json, pkgutil, sys
modules = {}
for top in sys.argv[1:]:
    package = importlib.import_module(top)
    modules[top] = package.__file__
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        modules[info.name] = importlib.import_module(info.name).__file__
print(json.dumps(modules))
"""

LOAD_ENTRY_POINTS = """
import json
from importlib.metadata import entry_points
print(json.dumps({group: {ep.name: ep.dist.name for ep in entry_points(group=group) if ep.load()}
                  for group in ("fem_ms.basis_providers", "fem_ms.cli_commands")}))
"""


def _source_packages(root: Path, top: str) -> set[str]:
    return {".".join(p.parent.relative_to(root).parts) for p in (root / top).rglob("__init__.py")
            if "__pycache__" not in p.parts}


@pytest.mark.slow
@pytest.mark.torch  # installs the plugin and imports it
def test_non_editable_install_of_both_distributions(tmp_path):
    core, plugin = _copy_sources(tmp_path / "src")
    python = _scratch_venv(tmp_path / "venv")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    work = tmp_path / "elsewhere"
    work.mkdir()
    venv = _Installed(python, work)

    # The core alone: its commands, and the plugin's named as not installed.
    venv.pip_install(core)
    listed = venv.run("fem-ms", "--help").stdout
    assert all(command in listed for command in ("info", "solve", "generate"))
    assert not any(command in listed for command in PLUGIN_COMMANDS)
    asked = venv.run("fem-ms", "train-basis", "train.toml", check=False)
    assert asked.returncode == 2 and len(asked.stderr.splitlines()) == 1
    assert "fem-ms-torch plugin, which is not installed" in asked.stderr

    venv.pip_install(plugin)
    modules = json.loads(venv.run(python, "-c", IMPORT_ALL, "fem_ms", "fem_ms_torch").stdout)
    outside = {name: file for name, file in modules.items() if not Path(file).is_relative_to(site)}
    assert not outside, f"imported from elsewhere than the installed copy: {outside}"
    for root, top in ((REPO, "fem_ms"), (REPO / "plugins", "fem_ms_torch")):
        assert _source_packages(root, top) <= set(modules), "subpackages missing from the installed copy"
    shipped = {p.name for p in (site / "fem_ms" / "geometries").glob("*.geo")}
    assert shipped == {p.name for p in (REPO / "fem_ms" / "geometries").glob("*.geo")}

    listed = venv.run("fem-ms", "--help").stdout
    assert all(command in listed for command in ("info", "solve", "generate", *PLUGIN_COMMANDS))
    registered = json.loads(venv.run(python, "-c", LOAD_ENTRY_POINTS).stdout)
    assert registered == {"fem_ms.basis_providers": {"slepc": "fem-ms", "learned": "fem-ms-torch"},
                          "fem_ms.cli_commands": {c: "fem-ms-torch" for c in PLUGIN_COMMANDS}}
    info = json.loads(venv.run("fem-ms", "info").stdout)
    assert set(info["entry_points"]["fem_ms.basis_providers"]) == {"slepc", "learned"}
    assert set(info["entry_points"]["fem_ms.cli_commands"]) == set(PLUGIN_COMMANDS)
