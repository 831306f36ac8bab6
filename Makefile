# Two commands set everything up: `make lab` and `make test` (each creates .venv if missing).
# GPU users: override the torch requirement, e.g.
#   make lab TORCH="torch --index-url https://download.pytorch.org/whl/cu126"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8888

.PHONY: lab test bench lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (AENP Workbench)" >/dev/null
	touch $(STAMP)

START := $(if $(wildcard notebooks/00_start_here.ipynb),notebooks/00_start_here.ipynb,notebooks)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --port=$(PORT) $(ROOT_FLAG) $(START)

test: $(STAMP)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q tests

# The reference library lives in its own environment: the project never imports it.
REF_STAMP := .venv-ref/.installed
$(REF_STAMP):
	test -x .venv-ref/bin/python || $(PYTHON) -m venv .venv-ref
	.venv-ref/bin/python -m pip install -q $(TORCH)
	.venv-ref/bin/python -m pip install -q neuralprocesses
	touch $(REF_STAMP)

bench: $(STAMP) $(REF_STAMP)
	OMP_NUM_THREADS=2 $(PY) bench/run_bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
