# Two commands set everything up: `make lab` and `make test` (each creates .venv if missing).
# GPU users: override the torch requirement, e.g.
#   make lab TORCH="torch --index-url https://download.pytorch.org/whl/cu126"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8888

.PHONY: lab test bench lint format notebooks clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# The notebooks' kernel. Its env carries the OpenMP waiting defaults of workbench/threads.py (a short
# spin, so a busy machine does not slow training 10x; README "CPU threads"); libgomp reads them when torch loads, so
# they must be in the kernel's environment, not set by code that may run after `import torch`.
# A value set in your shell when this runs is kept (kernel spec values win over the server's env).
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json
$(KERNEL): $(STAMP) workbench/threads.py Makefile
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (AENP Workbench)" \
		$$($(PY) -c "import workbench.threads as t; print(t.kernel_args())") >/dev/null

# JupyterLab settings for this environment: no news pop-up, no update check (nothing leaves the machine).
OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(OVERRIDES): $(STAMP) Makefile
	mkdir -p $(dir $@)
	printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@

START := $(if $(wildcard notebooks/00_start_here.ipynb),notebooks/00_start_here.ipynb,notebooks)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# The server's root is the repository; the notebook path on the command line is what the browser opens,
# and default_url makes the URL the server prints (the one to copy from a remote or container
# session) land on the same notebook instead of the Launcher. No news, no update check.
LAB_FLAGS := --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/$(START) \
	--LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

lab: $(STAMP) $(KERNEL) $(OVERRIDES)
	$(VENV)/bin/jupyter lab --port=$(PORT) $(ROOT_FLAG) $(LAB_FLAGS) $(START)

test: $(STAMP) $(KERNEL)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q tests

# The reference library lives in its own environment: the project never imports it.
REF_STAMP := .venv-ref/.installed
$(REF_STAMP):
	test -x .venv-ref/bin/python || $(PYTHON) -m venv .venv-ref
	.venv-ref/bin/python -m pip install -q $(TORCH)
	.venv-ref/bin/python -m pip install -q neuralprocesses
	touch $(REF_STAMP)

bench: $(STAMP) $(KERNEL) $(REF_STAMP)
	OMP_NUM_THREADS=2 $(PY) bench/run_bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Each notebook is a jupytext source (notebooks/NN_name.py) paired with its .ipynb: take the inputs from
# whichever was edited last into the other, then strip outputs (executed copies stay out of git). Sync
# first: stripping rewrites the .ipynb, which would then look newer than an edited source.
notebooks: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/*.ipynb

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache
