# Quick start: `make demo` runs the main job on the embedded synthetic dataset,
# `make test` runs the test suite. Both create (or reuse) the virtual environment
# in $(VENV) and install the package into it; nothing else needs to be installed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rsjax-installed
WORKDIR ?= workdir/demo
PYTEST_ARGS ?=

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,tfds-cli]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m launch.demo --workdir $(WORKDIR)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) workdir .pytest_cache
