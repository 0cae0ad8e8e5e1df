# `make reproduce` and `make test` work on a fresh clone: each creates .venv when missing
# and installs kernelnet with its dev extras (re-installed when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install reproduce test wheel-test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/kernelnet reproduce

test: $(STAMP)
	$(BIN)/python -m pytest -q

wheel-test: $(STAMP)
	bash .ci/wheel-test

bench: $(STAMP)
	for script in benchmarks/*.py; do [ -e "$$script" ] || continue; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check kernelnet tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
