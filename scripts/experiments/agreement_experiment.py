"""Which cells learn agreement? Equal budgets on the default corpus, accuracy by attractors.

Trains every cell with the same config (``configs/demo.toml`` unless ``--config``), the
same seed, data order and number of steps, then scores the default agreement suite
(``data/default/agreement_suite.jsonl``) with each run's best checkpoint. Prints, per
cell, test perplexity and sentence-rule accuracy for number and gender agreement by the
number of attractors and by subject-to-target distance, writes the figures as JSON and
draws them in a PNG (needs matplotlib: ``pip install -e .[plot]``).

    python -m scripts.experiments.agreement_experiment     # lstm gru rnn-tanh + variants
    python -m scripts.experiments.agreement_experiment --cells lstm rnn-tanh --max-steps 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from lstmlm.config import CELLS, load_toml
from lstmlm.errors import LstmlmError
from lstmlm.runs import load as runs
from lstmlm.scoring.accuracy import accuracy_by
from lstmlm.scoring.pairs import read_suite, resolve_suite, score_pairs
from lstmlm.training.launch import plan_run, start_training
from scripts.common import ROOT

DEFAULT_CELLS = ["lstm", "gru", "rnn-tanh", "lstm-eq", "peephole", "coupled", "gru-eq", "depth-gated"]
DISTANCE_BINS = ((0, 2), (3, 5), (6, 9), (10, 10_000))  # words between subject and target, inclusive


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cells", nargs="+", default=DEFAULT_CELLS, choices=CELLS, metavar="CELL")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.toml")
    p.add_argument("--max-steps", type=int, default=None, help="steps per cell (default: the config's)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the config's)")
    p.add_argument("--suite", default="default", help="'default' or a BLiMP-style JSONL file")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "agreement_experiment")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "agreement_experiment.png")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    return p.parse_args()


def distance_bin(distance: int) -> str:
    for low, high in DISTANCE_BINS:
        if low <= distance <= high:
            return f"{low}-{high}" if high < 10_000 else f"{low}+"
    return "?"


def train_cell(cell: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one cell into ``args.out / cell``; returns its test perplexity and timing."""
    flags: dict[str, dict[str, Any]] = {"model": {"cell": cell}, "train": {}}
    if args.max_steps is not None:
        flags["train"]["max_steps"] = args.max_steps
    if args.seed is not None:
        flags["train"]["seed"] = args.seed
    out = args.out / cell
    config = plan_run(out, load_toml(args.config), flags, resume=False, overwrite=True)
    start = time.monotonic()
    outcome = start_training(out, config, resume=False, overwrite=True)
    return {
        "cell": cell,
        "steps": outcome.state.step,
        "seconds": time.monotonic() - start,
        "test_ppl": outcome.test.perplexity if outcome.test else None,
    }


def score_cell(cell: str, args: argparse.Namespace, pairs: list) -> dict[str, Any]:
    """Sentence-rule accuracy of ``cell``'s best checkpoint by agreement type x attractors/distance."""
    run = runs.load_run(args.out / cell, best=True)
    scores = score_pairs(run.model, run.tokenizer, pairs)
    for score in scores:
        score.pair.fields["distance_bin"] = distance_bin(int(score.pair.fields.get("distance", 0)))
    return {
        by: [a.to_dict() for a in accuracy_by(scores, ["agreement", by])]
        for by in ("attractors", "distance_bin")
    }


def print_table(results: list[dict[str, Any]], by: str) -> None:
    columns = sorted(
        {(row["agreement"], row[by]) for r in results for row in r[by]},
        key=lambda c: (c[0], str(c[1]).zfill(6)),
    )
    head = " ".join(f"{a[:3]}:{v}".rjust(9) for a, v in columns)
    print(f"\naccuracy (sentence rule) by agreement type and {by}")
    print(f"{'cell':<12} {'test ppl':>8} {head}")
    for r in results:
        cells = {(row["agreement"], row[by]): row["sentence_accuracy"] for row in r[by]}
        values = " ".join(f"{100 * cells[c]:8.1f}%" if c in cells else " " * 9 for c in columns)
        ppl = f"{r['test_ppl']:8.2f}" if r["test_ppl"] else " " * 8
        print(f"{r['cell']:<12} {ppl} {values}")


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e .[plot])", file=sys.stderr)
        return
    kinds = sorted({row["agreement"] for r in results for row in r["attractors"]})
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.8), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for r in results:
            rows = [row for row in r["attractors"] if row["agreement"] == kind]
            ax.plot(
                [row["attractors"] for row in rows],
                [100 * row["sentence_accuracy"] for row in rows],
                marker="o",
                label=r["cell"],
            )
        ax.axhline(50, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{kind} agreement")
        ax.set_xlabel("attractors")
        ax.set_xticks(sorted({row["attractors"] for r in results for row in r["attractors"]}))
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        pairs = read_suite(resolve_suite(args.suite))
        results = []
        for cell in args.cells:
            print(f"training {cell} ...", flush=True)
            result = train_cell(cell, args)
            result.update(score_cell(cell, args, pairs))
            print(
                f"  {result['steps']} steps in {result['seconds']:.0f} s, test ppl {result['test_ppl']:.2f}",
                flush=True,
            )
            results.append(result)
    except LstmlmError as e:
        sys.exit(f"agreement_experiment: {e}")
    print(f"\n{len(pairs)} pairs, {torch.get_num_threads()} thread(s), config {args.config.name}")
    print_table(results, "attractors")
    print_table(results, "distance_bin")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    plot(results, args.plot)


if __name__ == "__main__":
    main()
