# Two commands: `make run` and `make test`. Both create .venv on first use (through `make setup`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where pip finds a CPU build of torch. Elsewhere: TORCH_INSTALL='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'
TORCH_INSTALL ?= torch==2.13.0

export PREFECT_HOME ?= $(CURDIR)/var/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup browser dashboard run test test-fast lint docs bench clean distclean

setup: $(STAMP)

# torch first, pinned to the small CPU wheel: otherwise a dependency may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_INSTALL)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]" --config-settings editable_mode=compat
	$(BIN)/python -m dashboard.vendor
	touch $(STAMP)

# The dashboard's browser tests drive Debian's chromium through chromedriver (no browser download).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the dashboard's browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; } || \
	  echo "warning: could not install chromium; the browser tests will fail"; }

run: setup
	$(BIN)/battery-discovery run

test: setup browser docs
	$(BIN)/lint-imports
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow and not e2e"

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

# The documentation site (mkdocs.yml, pages in docs/) into var/site; --strict: a broken link or anchor fails
# (no --quiet: it hides the warnings, and --strict then passes).
docs: setup
	$(BIN)/mkdocs build --strict --site-dir var/site

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/round.py

dashboard: setup
	$(BIN)/battery-discovery dashboard

# Removes the environment and caches; keeps var/ (the store, models and reference energies).
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache var/prefect

# Also deletes every campaign: stops the embedded store first.
distclean:
	-[ -x $(BIN)/battery-discovery ] && $(BIN)/battery-discovery store stop
	rm -rf $(VENV) .pytest_cache .ruff_cache var
