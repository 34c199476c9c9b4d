"""Synthetic recall: remember the first token of a sequence across N distractors.

Each sequence is one key symbol (of --keys), then N distractor symbols (of --distractors,
drawn uniformly), then a query marker; the model must output the key at the query
position. Only that position is scored (cross-entropy over the whole vocabulary; accuracy
= argmax == key; chance = 1/keys). Every cell gets a hidden size whose recurrent parameter
count is closest to --budget, and every cell sees the same seeds and the same data (one
training stream and one fixed held-out batch per (seed, distance)). A run stops early once
the held-out accuracy, checked every --eval-every steps, reaches --solved.

    python -m scripts.experiments.recall_task --distances 16 64 --steps 500
    python -m scripts.experiments.recall_task --cells lstm mlstm --distances 16 32 64 128 256 \\
        --json recall.json

Beck et al. 2024 ("xLSTM: Extended Long Short-Term Memory", arXiv:2405.04517) report that
xLSTM's sLSTM and mLSTM cells do well on memory and associative-recall tasks on which
a classic LSTM struggles. This script does not reproduce their setup (their tasks, model
sizes and training budgets differ); the figures are whatever the run prints.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlm.config import CELLS, XLSTM_CELLS, ModelConfig
from lstmlm.model.lm import LanguageModel

DEFAULT_CELLS = ("lstm", "gru", "rnn-tanh", "slstm", "mlstm", "minlstm", "mingru")
HEADS = 4  # slstm/mlstm: the hidden size must be a multiple of it
MAX_HIDDEN = 1024  # the hidden-size search stops here


@dataclass
class Task:
    keys: int
    distractors: int

    @property
    def query(self) -> int:
        return self.keys + self.distractors

    @property
    def vocab(self) -> int:
        return self.keys + self.distractors + 1


@dataclass
class RunResult:
    cell: str
    seed: int
    distance: int
    nhid: int
    recurrent_params: int
    accuracy: float
    solved_step: int | None
    steps: int
    seconds: float


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=list(DEFAULT_CELLS), choices=CELLS, metavar="CELL")
    p.add_argument("--distances", nargs="+", type=int, default=[16, 32, 64, 128, 256])
    p.add_argument("--budget", type=int, default=0, help="recurrent params; 0: a 1-layer lstm, hidden 64")
    p.add_argument("--emsize", type=int, default=32)
    p.add_argument("--nlayers", type=int, default=2, help="the min cells need 2 for nonlinearity in time")
    p.add_argument("--steps", type=int, default=1500, help="max training steps per run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--solved", type=float, default=0.99, help="held-out accuracy that ends a run")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-size", type=int, default=512, help="held-out sequences")
    p.add_argument("--keys", type=int, default=8)
    p.add_argument("--distractors", type=int, default=16)
    p.add_argument("--json", type=Path, default=None, help="write every run's result here")
    return p.parse_args()


def make_config(cell: str, task: Task, nhid: int, args: argparse.Namespace) -> ModelConfig:
    extra = {"heads": HEADS} if cell in XLSTM_CELLS else {}
    sizes = {"emsize": args.emsize, "nhid": nhid, "nlayers": args.nlayers}
    return ModelConfig(cell=cell, ntoken=task.vocab, dropout=0.0, tied=False, **sizes, **extra)


def recurrent_params(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in LanguageModel(cfg).rnn.parameters())


def default_budget(task: Task, emsize: int) -> int:
    cfg = ModelConfig(cell="lstm", ntoken=task.vocab, emsize=emsize, nhid=64, nlayers=1, tied=False)
    return recurrent_params(cfg)


def pick_hidden(cell: str, task: Task, args: argparse.Namespace) -> tuple[int, int]:
    """The hidden size whose recurrent parameter count is closest to the budget, and that count."""
    step = HEADS if cell in XLSTM_CELLS else 1
    best = (step, recurrent_params(make_config(cell, task, step, args)))
    for nhid in range(2 * step, MAX_HIDDEN + 1, step):
        count = recurrent_params(make_config(cell, task, nhid, args))
        if abs(count - args.budget) < abs(best[1] - args.budget):
            best = (nhid, count)
        if count > args.budget:  # the count grows with the hidden size
            break
    return best


def make_batch(task: Task, distance: int, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(distance + 2, batch) tokens, time first: key, distractors, query; and the keys (batch,)."""
    keys = torch.randint(task.keys, (batch,), generator=gen)
    noise = torch.randint(task.keys, task.query, (distance, batch), generator=gen)
    query = torch.full((1, batch), task.query)
    return torch.cat([keys[None], noise, query]), keys


def data_generators(seed: int, distance: int) -> tuple[torch.Generator, torch.Generator]:
    """The training stream's and the held-out batch's generators, fixed by (seed, distance) alone."""
    base = 2 * (seed * 1_000_003 + distance)
    return torch.Generator().manual_seed(base), torch.Generator().manual_seed(base + 1)


def query_logits(model: LanguageModel, tokens: Tensor) -> Tensor:
    logits, _ = model(tokens, model.init_state(tokens.size(1)))
    return logits[-1]


@torch.no_grad()
def accuracy(model: LanguageModel, tokens: Tensor, keys: Tensor) -> float:
    model.eval()
    acc = (query_logits(model, tokens).argmax(-1) == keys).float().mean().item()
    model.train()
    return acc


def train_step(
    model: LanguageModel, opt: torch.optim.Optimizer, batch: tuple[Tensor, Tensor], clip: float
) -> None:
    tokens, keys = batch
    loss = F.cross_entropy(query_logits(model, tokens), keys)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def run_one(cfg: ModelConfig, task: Task, distance: int, seed: int, args: argparse.Namespace) -> RunResult:
    """Train one cell at one distance; the data depends only on (seed, distance), not on the cell."""
    start = time.perf_counter()
    train_gen, eval_gen = data_generators(seed, distance)
    held_out = make_batch(task, distance, args.eval_size, eval_gen)
    torch.manual_seed(seed)
    model = LanguageModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    acc, solved, step = 0.0, None, 0
    for step in range(1, args.steps + 1):
        train_step(model, opt, make_batch(task, distance, args.batch_size, train_gen), args.clip)
        if step % args.eval_every == 0 or step == args.steps:
            acc = accuracy(model, *held_out)
            if acc >= args.solved:
                solved = step
                break
    params = sum(p.numel() for p in model.rnn.parameters())
    seconds = time.perf_counter() - start
    return RunResult(cfg.cell, seed, distance, cfg.nhid, params, acc, solved, step, seconds)


def describe(r: RunResult) -> str:
    solved = "—" if r.solved_step is None else str(r.solved_step)
    return (
        f"  seed {r.seed}  N={r.distance:<4d} acc {r.accuracy:.3f}  solved at step {solved:>5}"
        f"  ({r.steps} steps, {r.seconds:.1f} s)"
    )


def table(results: list[RunResult], cells: list[str], distances: list[int]) -> str:
    """Held-out accuracy, cells x distances (the mean over seeds)."""
    width = max(len(c) for c in cells) + 2
    lines = [("cell".ljust(width) + "".join(f"N={d:<7d}" for d in distances)).rstrip()]
    for cell in cells:
        row = cell.ljust(width)
        for d in distances:
            accs = [r.accuracy for r in results if r.cell == cell and r.distance == d]
            row += f"{sum(accs) / len(accs):<9.3f}" if accs else f"{'-':<9}"
        lines.append(row.rstrip())
    return "\n".join(lines)


def run_cell(cell: str, task: Task, args: argparse.Namespace) -> list[RunResult]:
    nhid, count = pick_hidden(cell, task, args)
    print(f"{cell}: hidden {nhid}, {count:,} recurrent params (budget {args.budget:,})", flush=True)
    cfg = make_config(cell, task, nhid, args)
    results = []
    for seed in args.seeds:
        for distance in args.distances:
            results.append(run_one(cfg, task, distance, seed, args))
            print(describe(results[-1]), flush=True)
    return results


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    task = Task(args.keys, args.distractors)
    args.budget = args.budget or default_budget(task, args.emsize)
    print(
        f"recall: {task.keys} keys, {task.distractors} distractors, chance {1 / task.keys:.3f}; "
        f"{args.nlayers} layers, emsize {args.emsize}, up to {args.steps} steps of {args.batch_size}, "
        f"lr {args.lr}, solved = held-out accuracy >= {args.solved} ({args.eval_size} sequences)",
        flush=True,
    )
    results = [r for cell in args.cells for r in run_cell(cell, task, args)]
    mean = " (mean over seeds)" if len(args.seeds) > 1 else ""
    print(f"\nheld-out accuracy at the end of each run{mean}, chance {1 / task.keys:.3f}")
    print(table(results, args.cells, args.distances))
    if args.json:
        payload = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
        payload["results"] = [asdict(r) for r in results]
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
