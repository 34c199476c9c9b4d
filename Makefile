# lstmlm — `make demo` for a first look, `make test` for the test suite.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-export-stamp
DEMO_RUN ?= runs/demo

.PHONY: install demo test test-fast browser bench gpu-check figures lint typecheck format clean

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
	@echo "Look inside in a browser: $(BIN)/lstmlm view $(DEMO_RUN)  (docs/view.md)"

# The tests also install the export extra (onnx, onnxruntime), so that CI runs the export
# parity tests; without it those tests skip.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[dev,export]"
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

# The browser tests of `lstmlm view` (tests/view/test_browser.py) drive Debian's Chromium through
# its ChromeDriver; without them they skip with one line (CI installs them: .ci/run). This target
# installs both on Debian or Ubuntu (root or sudo); nothing is downloaded at test time.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium and chromedriver are installed"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Every benchmark in scripts/bench (scripts/README.md: what each measures, its README table);
# each prints its figures as ratios against the peer or a bare baseline timed in the same
# run. About half an hour on 2 cores. The peer and the corpora are ../shared/peers and
# ../shared/data: bench_generate and bench_quality print "skipped" without them.
bench: install
	$(BIN)/pip install -q -e ".[bench]"  # nanoGPT's prepare.py and sample.py import requests, tiktoken
	$(BIN)/python -m scripts.bench.bench_train
	$(BIN)/python -m scripts.bench.bench_cells
	$(BIN)/python -m scripts.bench.bench_softmax
	$(BIN)/python -m scripts.bench.bench_startup
	$(BIN)/python -m scripts.bench.bench_data
	$(BIN)/python -m scripts.bench.bench_score
	$(BIN)/python -m scripts.bench.bench_view
	$(BIN)/python -m scripts.bench.bench_generate
	$(BIN)/python -m scripts.bench.busy_machine --threads default
	@if [ -d ../shared/peers/pytorch-examples-word_language_model ]; then \
		echo "$(BIN)/python -m scripts.bench.bench_peer_step"; \
		$(BIN)/python -m scripts.bench.bench_peer_step; \
	else \
		echo "bench_peer_step skipped: needs the peer, ../shared/peers/pytorch-examples-word_language_model"; \
	fi
	@echo "bench_quality: --minutes 2 only (~7 min); its default, 2 and 10 minutes, takes ~40 min"
	$(BIN)/python -m scripts.bench.bench_quality --minutes 2
	@echo "bench_nanogpt: the README-recipe budget only (~5 min); its default adds 10 minutes (~20 min in all)"
	$(BIN)/python -m scripts.bench.bench_nanogpt --budgets wall

# The GPU check (docs/gpu.md): every CUDA path of lstmlm on one GPU in at most ~8 minutes,
# one table (part, what, figure, goal, verdict, seconds, peak MiB); exit 1 if a row failed.
# It needs a CUDA build of torch in the venv (make install TORCH=... beforehand: this target
# installs nothing, a lent GPU may have no network) and ../shared/data for its real run.
# Its CPU smoke mode (--smoke, about a minute) is part of make test. Options through
# GPU_CHECK_ARGS, e.g. GPU_CHECK_ARGS="--json gpu.json --tracebacks tracebacks.txt".
GPU_PYTHON ?= $(BIN)/python
gpu-check:
	$(GPU_PYTHON) -m scripts.gpu.check $(GPU_CHECK_ARGS)

# The figures in docs/: the three of "Looking inside" and the two of lstmlm view from the demo run (trained first if
# $(DEMO_RUN) has none, ~2 min), the agreement experiment's (8 cells, each the demo's
# training: ~20 min) and the long-range experiment's as its README table ran it (21 runs
# of 3,000 steps: not measured, tens of minutes). Needs matplotlib (the dev extra has it).
figures: install
	test -f $(DEMO_RUN)/model.safetensors || $(BIN)/lstmlm train --out $(DEMO_RUN) --overwrite --config configs/demo.toml
	LSTMLM=$(BIN)/lstmlm bash scripts/make_figures.sh $(DEMO_RUN)
	$(BIN)/python -m scripts.view_screenshot $(DEMO_RUN)  # docs/view.png, docs/view_pairs.png (make browser first)
	$(BIN)/python -m scripts.experiments.agreement_experiment --plot docs/agreement_experiment.png
	$(BIN)/python -m scripts.experiments.long_range_experiment --cells lstm gru rnn-tanh peephole coupled \
		depth-gated mingru:2 --seeds 1 2 3 --steps 3000 --plot docs/long_range.png

lint: install
	$(BIN)/ruff check lstmlm scripts tests
	$(BIN)/ruff format --check lstmlm scripts tests

# mypy, configured in pyproject.toml ([tool.mypy]); it checks lstmlm/ against the installed
# packages' types, the export extra's onnx included, hence the tests' install.
typecheck: $(TEST_STAMP)
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix lstmlm scripts tests
	$(BIN)/ruff format lstmlm scripts tests

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
