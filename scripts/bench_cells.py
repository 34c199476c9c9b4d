"""Training and inference speed of every cell, relative to ``nn.LSTM`` of the same size.

Times a full ``LanguageModel`` (embedding, recurrent stack, dropout, untied 10k decoder):
a training step is forward + cross-entropy + backward + gradient clipping + an SGD update,
an inference step is a forward pass in ``torch.inference_mode``. Cells take turns step
by step, so a busy machine slows them alike; the table shows the median (or ``--stat
min``) step time as tokens/s and its ratio to ``lstm``.

    python scripts/bench_cells.py                      # 2x650, B=20, T=35, vocab 10k
    python scripts/bench_cells.py --cells lstm lstm-eq --steps 30 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lstmlm.config import CELLS, ModelConfig
from lstmlm.model.lm import LanguageModel, detach_state


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS, metavar="CELL")
    p.add_argument("--steps", type=int, default=10, help="timed steps per cell and mode")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per cell first")
    p.add_argument("--nhid", type=int, default=650, help="hidden size (= embedding size)")
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--vocab", type=int, default=10_000)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stat", choices=("median", "min"), default="median", help="summary of the step times")
    return p.parse_args()


class Runner:
    """One model with its own data and carried state, stepping on demand."""

    def __init__(self, cell: str, args: argparse.Namespace) -> None:
        cfg = ModelConfig(
            cell=cell,
            ntoken=args.vocab,
            emsize=args.nhid,
            nhid=args.nhid,
            nlayers=args.nlayers,
            dropout=args.dropout,
            tied=False,
        )
        self.model = LanguageModel(cfg)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1.0)
        self.tokens = torch.randint(args.vocab, (args.bptt + 1, args.batch_size))
        self.state = self.model.init_state(args.batch_size)
        self.vocab = args.vocab

    def train_step(self) -> None:
        self.model.train()
        inputs, targets = self.tokens[:-1], self.tokens[1:]
        logits, state = self.model(inputs, detach_state(self.state))
        loss = F.cross_entropy(logits.view(-1, self.vocab), targets.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.25)
        self.opt.step()
        self.state = detach_state(state)

    def infer_step(self) -> None:
        self.model.eval()
        with torch.inference_mode():
            self.model(self.tokens[:-1], self.state)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cells = list(dict.fromkeys(["lstm", *args.cells]))  # the reference always runs
    runners = {cell: Runner(cell, args) for cell in cells}
    modes = {"train": Runner.train_step, "infer": Runner.infer_step}
    times: dict[tuple[str, str], list[float]] = {(c, m): [] for c in cells for m in modes}
    for _ in range(args.warmup):
        for runner in runners.values():
            for step in modes.values():
                step(runner)
    for _ in range(args.steps):
        for cell, runner in runners.items():
            for mode, step in modes.items():
                start = time.perf_counter()
                step(runner)
                times[cell, mode].append(time.perf_counter() - start)

    tokens = args.bptt * args.batch_size
    summary = statistics.median if args.stat == "median" else min
    med = {key: summary(v) for key, v in times.items()}
    print(
        f"LanguageModel {args.nlayers}x{args.nhid}, vocab {args.vocab}, untied, "
        f"B={args.batch_size}, T={args.bptt}, {torch.get_num_threads()} thread(s), "
        f"{args.stat} of {args.steps} steps; ratio = lstm time / cell time"
    )
    header = (
        f"{'cell':<12} {'params':>11} {'train tok/s':>12} {'vs lstm':>8} {'infer tok/s':>12} {'vs lstm':>8}"
    )
    print(header)
    print("-" * len(header))
    for cell in cells:
        params = runners[cell].model.num_parameters()
        train, infer = med[cell, "train"], med[cell, "infer"]
        print(
            f"{cell:<12} {params:>11,} {tokens / train:>12,.0f} {med['lstm', 'train'] / train:>7.2f}x"
            f" {tokens / infer:>12,.0f} {med['lstm', 'infer'] / infer:>7.2f}x"
        )


if __name__ == "__main__":
    main()
