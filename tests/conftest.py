import petsc4py

# PETSc would parse pytest's command line as options and warn that they were unused.
petsc4py.init(["pytest"])

"""Shared fixtures. Tests run inside the fem-ms environment (``make test``)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO


def observed_rates(errors):
    """log2 of successive error ratios on meshes refined by 2."""
    import numpy as np

    e = np.asarray(errors, dtype=float)
    return np.log2(e[:-1] / e[1:])


def pytest_generate_tests(metafunc):
    """Parametrize the provider contract's checks (tests/provider_contract.py) over the
    dimensions each provider's test class supports."""
    if "contract_dim" in metafunc.fixturenames and metafunc.cls is not None:
        dims = getattr(metafunc.cls, "dims", (2, 3))
        metafunc.parametrize("contract_dim", dims, ids=[f"{d}D" for d in dims])
