# The two commands a new user runs (see README.md):
#   make demo   set everything up and build the demo workspace
#   make test   lint, type-check and run the whole test suite
# Everything installs into .venv from the package registries; nothing else is assumed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint install system-packages clean bench bench-quick

$(BIN)/pigeonhole: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[train,dev]"
	touch $@

install: $(BIN)/pigeonhole

system-packages:
	bash scripts/system-packages.sh

demo: install system-packages
	$(BIN)/pigeonhole demo demo-workspace --serve

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: install system-packages lint
	$(BIN)/python -m pytest -q

# Speed, scale and accuracy figures against baselines (docs/performance.md).
bench: install system-packages
	$(BIN)/python -m benchmarks.run

bench-quick: install system-packages
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) demo-workspace demo-workspace-images
