# infomin: `make demo` runs the main job, `make test` the suite, `make bench` the benchmarks.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# On machines whose pip is capped to local torch wheels (this project's CI), ask for exactly those;
# elsewhere take any supported release from PyPI.
TORCH  := $(shell if [ -f /etc/xdg/pip/constraints.txt ] && grep -q 'torch<=2.14.1' /etc/xdg/pip/constraints.txt; \
            then echo 'torch==2.14.1 torchvision==0.29.1'; else echo 'torch>=2.2 torchvision>=0.17'; fi)
PYTEST_ARGS ?=

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

test: install
	$(BIN)/ruff check infomin tests bench studies
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m infomin.demo

bench: install
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev,bench]"
	@for f in bench/[a-z]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: install
	$(BIN)/ruff check infomin tests bench studies

clean:
	rm -rf $(VENV) mlruns mlflow.db .pytest_cache demo-out
