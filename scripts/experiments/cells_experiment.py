"""Train every cell for the same CPU time on the same text and compare test perplexity.

Each cell gets a fresh small ``LanguageModel`` (same size, seed, data order, optimizer and
learning rate) and trains with truncated BPTT until its budget of process CPU time (all
threads, so a busy machine does not shortchange a cell) runs out; then the whole eval
file is scored. Self-contained on purpose: a plain whitespace word vocabulary
built from the training file (one ``<eos>`` per line, unknown eval words -> ``<unk>``).

    python -m scripts.experiments.cells_experiment --minutes 1
    python -m scripts.experiments.cells_experiment --cells lstm lstm-eq coupled --nlayers 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lstmlm.config import CELLS, ModelConfig
from lstmlm.data.tokens import batchify
from lstmlm.evaluation.perplexity import evaluate_loss, perplexity
from lstmlm.model.lm import LanguageModel, detach_state
from scripts.common import SHARED_DATA

DATA = SHARED_DATA / "ptb"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=2.0, help="training CPU-minutes per cell")
    p.add_argument("--train", type=Path, default=DATA / "ptb.valid.txt")
    p.add_argument("--eval", type=Path, default=DATA / "ptb.test.txt")
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS, metavar="CELL")
    p.add_argument("--nhid", type=int, default=256, help="hidden size (= embedding size, tied)")
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate, all cells")
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--seed", type=int, default=1111)
    return p.parse_args()


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
            logits, state = model(inputs, detach_state(state))
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
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
    header = f"{'cell':<12} {'params':>10} {'steps':>7} {'tok/CPU-s':>9} {'train loss':>10} {'test ppl':>9}"
    print(header)
    print("-" * len(header), flush=True)
    for cell in args.cells:
        torch.manual_seed(args.seed)
        cfg = ModelConfig(
            cell=cell,
            ntoken=len(vocab),
            emsize=args.nhid,
            nhid=args.nhid,
            nlayers=args.nlayers,
            dropout=args.dropout,
            tied=True,
        )
        model = LanguageModel(cfg)
        steps, seconds, loss = train_for(model, train, args)
        ppl = perplexity(evaluate_loss(model, test, args.bptt))
        tok_s = steps * args.batch_size * args.bptt / seconds
        print(
            f"{cell:<12} {model.num_parameters():>10,} {steps:>7} {tok_s:>9,.0f} {loss:>10.3f} {ppl:>9.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
