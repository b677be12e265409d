# One virtualenv in .venv; every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench reliability broker-fetch image image-check k8s-check clean

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

# The container image with buildah (no Docker engine needed); see scripts/image-check.sh.
image:
	bash scripts/image-check.sh build

# Build, then run the image with podman: non-root, read-only, check-config, a real run.
image-check: install
	bash scripts/image-check.sh check

# Optional, not in CI: the chart against a real kube-apiserver (see scripts/k8s-check.sh).
k8s-check: install
	bash scripts/k8s-check.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
