# lstmlm — `make demo` for a first look, `make test` for the test suite.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-export-stamp
DEMO_RUN ?= runs/demo

.PHONY: install demo test test-fast bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# Train on the embedded agreement corpus (~100 s on 2 cores), evaluate, sample, then show
# the seed's pronoun/verb agreement examples on the trained model.
demo: install
	$(BIN)/lstmlm train --out $(DEMO_RUN) --overwrite --config configs/demo.toml
	$(BIN)/lstmlm eval $(DEMO_RUN) --split test
	$(BIN)/lstmlm generate $(DEMO_RUN) --prompt "The keys to the cabinet" --max-tokens 30 --seed 1 --temperature 0.8
	$(BIN)/lstmlm agreement $(DEMO_RUN) --by agreement,attractors
	$(BIN)/lstmlm generate $(DEMO_RUN) --agreement

# The tests also install the export extra (onnx, onnxruntime), so that CI runs the export
# parity tests; without it those tests skip.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[dev,export]"
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python scripts/bench_train.py
	$(BIN)/python scripts/bench_cells.py
	$(BIN)/python scripts/bench_softmax.py
	$(BIN)/python scripts/bench_generate.py

lint: install
	$(BIN)/ruff check lstmlm scripts tests
	$(BIN)/ruff format --check lstmlm scripts tests

format: install
	$(BIN)/ruff check --fix lstmlm scripts tests
	$(BIN)/ruff format lstmlm scripts tests

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
