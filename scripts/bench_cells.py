"""Training and inference speed of every cell, relative to ``nn.LSTM`` of the same size.

Times a full ``LanguageModel`` (embedding, recurrent stack, dropout, untied 10k decoder):
a training step is forward + cross-entropy + backward + gradient clipping + an SGD update,
an inference step is a forward pass in ``torch.inference_mode``. Cells take turns step
by step, so a busy machine slows them alike; the table shows the median (or ``--stat
min``) step time as tokens/s and its ratio to ``lstm``.

``--compare`` times the custom cells' ways of running instead, each against the first
one named (the measurements behind the design of ``lstmlm/model/scan.py``):

    torchscript  the fast path as shipped: scan.py, its step loops compiled by TorchScript
    eager        the same, its step loops run as plain PyTorch (no torch.jit.script)
    autograd     no fast path: the cell's readable ``step`` per time step, autograd's backward

    python scripts/bench_cells.py                      # 2x650, B=20, T=35, vocab 10k
    python scripts/bench_cells.py --cells lstm lstm-eq --steps 30 --threads 2
    python scripts/bench_cells.py --cells lstm-eq gru-eq --compare torchscript eager autograd
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable, Hashable

import torch
import torch.nn.functional as F

from lstmlm.config import CELLS, CUSTOM_CELLS, ModelConfig
from lstmlm.model.cells import RecurrentCell
from lstmlm.model.lm import LanguageModel, detach_state
from lstmlm.model.scan import EAGER_LOOPS, torchscript_loops, using_step_loops

VARIANTS = ("torchscript", "eager", "autograd")


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
    p.add_argument(
        "--compare",
        nargs="+",
        choices=VARIANTS,
        metavar="VARIANT",
        help="time the custom cells run these ways (see above), ratios against the first",
    )
    return p.parse_args()


class Runner:
    """One model with its own data and carried state, stepping on demand."""

    def __init__(self, cell: str, args: argparse.Namespace, variant: str = "torchscript") -> None:
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
        self.loops = EAGER_LOOPS if variant == "eager" else torchscript_loops()
        if variant == "autograd":
            for layer in self.model.rnn.cells:  # the base class's scan: ``step`` by ``step``
                layer.scan = types.MethodType(RecurrentCell.scan, layer)

    def train_step(self) -> None:
        with using_step_loops(self.loops):
            self._train_step()

    def infer_step(self) -> None:
        with using_step_loops(self.loops):
            self._infer_step()

    def _train_step(self) -> None:
        self.model.train()
        inputs, targets = self.tokens[:-1], self.tokens[1:]
        logits, state = self.model(inputs, detach_state(self.state))
        loss = F.cross_entropy(logits.view(-1, self.vocab), targets.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.25)
        self.opt.step()
        self.state = detach_state(state)

    def _infer_step(self) -> None:
        self.model.eval()
        with torch.inference_mode():
            self.model(self.tokens[:-1], self.state)


MODES: dict[str, Callable[[Runner], None]] = {"train": Runner.train_step, "infer": Runner.infer_step}


def time_steps(runners: dict[Hashable, Runner], args: argparse.Namespace) -> dict[tuple, float]:
    """(runner key, mode) -> the summary step time, the runners taking turns step by step."""
    for _ in range(args.warmup):
        for runner in runners.values():
            for step in MODES.values():
                step(runner)
    times: dict[tuple, list[float]] = {(key, mode): [] for key in runners for mode in MODES}
    for _ in range(args.steps):
        for key, runner in runners.items():
            for mode, step in MODES.items():
                start = time.perf_counter()
                step(runner)
                times[key, mode].append(time.perf_counter() - start)
    summary = statistics.median if args.stat == "median" else min
    return {key: summary(v) for key, v in times.items()}


def headline(args: argparse.Namespace, ratio: str) -> str:
    return (
        f"LanguageModel {args.nlayers}x{args.nhid}, vocab {args.vocab}, untied, "
        f"B={args.batch_size}, T={args.bptt}, {torch.get_num_threads()} thread(s), "
        f"{args.stat} of {args.steps} steps; ratio = {ratio}"
    )


def compare_cells(args: argparse.Namespace) -> None:
    """The ``--compare`` table: per custom cell and mode, tokens/s of every variant."""
    cells = [cell for cell in args.cells if cell in CUSTOM_CELLS]
    if not cells:
        raise SystemExit("--compare times custom cells: name some with --cells")
    variants = list(dict.fromkeys(args.compare))
    if "torchscript" in variants and torchscript_loops() is EAGER_LOOPS:
        print("note: this torch cannot script the step loops; 'torchscript' runs them eager")
    runners: dict[Hashable, Runner] = {}
    for cell in cells:
        for variant in variants:
            torch.manual_seed(args.seed)  # the same weights and data for every variant
            runners[cell, variant] = Runner(cell, args, variant)
    med = time_steps(runners, args)
    tokens = args.bptt * args.batch_size
    base = variants[0]
    print(headline(args, f"{base} time / variant time"))
    header = f"{'cell':<12} {'mode':<6}" + "".join(
        f" {v + ' tok/s':>17}" + ("" if v == base else f" {'ratio':>6}") for v in variants
    )
    print(header)
    print("-" * len(header))
    ratios: dict[tuple[str, str], list[float]] = {(v, m): [] for v in variants[1:] for m in MODES}
    for cell in cells:
        for mode in MODES:
            row = f"{cell:<12} {mode:<6}"
            for variant in variants:
                t = med[(cell, variant), mode]
                row += f" {tokens / t:>17,.0f}"
                if variant != base:
                    ratio = med[(cell, base), mode] / t
                    ratios[variant, mode].append(ratio)
                    row += f" {ratio:>5.2f}x"
            print(row)
    for (variant, mode), values in ratios.items():
        print(
            f"{variant} vs {base}, {mode}: ratio min {min(values):.3f}x, "
            f"median {statistics.median(values):.3f}x over {len(values)} cell(s)"
        )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.compare:
        compare_cells(args)
        return
    cells = list(dict.fromkeys(["lstm", *args.cells]))  # the reference always runs
    runners: dict[Hashable, Runner] = {cell: Runner(cell, args) for cell in cells}
    med = time_steps(runners, args)
    tokens = args.bptt * args.batch_size
    print(headline(args, "lstm time / cell time"))
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
