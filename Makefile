# The two commands of the README, and a few more. Every target builds the environment first
# (scripts/bootstrap.sh: ~25 min the first time on 2 cores, seconds afterwards).
ENV := scripts/env
PYTEST_ARGS ?=

.PHONY: env demo test test-all test-mpi bench info clean-cache

env:
	bash scripts/bootstrap.sh

demo:
	$(ENV) python demos/fine_solve.py
	$(ENV) python demos/gmsfem_basics.py

# Default suite (< 10 min): the serial tests but @pytest.mark.slow, then the
# @pytest.mark.parallel tests under mpiexec -n 2. (mpi-pytest's own forking of mpiexec from
# inside an MPI singleton fails silently under OpenMPI, so the launcher is explicit.)
MPIEXEC := mpiexec -n 2 scripts/rank0-output

test:
	$(ENV) python -m pytest -m "not slow and not parallel" $(PYTEST_ARGS)
	$(ENV) $(MPIEXEC) python -m pytest -m "parallel and not slow" $(PYTEST_ARGS)

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
