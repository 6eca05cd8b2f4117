# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKENDS ?= torch jax tensorflow
PYTEST_ARGS ?=
STAMP := $(VENV)/.kimbalance-installed

.PHONY: venv demo test test-torch test-jax test-tensorflow lint docs bench clean

venv: $(STAMP)

# torch first, pinned: 2.13.0 is the CPU build this machine carries; a plain
# `torch` requirement would pull a multi-GB CUDA build (see README for GPUs).
$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[all,test,test-torch,dev,docs,bench]"
	touch $(STAMP)

demo: venv
	$(PY) recipes/long_tail.py --dataset digits --demo

test: venv
	@status=0; for b in $(BACKENDS); do \
	  echo "=== KERAS_BACKEND=$$b ==="; \
	  KERAS_BACKEND=$$b $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) || status=1; \
	done; exit $$status

test-torch test-jax test-tensorflow: venv
	KERAS_BACKEND=$(@:test-%=%) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# ruff on everything; mypy on the package at the strictness in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The documentation site (mkdocs.yml); --strict fails on a broken reference.
docs: venv
	$(VENV)/bin/mkdocs build --strict

bench: venv
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
