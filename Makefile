# The two commands of the README, and a few more. Every target builds the environment first
# (scripts/bootstrap.sh: ~25 min the first time on 2 cores, seconds afterwards).
ENV := scripts/env
PYTEST_ARGS ?=

.PHONY: env demo lint test test-all test-mpi bench info clean-cache

env:
	bash scripts/bootstrap.sh

demo:
	$(ENV) python demos/fine_solve.py
	$(ENV) python demos/gmsfem_basics.py

# Default suite (< 10 min), four runs:
# 1. the serial tests of the classical core (neither slow, parallel nor torch) in an interpreter
#    where torch cannot be imported (scripts/env --without-torch): the core must not need it;
# 2. the serial tests marked torch (tests/conftest.py marks every test that imports torch);
# 3. the @pytest.mark.parallel tests under mpiexec -n 2 (mpi-pytest's own forking of mpiexec from
#    inside an MPI singleton fails silently under OpenMPI, so the launcher is explicit);
# 4. the non-editable install of both distributions into a scratch venv (tests/test_packaging.py).
MPIEXEC := mpiexec -n 2 scripts/rank0-output

lint:
	$(ENV) ruff check .

test: lint
	$(ENV) --without-torch python -m pytest -m "not slow and not parallel and not torch" $(PYTEST_ARGS)
	$(ENV) python -m pytest -m "torch and not slow and not parallel" $(PYTEST_ARGS)
	$(ENV) $(MPIEXEC) python -m pytest -m "parallel and not slow" $(PYTEST_ARGS)
	$(ENV) python -m pytest -m slow tests/test_packaging.py $(PYTEST_ARGS)

test-all:
	$(ENV) python -m pytest -m "not parallel" $(PYTEST_ARGS)
	$(ENV) $(MPIEXEC) python -m pytest -m parallel $(PYTEST_ARGS)

bench:
	$(ENV) python -m benchmarks.fine_solve

info:
	$(ENV) fem-ms info

# Firedrake's compiled-kernel cache (kept inside the environment)
clean-cache:
	$(ENV) firedrake-clean
