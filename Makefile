# One virtualenv in .venv; every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench reliability broker-fetch clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

install: $(STAMP)

demo: install
	$(PY) -m devkit.demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m bench $(BENCH_ARGS)

# The reliability suite (RELIABILITY.md); SOAK=1 runs the long-run memory soak instead.
reliability: install
	$(PY) -m reliability $(if $(SOAK),--soak) $(RELIABILITY_ARGS)

broker-fetch: install
	$(PY) -m devkit.broker fetch

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
