# Quick start: `make demo` runs the main job on the embedded synthetic dataset,
# `make test` runs the test suite. Both create (or reuse) the virtual environment
# in $(VENV) and install the package into it; nothing else needs to be installed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rsjax-installed
# The TPU compiler (libtpu, ~700 MB) only for the tests, which compile for TPU
# topologies (tests/train/test_aot.py); `make demo` does without it.
TPU_STAMP := $(VENV)/.rsjax-tpu-installed
WORKDIR ?= workdir/demo
PYTEST_ARGS ?=
# Tests compile XLA programs on one thread each: one pytest-xdist worker per
# core (at most 4, each holds a JAX runtime with 8 simulated devices), whole
# files per worker so module fixtures are built once.
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: demo test venv mutants clean

venv: $(STAMP)

# pip shows what it collects and downloads (about 3.3 GB on a fresh machine).
$(STAMP): pyproject.toml
	@echo "Installing rsjax and its dependencies into $(VENV) (about 3.3 GB, a few minutes on a fresh machine)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[test,tfds-cli]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m launch.demo --workdir $(WORKDIR)

$(TPU_STAMP): $(STAMP)
	@echo "Installing the TPU compiler (libtpu, about 700 MB) for the tests that compile for TPU topologies"
	$(PY) -m pip install --progress-bar on -e '.[tpu]'
	touch $(TPU_STAMP)

test: $(TPU_STAMP)
	$(PY) -m pytest -q $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Mutation testing (TESTING.md); hours on 2 cores, not part of CI. A second
# run resumes: mutmut keeps the results of unchanged functions in mutants/.
# mutants/ is rebuilt when pyproject.toml (which holds the mutmut settings) is
# newer: mutmut takes a file copied under other settings for an unchanged one.
mutants: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,mutation]'
	[ ! -d mutants ] || [ mutants -nt pyproject.toml ] || rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $$(nproc)
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) workdir .pytest_cache mutants
