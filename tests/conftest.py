import petsc4py

# PETSc would parse pytest's command line as options and warn that they were unused.
petsc4py.init(["pytest"])

"""Shared fixtures and markers. Tests run inside the fem-ms environment (``make test``).

The ``torch`` marker is set here on every test that imports torch or fem_ms_torch: in its module's
top level, its own body, its class, or a fixture of its module. ``-m "not torch"`` then selects
the tests of the classical core.
Where torch cannot be imported (``scripts/env --without-torch``), test modules that import it at
their top level are not collected when the ``-m`` expression deselects ``torch`` tests; otherwise
they fail to import, loudly. A test that needs torch without importing it (a demo run in a
subprocess) carries ``@pytest.mark.torch`` itself.
"""

import ast
import functools
import importlib.util
import os
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression  # pytest's -m grammar; no public API evaluates it

REPO = Path(__file__).resolve().parent.parent
TORCH_PACKAGES = ("torch", "fem_ms_torch")


@pytest.fixture
def repo() -> Path:
    return REPO


def observed_rates(errors):
    """log2 of successive error ratios on meshes refined by 2."""
    import numpy as np

    e = np.asarray(errors, dtype=float)
    return np.log2(e[:-1] / e[1:])


def _imports_torch(nodes) -> bool:
    """Whether any of the AST ``nodes`` (statements) imports torch or fem_ms_torch."""
    for statement in nodes:
        for node in ast.walk(statement):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name.partition(".")[0] in TORCH_PACKAGES for name in names):
                return True
    return False


@functools.cache
def _torch_in_module(path: Path) -> tuple[bool, frozenset[str]]:
    """Whether the top level of the module at ``path`` imports torch, and the names of its
    top-level functions and classes whose bodies do (fixtures, helpers, test classes)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    top = [node for node in tree.body if not isinstance(node, definitions)]
    users = frozenset(node.name for node in tree.body if isinstance(node, definitions) and _imports_torch([node]))
    return _imports_torch(top), users


def _needs_torch(item) -> bool:
    """The test's module imports torch at its top level, or its function, its class or a fixture
    of its module (by name) does."""
    module = getattr(item, "module", None)
    if module is None:
        return False
    top, users = _torch_in_module(Path(module.__file__))
    cls = getattr(item, "cls", None)
    names = {item.originalname if hasattr(item, "originalname") else item.name, *item.fixturenames}
    return top or bool(users & names) or (cls is not None and cls.__name__ in users)


@functools.cache
def _torch_importable() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # the blocker of scripts/env --without-torch refuses even the lookup
        return False


def _deselects_torch(config) -> bool:
    """Whether the ``-m`` expression deselects a test marked ``torch`` (and nothing else)."""
    expression = config.getoption("markexpr")
    if not expression:
        return False
    return not Expression.compile(expression).evaluate(lambda name, **kwargs: name == "torch")


def pytest_sessionstart(session):
    """Under mpiexec, fem_ms.meshes is imported before any test, on every rank: it keeps a PETSc
    vector on PETSC_COMM_WORLD until exit, without which PETSc's exit-time garbage cleanup can wait
    forever on a rank whose last object on that communicator was freed earlier than elsewhere."""
    if int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1"))) > 1:
        import fem_ms.meshes  # noqa: F401


def pytest_ignore_collect(collection_path, config):
    if (collection_path.suffix == ".py" and collection_path.name.startswith("test_") and not _torch_importable()
            and _deselects_torch(config) and _torch_in_module(collection_path)[0]):
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _needs_torch(item):
            item.add_marker(pytest.mark.torch)


def pytest_generate_tests(metafunc):
    """Parametrize the provider contract's checks (tests/provider_contract.py) over the
    dimensions each provider's test class supports."""
    if "contract_dim" in metafunc.fixturenames and metafunc.cls is not None:
        dims = getattr(metafunc.cls, "dims", (2, 3))
        metafunc.parametrize("contract_dim", dims, ids=[f"{d}D" for d in dims])
