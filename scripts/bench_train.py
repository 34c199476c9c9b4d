"""Training throughput: lstmlm's real training loop vs a bare ``nn.LSTM`` loop.

Both train the same model (embedding -> 2x650 LSTM -> linear, untied, vocab 10k by
default) with SGD, clipping and carried, detached state on the same random token
stream (B=20, T=35). lstmlm's figure comes from ``lstmlm.train.train`` itself (its
events and checkpointing included). Repeats alternate the two to share the machine's
noise; the best repeat of each is reported.

    python scripts/bench_train.py [--steps 60] [--repeats 3] [--nhid 650] [--vocab 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lstmlm.config import RunConfig
from lstmlm.model.lm import LanguageModel
from lstmlm.train import Splits, train


def config_for(args: argparse.Namespace, steps: int) -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": {
                "cell": "lstm",
                "ntoken": args.vocab,
                "emsize": args.nhid,
                "nhid": args.nhid,
                "nlayers": 2,
                "dropout": 0.0,
                "tied": False,
            },
            "train": {
                "bptt": args.bptt,
                "batch_size": args.batch,
                "eval_batch_size": args.batch,
                "max_steps": steps,
                "log_every": steps,
                "lr": 1.0,
                "device": "cpu",
                "epochs": 1000,
            },
        }
    )


def bench_lstmlm(args: argparse.Namespace, data: torch.Tensor, valid: torch.Tensor) -> float:
    config = config_for(args, args.steps)
    torch.manual_seed(0)
    model = LanguageModel(config.model)
    seen: dict[str, float] = {}

    def on_event(kind: str, metrics: dict) -> None:
        if kind == "log":
            seen["tps"] = metrics["tokens_per_s"]

    with tempfile.TemporaryDirectory() as tmp:
        train(config, model, Splits(data, valid), Path(tmp), on_event=on_event)
    return seen["tps"]


class BareLM(nn.Module):
    def __init__(self, vocab: int, nhid: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, nhid)
        self.rnn = nn.LSTM(nhid, nhid, 2)
        self.decoder = nn.Linear(nhid, vocab)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.encoder(x), hidden)
        return self.decoder(out), hidden


def bench_bare(args: argparse.Namespace, data: torch.Tensor) -> float:
    torch.manual_seed(0)
    model = BareLM(args.vocab, args.nhid)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    zeros = torch.zeros(2, args.batch, args.nhid)
    hidden = (zeros, zeros.clone())
    tokens = 0
    start = time.perf_counter()
    for step in range(args.steps):
        i = (step * args.bptt) % (data.size(0) - 1 - args.bptt)
        x, y = data[i : i + args.bptt], data[i + 1 : i + 1 + args.bptt]
        optimizer.zero_grad(set_to_none=True)
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.view(-1, args.vocab), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        hidden = tuple(h.detach() for h in hidden)
        tokens += y.numel()
    float(loss)
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nhid", type=int, default=650)
    parser.add_argument("--vocab", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    length = args.bptt * (args.steps + 2)
    data = torch.randint(args.vocab, (length, args.batch), generator=generator)
    valid = torch.randint(args.vocab, (args.bptt + 1, args.batch), generator=generator)

    bench_bare(argparse.Namespace(**{**vars(args), "steps": 3}), data)  # warm-up
    results: dict[str, list[float]] = {"bare nn.LSTM loop": [], "lstmlm train()": []}
    for _ in range(args.repeats):
        results["bare nn.LSTM loop"].append(bench_bare(args, data))
        results["lstmlm train()"].append(bench_lstmlm(args, data, valid))
    base = max(results["bare nn.LSTM loop"])
    print(
        f"CPU training throughput, 2x{args.nhid} LSTM, vocab {args.vocab:,}, B={args.batch}, "
        f"T={args.bptt}, {args.steps} steps x {args.repeats} repeats, {torch.get_num_threads()} threads"
    )
    print(f"{'loop':<20} {'best tok/s':>12} {'all repeats':>30} {'ratio':>7}")
    for name, values in results.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:<20} {max(values):>12,.0f} {runs:>30} {max(values) / base:>7.3f}")


if __name__ == "__main__":
    main()
