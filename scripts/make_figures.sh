#!/usr/bin/env bash
# The "Looking inside" figures (docs/looking_inside.md), from the run `make demo` trains (or the one given).
#   bash scripts/make_figures.sh [RUN_DIR]
set -euo pipefail
run=${1:-runs/demo}
lstmlm=${LSTMLM:-.venv/bin/lstmlm}
mkdir -p docs
"$lstmlm" inspect "$run" --text "The keys to the old cabinet are on the table ." --plot docs/inspect_heatmap.png
"$lstmlm" inspect "$run" --find-units --top 3 --plot docs/agreement_units.png
"$lstmlm" plot "$run" --out docs/demo_training.png
