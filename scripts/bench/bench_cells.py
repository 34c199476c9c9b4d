"""Training and inference speed of every cell, relative to ``nn.LSTM`` of the same size.

Times a full ``LanguageModel`` (embedding, recurrent stack, dropout, untied 10k decoder):
a training step is forward + cross-entropy + backward + gradient clipping + an SGD update,
an inference step is a forward pass in ``torch.inference_mode``. Cells take turns step
by step, so a busy machine slows them alike; the table shows the median (or ``--stat
min``) step time as tokens/s and its ratio to ``lstm``.

**Sizes.** By default (``--same-params``) every cell gets the hidden size whose recurrent
parameter count (``model.rnn``'s parameters) is closest to that of ``lstm`` at ``--nhid``,
a multiple of ``--heads`` for slstm/mlstm; the table shows the size and the count. The
embedding stays ``--emsize`` (default ``--nhid``) for every cell, so the decoder (untied,
``--vocab`` x hidden size) does not match: a cell given more units also pays for a larger
softmax layer, and the total ``params`` column differs. ``--same-nhid`` gives every cell
``--nhid`` units instead (slstm/mlstm: rounded to a multiple of ``--heads``).

``--compare`` times the custom cells' ways of running instead, each against the first
one named (the measurements behind the design of ``lstmlm/model/fast/scan.py``):

    torchscript  the fast path as shipped: scan.py, its step loops compiled by TorchScript
    eager        the same, its step loops run as plain PyTorch (no torch.jit.script)
    autograd     no fast path: ``CellBase.scan``, the cell's ``step`` per time step, autograd's backward

``--parallel-speedup`` times a training step of the cells with a parallel ``scan`` (mlstm:
chunkwise-parallel, minlstm/mingru: a log-space scan) against the same model running the
sequential loop over ``step`` (``CellBase.scan``), at every ``--bptts`` length, and prints
the speed-up, sequential time / parallel time. The sequential mLSTM keeps every step's
matrix memory (B x heads x d², d = 2H/heads) for the backward pass: at 2x200, B=20, T=560
that is over 20 GB and minutes a step, hence this mode's smaller defaults (``--nhid 100
--batch-size 10 --steps 3 --warmup 1``; a few minutes on 2 cores).

    python -m scripts.bench.bench_cells                # every cell at lstm 2x650's size, B=20, T=35
    python -m scripts.bench.bench_cells --same-nhid    # every cell 2x650 (xLSTM: 2x652)
    python -m scripts.bench.bench_cells --cells lstm slstm mlstm minlstm mingru --nhid 200 --steps 6 \\
        --threads 2
    python -m scripts.bench.bench_cells --cells lstm-eq gru-eq --compare torchscript eager autograd
    python -m scripts.bench.bench_cells --parallel-speedup --threads 2     # T = 35, 140, 560
    python -m scripts.bench.bench_cells --parallel-speedup --cells minlstm mingru --bptts 35 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable, Hashable, Sequence

import torch
import torch.nn.functional as F

from lstmlm.config import (
    CELLS,
    CUSTOM_CELLS,
    DEFAULT_HEADS,
    DEFAULT_MOGRIFY_ROUNDS,
    MIN_CELLS,
    XLSTM_CELLS,
    ModelConfig,
)
from lstmlm.model.cell_base import CellBase
from lstmlm.model.fast.scan import EAGER_LOOPS, torchscript_loops, using_step_loops
from lstmlm.model.lm import LanguageModel, detach_state
from lstmlm.model.recurrent import build_recurrent

VARIANTS = ("torchscript", "eager", "autograd")
PARALLEL_CELLS = ("mlstm", *MIN_CELLS)  # cells whose shipped ``scan`` is not a loop over time
SPEEDUP_VARIANTS = {"parallel": "torchscript", "sequential": "autograd"}  # label -> Runner variant
# defaults of the options that differ between the tables and --parallel-speedup
MODE_DEFAULTS = {
    "nhid": (650, 100),
    "batch_size": (20, 10),
    "steps": (10, 3),
    "warmup": (2, 1),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS, metavar="CELL")
    p.add_argument("--steps", type=int, help="timed steps per cell and mode (default 10; speed-up 3)")
    p.add_argument("--warmup", type=int, help="untimed steps per cell first (default 2; speed-up 1)")
    p.add_argument("--nhid", type=int, help="lstm's hidden size, the reference (default 650; speed-up 100)")
    p.add_argument("--emsize", type=int, help="embedding size of every cell (default: --nhid)")
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--heads", type=int, default=DEFAULT_HEADS, help="heads of slstm and mlstm")
    p.add_argument("--mogrify-rounds", type=int, default=DEFAULT_MOGRIFY_ROUNDS, help="rounds of mogrifier")
    p.add_argument("--mogrify-rank", type=int, help="rank of mogrifier's round matrices (default: full)")
    p.add_argument("--batch-size", type=int, help="default 20; speed-up 10")
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument(
        "--bptts", type=int, nargs="+", default=[35, 140, 560], help="--parallel-speedup's lengths"
    )
    p.add_argument("--vocab", type=int, default=10_000)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stat", choices=("median", "min"), default="median", help="summary of the step times")
    sizing = p.add_mutually_exclusive_group()
    sizing.add_argument(
        "--same-params",
        dest="same_params",
        action="store_true",
        default=True,
        help="hidden sizes matching lstm's recurrent parameter count (default)",
    )
    sizing.add_argument("--same-nhid", dest="same_params", action="store_false", help="--nhid units for all")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--compare",
        nargs="+",
        choices=VARIANTS,
        metavar="VARIANT",
        help="time the custom cells run these ways (see above), ratios against the first",
    )
    mode.add_argument(
        "--parallel-speedup",
        action="store_true",
        help="training step of the parallel cells, parallel scan vs sequential loop, over --bptts",
    )
    return resolve_defaults(p.parse_args())


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill in the options whose default depends on the mode."""
    for name, (table, speedup) in MODE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, speedup if args.parallel_speedup else table)
    if args.emsize is None:
        args.emsize = args.nhid
    return args


def model_config(cell: str, nhid: int, args: argparse.Namespace) -> ModelConfig:
    """The benchmarked model: ``cell`` with ``nhid`` units per layer."""
    extra: dict[str, int | None] = {"heads": args.heads} if cell in XLSTM_CELLS else {}  # others refuse it
    if cell == "mogrifier":
        extra.update(mogrify_rounds=args.mogrify_rounds, mogrify_rank=args.mogrify_rank)
    return ModelConfig(
        cell=cell,
        ntoken=args.vocab,
        emsize=args.emsize,
        nhid=nhid,
        nlayers=args.nlayers,
        dropout=args.dropout,
        tied=False,
        **extra,
    )


def recurrent_params(cell: str, nhid: int, args: argparse.Namespace) -> int:
    """Parameters of the recurrent stack alone, counted without allocating it."""
    with torch.device("meta"):
        rnn = build_recurrent(model_config(cell, nhid, args))
    return sum(p.numel() for p in rnn.parameters())


def size_unit(cell: str, args: argparse.Namespace) -> int:
    """Hidden sizes ``cell`` accepts are multiples of this."""
    return args.heads if cell in XLSTM_CELLS else 1


def matched_nhid(cell: str, args: argparse.Namespace) -> int:
    """The allowed hidden size whose recurrent parameter count is closest to lstm's at ``--nhid``."""
    unit, target = size_unit(cell, args), recurrent_params("lstm", args.nhid, args)
    counts: dict[int, int] = {}

    def params(k: int) -> int:  # the count grows with k: bisect for the first k reaching target
        if k not in counts:
            counts[k] = recurrent_params(cell, k * unit, args)
        return counts[k]

    hi = 1
    while params(hi) < target:
        hi *= 2
    lo = hi // 2  # 0, or a k below target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if params(mid) < target else (lo, mid)
    return unit * min((k for k in (lo, hi) if k > 0), key=lambda k: abs(params(k) - target))


def hidden_size(cell: str, args: argparse.Namespace) -> int:
    if args.same_params:
        return matched_nhid(cell, args)
    unit = size_unit(cell, args)
    return max(unit, round(args.nhid / unit) * unit)


class Runner:
    """One model with its own data and carried state, stepping on demand."""

    def __init__(
        self,
        cfg: ModelConfig,
        args: argparse.Namespace,
        variant: str = "torchscript",
        bptt: int | None = None,
    ) -> None:
        self.model = LanguageModel(cfg)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1.0)
        self.tokens = torch.randint(args.vocab, ((bptt or args.bptt) + 1, args.batch_size))
        self.state = self.model.init_state(args.batch_size)
        self.vocab = args.vocab
        self.loops = EAGER_LOOPS if variant == "eager" else torchscript_loops()
        if variant == "autograd":
            for layer in self.model.rnn.cells:  # the base class's scan: ``step`` by ``step``
                layer.scan = types.MethodType(CellBase.scan, layer)

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


def time_steps(
    runners: dict[Hashable, Runner], args: argparse.Namespace, modes: Sequence[str] = tuple(MODES)
) -> dict[tuple, float]:
    """(runner key, mode) -> the summary step time, the runners taking turns step by step."""
    for _ in range(args.warmup):
        for runner in runners.values():
            for mode in modes:
                MODES[mode](runner)
    times: dict[tuple, list[float]] = {(key, mode): [] for key in runners for mode in modes}
    for _ in range(args.steps):
        for key, runner in runners.items():
            for mode in modes:
                start = time.perf_counter()
                MODES[mode](runner)
                times[key, mode].append(time.perf_counter() - start)
    summary = statistics.median if args.stat == "median" else min
    return {key: summary(v) for key, v in times.items()}


def headline(args: argparse.Namespace, ratio: str, bptt: str = "") -> str:
    if args.same_params:
        sizes = f"hidden sizes matching lstm {args.nlayers}x{args.nhid}'s recurrent parameters"
    else:
        sizes = f"{args.nlayers}x{args.nhid} (xLSTM: a multiple of {args.heads})"
    return (
        f"LanguageModel, {sizes}, emsize {args.emsize}, vocab {args.vocab}, untied, "
        f"B={args.batch_size}, {bptt or f'T={args.bptt}'}, {torch.get_num_threads()} thread(s), "
        f"{args.stat} of {args.steps} steps; {ratio}"
    )


def print_header(header: str) -> None:
    print(header)
    print("-" * len(header))


def compare_cells(args: argparse.Namespace) -> None:
    """The ``--compare`` table: per custom cell and mode, tokens/s of every variant."""
    cells = [cell for cell in args.cells if cell in CUSTOM_CELLS]
    if not cells:
        raise SystemExit("--compare times custom cells: name some with --cells")
    variants = list(dict.fromkeys(args.compare))
    if "torchscript" in variants and torchscript_loops() is EAGER_LOOPS:
        print("note: this torch cannot script the step loops; 'torchscript' runs them eager")
    sizes = {cell: hidden_size(cell, args) for cell in cells}
    runners: dict[Hashable, Runner] = {}
    for cell in cells:
        for variant in variants:
            torch.manual_seed(args.seed)  # the same weights and data for every variant
            runners[cell, variant] = Runner(model_config(cell, sizes[cell], args), args, variant)
    med = time_steps(runners, args)
    tokens = args.bptt * args.batch_size
    base = variants[0]
    print(headline(args, f"ratio = {base} time / variant time"))
    print_header(
        f"{'cell':<12} {'nhid':>5} {'mode':<6}"
        + "".join(f" {v + ' tok/s':>17}" + ("" if v == base else f" {'ratio':>6}") for v in variants)
    )
    ratios: dict[tuple[str, str], list[float]] = {(v, m): [] for v in variants[1:] for m in MODES}
    for cell in cells:
        for mode in MODES:
            row = f"{cell:<12} {sizes[cell]:>5} {mode:<6}"
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


def speedup_rows(cell: str, nhid: int, args: argparse.Namespace) -> dict[int, tuple[float, float]]:
    """bptt -> (parallel, sequential) training-step time of ``cell``, the two taking turns."""
    result = {}
    for bptt in args.bptts:
        runners: dict[Hashable, Runner] = {}
        for label, variant in SPEEDUP_VARIANTS.items():
            torch.manual_seed(args.seed)  # the same weights and data for both
            runners[label] = Runner(model_config(cell, nhid, args), args, variant, bptt)
        med = time_steps(runners, args, modes=("train",))
        result[bptt] = med["parallel", "train"], med["sequential", "train"]
    return result


def parallel_speedup(args: argparse.Namespace) -> None:
    """The ``--parallel-speedup`` table: per parallel cell and bptt, the training step's speed-up."""
    cells = [cell for cell in args.cells if cell in PARALLEL_CELLS]
    if not cells:
        raise SystemExit(f"--parallel-speedup times {', '.join(PARALLEL_CELLS)}: name some with --cells")
    bptts = "T=" + "/".join(map(str, args.bptts))
    print(headline(args, "speed-up = sequential time / parallel time (training step)", bptts))
    print_header(
        f"{'cell':<8} {'nhid':>5} {'rnn params':>11} {'T':>5} "
        f"{'parallel tok/s':>15} {'sequential tok/s':>17} {'speed-up':>9}"
    )
    for cell in cells:
        nhid = hidden_size(cell, args)
        params = recurrent_params(cell, nhid, args)
        for bptt, (parallel, sequential) in speedup_rows(cell, nhid, args).items():
            tokens = bptt * args.batch_size
            print(
                f"{cell:<8} {nhid:>5} {params:>11,} {bptt:>5} {tokens / parallel:>15,.0f}"
                f" {tokens / sequential:>17,.0f} {sequential / parallel:>8.2f}x",
                flush=True,
            )


def cell_table(args: argparse.Namespace) -> None:
    """The default table: per cell, its size and tokens/s against lstm's."""
    cells = list(dict.fromkeys(["lstm", *args.cells]))  # the reference always runs
    sizes = {cell: hidden_size(cell, args) for cell in cells}
    runners: dict[Hashable, Runner] = {
        cell: Runner(model_config(cell, sizes[cell], args), args) for cell in cells
    }
    med = time_steps(runners, args)
    tokens = args.bptt * args.batch_size
    print(headline(args, "vs lstm = lstm time / cell time"))
    print_header(
        f"{'cell':<12} {'nhid':>5} {'rnn params':>11} {'params':>11} "
        f"{'train tok/s':>12} {'vs lstm':>8} {'infer tok/s':>12} {'vs lstm':>8}"
    )
    for cell in cells:
        model = runners[cell].model
        rnn_params = sum(p.numel() for p in model.rnn.parameters())
        train, infer = med[cell, "train"], med[cell, "infer"]
        print(
            f"{cell:<12} {sizes[cell]:>5} {rnn_params:>11,} {model.num_parameters():>11,}"
            f" {tokens / train:>12,.0f} {med['lstm', 'train'] / train:>7.2f}x"
            f" {tokens / infer:>12,.0f} {med['lstm', 'infer'] / infer:>7.2f}x"
        )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.parallel_speedup:
        parallel_speedup(args)
    elif args.compare:
        compare_cells(args)
    else:
        cell_table(args)


if __name__ == "__main__":
    main()
