"""Does the LSTM remember for long periods where a simple RNN forgets? Accuracy vs distance.

Each cell is trained with the same budget (``configs/demo.toml``'s model and optimiser,
``--steps`` steps, the same data and seeds) on the default agreement corpus plus
``--discourses`` long-range discourses (``lstmlm/data/grammar/discourse.py``: a referent,
1-28 sentences about things, then a pronoun agreeing with it), so the dependencies cross
BPTT windows and the state must carry them. Each run is then scored on ``--suite
long-range`` (pronoun pairs 6-268 tokens apart); the table pools every seed's pairs per
distance bin with a 95% Wilson interval, and a PNG plots accuracy against distance.

    python -m scripts.experiments.long_range_experiment       # lstm gru rnn-tanh, seeds 1-3
    python -m scripts.experiments.long_range_experiment --cells lstm rnn-tanh mingru:2 --steps 4000 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lstmlm.data.grammar.sentences import corpus_text, default_corpus
from lstmlm.scoring.accuracy import DISTANCE_BINS, distance_bin, wilson_interval
from lstmlm.scoring.pairs import differing_word, line_ids, score_pairs
from lstmlm.scoring.suites import load_suite
from scripts.common import LSTMLM, ROOT

BINS = [distance_bin(b) for b in DISTANCE_BINS]
Table = dict[str, tuple[float, float, float, int]]  # distance bin -> accuracy, low, high, pairs


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn-tanh"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--steps", type=int, default=3000, help="training steps per run (the budget)")
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--nlayers", type=int, default=1, help="layers, unless a cell says CELL:LAYERS")
    p.add_argument("--discourses", type=int, default=8000, help="long-range discourses added to train")
    p.add_argument("--work", type=Path, default=Path("runs/long_range"), help="corpus and run folders")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once (1 thread each)")
    p.add_argument("--plot", type=Path, default=None, help="PNG to write (default: WORK/long_range.png)")
    p.add_argument("--replot", action="store_true", help="only redraw the PNG from WORK/long_range.json")
    return p.parse_args()


def write_corpus(folder: Path, discourses: int) -> Path:
    """The default corpus (which has 1,000 long-range discourses) with ``discourses`` more in
    train and a twentieth of that in valid and test, spread evenly among the lines."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in default_corpus(extra_discourses=discourses).items():
        (folder / f"{split}.txt").write_text(corpus_text(lines), encoding="utf-8")
    return folder


def train(spec: str, seed: int, corpus: Path, args: argparse.Namespace) -> Path:
    """Train ``spec`` (``CELL`` or ``CELL:LAYERS``) with ``seed``; returns the run folder."""
    cell, _, layers = spec.partition(":")
    layers = layers or str(args.nlayers)
    out = args.work / f"{cell}-{layers}x-seed{seed}"
    command = [*LSTMLM, "train", "--config", str(ROOT / "configs" / "demo.toml")]
    command += ["--data", str(corpus), "--out", str(out), "--overwrite", "--cell", cell, "--seed", str(seed)]
    command += ["--max-steps", str(args.steps), "--bptt", str(args.bptt), "--nlayers", layers]
    command += ["--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = out.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        subprocess.run(command, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    return out


def score(run_dir: Path) -> tuple[dict[str, list[bool]], dict[str, list[float]]]:
    """One run on the long-range suite, per distance bin: sentence-rule decisions, and the
    pronoun margin's sensitivity to the antecedent (see :func:`sensitivity`)."""
    from lstmlm.runs.load import load_run

    run = load_run(run_dir, device="cpu")
    pairs, _ = load_suite("long-range")
    decisions: dict[str, list[bool]] = {b: [] for b in BINS}
    for result in score_pairs(run.model, run.tokenizer, pairs):
        decisions[distance_bin(result.pair.fields["distance"])].append(result.sentence_correct)
    ratios: dict[str, list[float]] = {b: [] for b in BINS}
    for pair in pairs:
        ratios[distance_bin(pair.fields["distance"])].append(sensitivity(run.model, run.tokenizer, pair))
    return decisions, ratios


def sensitivity(model, tokenizer, pair) -> float:  # noqa: ANN001
    """‖∂m/∂e_antecedent‖ / ‖∂m/∂e_previous‖: how much the pronoun's margin m = log p(good) −
    log p(bad) depends on the antecedent's embedding, relative to the word just before it.

    Bengio et al. (1994): through a contracting recurrence this ratio shrinks exponentially
    with distance (vanishing gradients); the LSTM's cell state is built to keep it up.
    """
    import torch

    index = differing_word(pair.good, pair.bad)
    good, bad = pair.good.split()[index], pair.bad.split()[index]
    ids = line_ids(tokenizer, pair.good)
    assert len(ids) == len(pair.good.split()) + 2, "the probe needs one token per word"
    pronoun = index + 1  # line_ids puts <eos> first
    antecedent = pronoun - pair.fields["distance"] - 1
    model.eval()
    embedded = model.encoder(torch.tensor(ids[:pronoun]).unsqueeze(1)).detach().requires_grad_()
    out, _ = model.rnn(embedded, model.init_state(1))
    logp = torch.log_softmax(model.logits(out[-1, 0]).float(), dim=-1)
    margin = logp[tokenizer.encode(good)[0]] - logp[tokenizer.encode(bad)[0]]
    (grad,) = torch.autograd.grad(margin, embedded)
    return (grad[antecedent].norm() / grad[-1].norm().clamp_min(1e-30)).item()


def pooled(per_seed: list[dict[str, list[bool]]]) -> Table:
    """Per bin: accuracy, 95% interval and pair count over every seed's pairs."""
    table = {}
    for b in BINS:
        decisions = [d for run in per_seed for d in run[b]]
        if decisions:
            low, high = wilson_interval(sum(decisions), len(decisions))
            table[b] = (sum(decisions) / len(decisions), low, high, len(decisions))
    return table


def print_table(
    results: dict[str, dict[str, tuple[float, float, float, int]]], args: argparse.Namespace
) -> None:
    seeds = len(args.seeds)
    print(f"\nlong-range pronoun agreement, sentence rule, {seeds} seeds pooled, {args.steps} steps each")
    print(f"{'cell':12}" + "".join(f"{b + ' tokens':>22}" for b in BINS))
    for cell, table in results.items():
        cells = [f"{100 * a:5.1f}% [{100 * lo:.0f}-{100 * hi:.0f}] n={n}" if (a, lo, hi, n) else ""
                 for a, lo, hi, n in (table.get(b, (0, 0, 0, 0)) for b in BINS)]  # fmt: skip
        print(f"{cell:12}" + "".join(f"{c:>22}" for c in cells))


def median_ratios(per_seed: list[dict[str, list[float]]]) -> dict[str, float]:
    """Per bin: the median sensitivity ratio over every seed's pairs."""
    import statistics

    return {b: statistics.median(r for run in per_seed for r in run[b]) for b in BINS if per_seed[0][b]}


def print_ratios(ratios: dict[str, dict[str, float]]) -> None:
    print("\nmedian ‖∂margin/∂e_antecedent‖ / ‖∂margin/∂e_previous word‖ (seeds pooled)")
    print(f"{'cell':12}" + "".join(f"{b + ' tokens':>16}" for b in BINS))
    for cell, table in ratios.items():
        print(f"{cell:12}" + "".join(f"{table[b]:>16.2e}" if b in table else " " * 16 for b in BINS))


def plot(results: dict[str, Table], ratios: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, grad_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    for cell, table in results.items():
        bins = [b for b in BINS if b in table]
        x = list(range(len(bins)))
        accuracy = [table[b][0] for b in bins]
        errors = [  # clamped: at 100% the interval's end can round below the point
            [max(0.0, a - table[b][1]) for a, b in zip(accuracy, bins, strict=True)],
            [max(0.0, table[b][2] - a) for a, b in zip(accuracy, bins, strict=True)],
        ]
        ax.errorbar(x, accuracy, yerr=errors, marker="o", capsize=3, label=cell)
        grad_ax.plot(x, [ratios[cell][b] for b in bins], marker="o", label=cell)
        for axis in (ax, grad_ax):
            axis.set_xticks(x, bins)
            axis.set_xlabel("tokens between antecedent and pronoun")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("accuracy (95% interval)")
    ax.set_ylim(0.0, 1.02)
    ax.legend(loc="center", bbox_to_anchor=(0.5, 0.62), fontsize="small", ncol=4)
    grad_ax.set_yscale("log")
    grad_ax.set_ylabel("gradient to antecedent / to previous word")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    args = parse_args()
    if args.replot:
        summary = json.loads((args.work / "long_range.json").read_text())
        plot(summary["accuracy"], summary["sensitivity"], args.plot or args.work / "long_range.png")
        return
    corpus = write_corpus(args.work / "corpus", args.discourses)
    jobs = [(cell, seed) for cell in args.cells for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = dict(zip(jobs, pool.map(lambda job: train(*job, corpus, args), jobs), strict=True))
    scored = {job: score(run) for job, run in runs.items()}
    results = {cell: pooled([scored[cell, seed][0] for seed in args.seeds]) for cell in args.cells}
    ratios = {cell: median_ratios([scored[cell, seed][1] for seed in args.seeds]) for cell in args.cells}
    print_table(results, args)
    print_ratios(ratios)
    summary = {"accuracy": results, "sensitivity": ratios}
    (args.work / "long_range.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(results, ratios, args.plot or args.work / "long_range.png")


if __name__ == "__main__":
    main()
