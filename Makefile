# `make reproduce` and `make test` work on a fresh clone: each creates .venv when missing
# and installs kernelnet with its dev extras (re-installed when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install reproduce test wheel-test bench lint readme clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/kernelnet reproduce

# Byte-compiled once up front: the suite starts the command line in many subprocesses, and
# with PYTHONDONTWRITEBYTECODE set (as here) each would compile kernelnet from source again.
# Two pytest workers (one per core), each test's BLAS on one thread so they do not compete.
test: $(STAMP)
	$(BIN)/python -m compileall -q kernelnet tests
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

wheel-test: $(STAMP)
	bash .ci/wheel-test

bench: $(STAMP)
	for script in benchmarks/*.py; do [ -e "$$script" ] || continue; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check kernelnet tests benchmarks docs

# Every output block, figure and marked number the README quotes, produced again by the program.
readme: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/python docs/readme.py --write

clean:
	rm -rf $(VENV) runs .pytest_cache
