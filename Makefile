# The two commands of the README, and a few more. Every target builds the environment first
# (scripts/bootstrap.sh: ~25 min the first time on 2 cores, seconds afterwards).
ENV := scripts/env
PYTEST_ARGS ?=

.PHONY: env demo lint docs docs-figures test test-all test-mpi bench info clean-cache

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
# 4. the non-editable install of both distributions into a scratch venv (tests/test_packaging.py);
# then the documentation site (make docs).
MPIEXEC := mpiexec -n 2 scripts/rank0-output

lint:
	$(ENV) ruff check .

test: lint
	$(ENV) --without-torch python -m pytest -m "not slow and not parallel and not torch" $(PYTEST_ARGS)
	$(ENV) python -m pytest -m "torch and not slow and not parallel" $(PYTEST_ARGS)
	$(ENV) $(MPIEXEC) python -m pytest -m "parallel and not slow" $(PYTEST_ARGS)
	$(ENV) python -m pytest -m slow tests/test_packaging.py $(PYTEST_ARGS)
	$(MAKE) docs

# The documentation site (docs/conf.py) in docs/_build/html, warnings as errors, references
# checked (-n). It runs the fast demos of the gallery; DOCS_ARGS adds sphinx-build options.
DOCS_ARGS ?=
docs:
	$(ENV) python -m sphinx -W --keep-going -n -q -b html $(DOCS_ARGS) docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The figures of the demos the site shows without running them (they train for minutes), written
# by the demos with their defaults into docs/demo_figures/ (commit them).
SLOW_DEMOS := learned_basis mlmc_training gpo_surrogate
docs-figures:
	rm -rf build/demo-figures
	set -e; for demo in $(SLOW_DEMOS); do \
	  $(ENV) python demos/$$demo.py --out-dir build/demo-figures; \
	  cp build/demo-figures/$$demo*.png docs/demo_figures/; \
	done

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
