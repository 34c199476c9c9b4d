"""Train every cell for the same CPU time on the same text and compare test perplexity.

Each cell gets a fresh small ``LanguageModel`` (same size, seed, data order, optimizer and
learning rate) and trains with truncated BPTT until its budget of process CPU time (all
threads, so a busy machine does not shortchange a cell) runs out; then the whole eval
file is scored. Self-contained on purpose: a plain whitespace word vocabulary
built from the training file (one ``<eos>`` per line, unknown eval words -> ``<unk>``).

A variant is a cell, optionally with ``+mos`` (the mixture of softmaxes, ``--mos-experts``).
``--same-params`` gives each variant the hidden size (= embedding size, tied) whose total
parameter count is closest to ``lstm``'s at ``--nhid``, so the table compares the cells
at equal parameters and equal CPU time at once.

    python -m scripts.experiments.cells_experiment --minutes 1
    python -m scripts.experiments.cells_experiment --cells lstm lstm-eq coupled --nlayers 1
    python -m scripts.experiments.cells_experiment --corpus wikitext --same-params --threads 1 \
        --cells lstm lstm+mos mogrifier mogrifier+mos slstm mlstm --mogrify-rank 32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from lstmlm.config import CELLS, DEFAULT_HEADS, DEFAULT_MOGRIFY_ROUNDS, XLSTM_CELLS, ModelConfig
from lstmlm.data.tokens import batchify
from lstmlm.evaluation.perplexity import evaluate_loss, perplexity
from lstmlm.model.lm import LanguageModel, detach_state
from scripts.common import CORPORA, SHARED_DATA

VARIANTS = [*CELLS, *(f"{cell}+mos" for cell in CELLS)]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=2.0, help="training CPU-minutes per cell")
    p.add_argument("--corpus", choices=sorted(CORPORA), default="ptb", help="the shared corpus (default ptb)")
    p.add_argument("--train", type=Path, help="train on this file instead (default: the corpus's)")
    p.add_argument("--eval", type=Path, help="score this file instead (default: the corpus's)")
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=VARIANTS, metavar="CELL[+mos]")
    p.add_argument("--nhid", type=int, default=256, help="hidden size (= embedding size, tied)")
    p.add_argument("--same-params", action="store_true", help="size each variant to lstm's parameters")
    p.add_argument("--mogrify-rounds", type=int, default=DEFAULT_MOGRIFY_ROUNDS)
    p.add_argument("--mogrify-rank", type=int, help="default: full rank")
    p.add_argument("--mos-experts", type=int, default=5)
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate, all cells")
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--seed", type=int, default=1111)
    args = p.parse_args()
    folder, train_file, eval_file = CORPORA[args.corpus]
    args.train = args.train or SHARED_DATA / folder / train_file
    args.eval = args.eval or SHARED_DATA / folder / eval_file
    return args


def read_words(path: Path) -> list[str]:
    return [w for line in path.read_text(encoding="utf-8").splitlines() for w in [*line.split(), "<eos>"]]


def train_for(model: LanguageModel, data: torch.Tensor, args: argparse.Namespace) -> tuple[int, float, float]:
    """Train until the CPU budget is spent; returns (steps, CPU seconds, last training loss)."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    budget = args.minutes * 60.0
    steps, loss_value, start = 0, float("nan"), time.process_time()
    model.train()
    while True:
        state = model.init_state(args.batch_size)
        for i in range(0, data.size(0) - 1, args.bptt):
            if time.process_time() - start >= budget:
                return steps, time.process_time() - start, loss_value
            inputs, targets = data[i : i + args.bptt], data[i + 1 : i + 1 + args.bptt]
            inputs = inputs[: len(targets)]
            token_loss, state = model(inputs, detach_state(state), targets=targets)
            loss = token_loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            steps, loss_value = steps + 1, loss.item()


def main() -> None:
    args = parse_args()
    missing = [str(p) for p in (args.train, args.eval) if not p.is_file()]
    if missing:
        sys.exit(f"cells_experiment: data file(s) not found: {', '.join(missing)} (use --train/--eval)")
    if args.threads:
        torch.set_num_threads(args.threads)

    train_words = read_words(args.train)
    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<unk>", *train_words]))}
    unk = vocab["<unk>"]
    train = batchify(torch.tensor([vocab[w] for w in train_words]), args.batch_size)
    test = batchify(torch.tensor([vocab.get(w, unk) for w in read_words(args.eval)]), 10, split_name="eval")
    print(
        f"train {args.train.name}: {len(train_words):,} tokens, vocab {len(vocab):,}; "
        f"eval {args.eval.name}; {args.nlayers}x{args.nhid} tied, dropout {args.dropout}, "
        f"AdamW lr {args.lr}, B={args.batch_size}, T={args.bptt}, {args.minutes:g} CPU-min/cell, "
        f"{torch.get_num_threads()} thread(s)",
        flush=True,
    )
    columns = ("nhid", 5), ("params", 10), ("steps", 7), ("tok/CPU-s", 9), ("train loss", 10), ("test ppl", 9)
    header = f"{'cell':<14} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header), flush=True)
    for variant in args.cells:
        nhid = matched_nhid(variant, len(vocab), args) if args.same_params else args.nhid
        torch.manual_seed(args.seed)
        model = LanguageModel(variant_config(variant, nhid, len(vocab), args))
        steps, seconds, loss = train_for(model, train, args)
        ppl = perplexity(evaluate_loss(model, test, args.bptt))
        tok_s = steps * args.batch_size * args.bptt / seconds
        print(
            f"{variant:<14} {nhid:>5} {model.num_parameters():>10,} {steps:>7} {tok_s:>9,.0f} {loss:>10.3f} "
            f"{ppl:>9.1f}",
            flush=True,
        )


def variant_config(variant: str, nhid: int, ntoken: int, args: argparse.Namespace) -> ModelConfig:
    """``cell`` or ``cell+mos`` with ``nhid`` units (and embedding: tied)."""
    cell, _, softmax = variant.partition("+")
    extra: dict[str, int | str | None] = {}
    if cell == "mogrifier":
        extra.update(mogrify_rounds=args.mogrify_rounds, mogrify_rank=args.mogrify_rank)
    if softmax:
        extra.update(softmax="mos", mos_experts=args.mos_experts)
    return ModelConfig(
        cell=cell, ntoken=ntoken, emsize=nhid, nhid=nhid, nlayers=args.nlayers, dropout=args.dropout,
        tied=True, **extra,
    )  # fmt: skip


def matched_nhid(variant: str, ntoken: int, args: argparse.Namespace) -> int:
    """The hidden size (a multiple of the heads for xLSTM) whose parameter count is closest to
    ``lstm``'s at ``--nhid``."""
    unit = DEFAULT_HEADS if variant.partition("+")[0] in XLSTM_CELLS else 1

    def params(v: str, n: int) -> int:
        with torch.device("meta"):
            return LanguageModel(variant_config(v, n, ntoken, args)).num_parameters()

    target = params("lstm", args.nhid)
    low, high = 1, max(2, 4 * args.nhid // unit)
    while low < high:  # the first k whose count reaches the target
        mid = (low + high) // 2
        low, high = (mid + 1, high) if params(variant, mid * unit) < target else (low, mid)
    best = min((k for k in (low - 1, low) if k >= 1), key=lambda k: abs(params(variant, k * unit) - target))
    return best * unit


if __name__ == "__main__":
    main()
