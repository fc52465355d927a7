# anomalib-cmdr: two commands for a fresh machine.
#   make demo  - set up .venv, synthesize data, train + test CMDR (offline config), print metrics
#   make test  - set up .venv with the dev extra, run ruff and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ROOT ?= datasets/Synthetic3D
DEMO_CATEGORY ?= disc

.PHONY: demo test lint setup setup-dev system-deps clean

system-deps:  ## open3d needs the system library libusb-1.0
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
		echo "Installing libusb-1.0 (needed by open3d)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libusb-1.0-0; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@ $(VENV)/.installed

setup: system-deps $(VENV)/.installed
setup-dev: system-deps $(VENV)/.installed-dev

demo: setup
	$(BIN)/anomalib-cmdr synth $(DEMO_ROOT) --categories $(DEMO_CATEGORY) --preview results/demo_samples.png
	$(BIN)/anomalib train -c configs/model/cmdr_offline.yaml --data configs/data/synthetic3d.yaml \
		--data.root $(DEMO_ROOT) --data.category $(DEMO_CATEGORY) --default_root_dir results
	@echo "Visualizations: results/CMDR/Synthetic3D/$(DEMO_CATEGORY)/latest/images"
	@echo "Sample preview: results/demo_samples.png"

lint: setup-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

test: lint
	$(BIN)/python -m pytest -q --durations=10

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
