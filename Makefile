# Two commands do all the set-up themselves: `make study` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= quick
# torch and sklearn share two cores: one BLAS thread each unless the caller says otherwise.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export OPENBLAS_NUM_THREADS ?= 2

.PHONY: install test study lab lint bench clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name transferlab --display-name "transferlab (.venv)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The run, then README's results block rewritten from its claims.csv (date, CPU, commit).
study: $(STAMP)
	$(PY) -m transferlab run --profile $(PROFILE) --out reports
	$(PY) tools/update_readme.py reports/$(PROFILE)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests bench tools notebooks

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf reports .cache
