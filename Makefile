# One entry point per chore. `make run` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test check lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## run: set up and run the bundled hello workflow end to end
run: install
	$(VENV)/bin/conv3n run templates/csv_report.conv3n.json --output pretty

## check: formatting, lint and types
check: install
	$(VENV)/bin/ruff format --check conv3n_jupyter tests benchmarks
	$(VENV)/bin/ruff check conv3n_jupyter tests benchmarks
	$(VENV)/bin/mypy conv3n_jupyter

## test: check, then every test
test: check
	$(PY) -m pytest

format: install
	$(VENV)/bin/ruff format conv3n_jupyter tests benchmarks
	$(VENV)/bin/ruff check --fix conv3n_jupyter tests benchmarks

## bench: the benchmark suite (prints a table; see benchmarks/README.md)
bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
