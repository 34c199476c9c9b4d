"""Training throughput: lstmlm's real training loop vs a bare ``nn.LSTM`` loop, per precision and compile.

Both train the same model (embedding -> 2x650 LSTM -> linear, untied, vocab 10k by
default) with SGD, clipping and carried, detached state on the same random token
stream (B=20, T=35). lstmlm's figure comes from ``lstmlm.training.train.train`` itself (its
events and checkpointing included), once per ``--precision`` and, with ``--compile``,
also compiled; each is also given as a ratio to lstmlm fp32 eager. The first
``--warmup`` steps of each run (compilation, allocator warm-up) are not timed. Repeats
alternate the variants to share the machine's noise; the best repeat of each is reported.

    python -m scripts.bench.bench_train [--steps 60] [--repeats 3] [--nhid 650] [--vocab 10000]
        [--precision fp32 bf16] [--compile] [--device cpu]
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
from lstmlm.runs.events import Event, Log
from lstmlm.training.train import Splits, train


def config_for(
    args: argparse.Namespace, steps: int, precision: str = "fp32", compile: bool = False
) -> RunConfig:
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
                "log_every": args.warmup,
                "lr": 1.0,
                "device": args.device,
                "epochs": 1000,
                "precision": precision,
                "compile": compile,
            },
        }
    )


def bench_lstmlm(
    args: argparse.Namespace, data: torch.Tensor, valid: torch.Tensor, precision: str, compile: bool
) -> float:
    """Tokens/s of ``train()`` over the steps after the warm-up (from the logged elapsed times)."""
    config = config_for(args, args.warmup + args.steps, precision, compile)
    torch.manual_seed(0)
    model = LanguageModel(config.model)
    logs: list[Log] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Log):
            logs.append(event)

    with tempfile.TemporaryDirectory() as tmp:
        train(config, model, Splits(data, valid), Path(tmp), on_event=on_event)
    warm = next(m for m in logs if m.step == args.warmup)
    tokens = (logs[-1].step - warm.step) * args.batch * args.bptt
    return tokens / (logs[-1].elapsed - warm.elapsed)


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
    device = torch.device(args.device)
    model = BareLM(args.vocab, args.nhid).to(device)
    data = data.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    zeros = torch.zeros(2, args.batch, args.nhid, device=device)
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
    float(loss.detach())  # wait for the device
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
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of each run")
    parser.add_argument(
        "--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16", "fp16"), help="lstmlm precisions"
    )
    parser.add_argument("--compile", action="store_true", help="also time lstmlm with torch.compile")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    length = args.bptt * (args.warmup + args.steps + 2)
    data = torch.randint(args.vocab, (length, args.batch), generator=generator)
    valid = torch.randint(args.vocab, (args.bptt + 1, args.batch), generator=generator)

    variants = [(p, c) for c in ([False, True] if args.compile else [False]) for p in args.precision]
    if ("fp32", False) not in variants:
        variants.insert(0, ("fp32", False))  # the reference of the ratios
    names = {v: f"lstmlm {v[0]} {'compiled' if v[1] else 'eager'}" for v in variants}
    bench_bare(argparse.Namespace(**{**vars(args), "steps": 3}), data)  # warm-up
    results: dict[str, list[float]] = {"bare nn.LSTM loop": [], **{name: [] for name in names.values()}}
    for _ in range(args.repeats):
        results["bare nn.LSTM loop"].append(bench_bare(args, data))
        for variant, name in names.items():
            results[name].append(bench_lstmlm(args, data, valid, *variant))
    bare, eager = max(results["bare nn.LSTM loop"]), max(results[names["fp32", False]])
    where = f"{torch.get_num_threads()} threads" if args.device == "cpu" else torch.cuda.get_device_name()
    print(
        f"{args.device.upper()} training throughput, 2x{args.nhid} LSTM, vocab {args.vocab:,}, "
        f"B={args.batch}, T={args.bptt}, {args.steps} steps (+{args.warmup} warm-up) "
        f"x {args.repeats} repeats, {where}"
    )
    print(f"{'loop':<24} {'best tok/s':>12} {'all repeats':>30} {'vs bare':>8} {'vs fp32 eager':>14}")
    for name, values in results.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        best = max(values)
        print(f"{name:<24} {best:>12,.0f} {runs:>30} {best / bare:>8.3f} {best / eager:>14.3f}")


if __name__ == "__main__":
    main()
