"""Training step time: lstmlm's step vs the peer's (pytorch/examples ``word_language_model``).

Both build the same model (embedding -> ``--nlayers`` x ``--nhid`` LSTM -> decoder tied
to the embedding; dropout ``--dropout`` on the embedding, between the layers and on the
output) and train it with SGD (lr 20) and clipping (0.25) on the same token ids, carrying
the detached state from window to window, on the CPU.

* lstmlm: what ``lstmlm.training.loop.Loop.step`` and ``Loop.account`` do for one window: the lr
  into the optimizer, ``train_step`` (zero_grad; the forward pass under ``--precision``
  within ``masks_for_step``, i.e. its per-stream dropout masks; fp32 cross-entropy;
  backward; clip), ``step_verdict`` (the non-finite guard's one host sync) and
  ``optimizer.step()`` (``torch.optim.SGD``).
* peer: the inner step of ``train()`` in the peer's ``main.py``, with the peer's own
  ``RNNModel`` (imported from a scratch copy of its folder): ``model.zero_grad()``,
  repackage the state, forward (log-softmax), ``NLLLoss``, backward, ``clip_grad_norm_``,
  the manual SGD update ``p.data.add_(p.grad, alpha=-lr)`` and ``loss.item()``.

Steps alternate between the two (which goes first flips every round) to share the
machine's noise; the first ``--warmup`` rounds are not timed. Both live in one process,
so they also share its memory allocator: what a process-wide setting changes shows up
on both sides. Prints the median ms per step of each, and peer/lstmlm (above 1: lstmlm
is faster) of the medians and as the median of the per-round ratios.

    python -m scripts.bench.bench_peer_step [--steps 30] [--nhid 650] [--nlayers 2] [--vocab 11751]
        [--batch-size 20] [--bptt 35] [--threads 0] [--precision fp32] [--text FILE]

An AVX2-only CPU is emulated with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from lstmlm.config import RunConfig
from lstmlm.model.dropout import masks_for_step
from lstmlm.model.lm import LanguageModel
from lstmlm.runtime.precision import resolve_precision
from lstmlm.training.optim import make_optimizer
from lstmlm.training.step import step_verdict, train_step
from scripts.common import PEER, copy_peer, import_peer_module

LR, CLIP = 20.0, 0.25
Step = Callable[[Tensor, Tensor], None]


def lstmlm_step(args: argparse.Namespace) -> Step:
    """lstmlm's training step on one window, as the training loop takes it."""
    config = RunConfig.from_dict(
        {
            "model": {
                "cell": "lstm",
                "ntoken": args.vocab,
                "emsize": args.nhid,
                "nhid": args.nhid,
                "nlayers": args.nlayers,
                "dropout": args.dropout,
                "tied": True,
            },
            "train": {"bptt": args.bptt, "batch_size": args.batch_size, "lr": LR, "clip": CLIP},
        }
    )
    tc, device = config.train, torch.device("cpu")
    torch.manual_seed(0)
    model = LanguageModel(config.model).train()
    optimizer = make_optimizer(model, config)
    precision = resolve_precision(args.precision, device)
    scaler = precision.scaler()
    state = {"hidden": model.init_state(tc.batch_size, device), "step": 0, "loss": torch.zeros(())}

    def step(x: Tensor, y: Tensor) -> None:
        for group in optimizer.param_groups:
            group["lr"] = tc.lr
        loss, norm, hidden = train_step(
            model,
            optimizer,
            x,
            y,
            state["hidden"],
            tc.clip,
            precision=precision,
            scaler=scaler,
            dropout_masks=lambda first: masks_for_step(tc.seed, state["step"], first, tc.batch_size),
        )
        verdict = step_verdict(loss, norm, scaler=scaler, signal_received=None, timed_save=False)
        state["step"] += 1
        if verdict.step:
            optimizer.step()
            state["hidden"] = hidden
            state["loss"] += verdict.loss * y.numel()
        scaler.update()

    return step


def peer_step(args: argparse.Namespace, peer_dir: Path) -> Step:
    """The peer's ``train()`` inner step (SGD by hand: its ``main.py`` without ``--use-optimizer``)."""
    RNNModel = import_peer_module(peer_dir, "model").RNNModel  # the peer's model.py, from the scratch copy

    torch.manual_seed(0)
    model = RNNModel("LSTM", args.vocab, args.nhid, args.nhid, args.nlayers, args.dropout, True).train()
    criterion = nn.NLLLoss()
    state = {"hidden": model.init_hidden(args.batch_size), "total": 0.0}

    def step(x: Tensor, y: Tensor) -> None:
        model.zero_grad()
        hidden = tuple(h.detach() for h in state["hidden"])
        output, state["hidden"] = model(x, hidden)
        loss = criterion(output, y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-LR)
        state["total"] += loss.item()

    return step


def token_ids(args: argparse.Namespace, rows: int) -> Tensor:
    """(rows, B) ids: the whitespace words of ``--text`` (sets ``--vocab``), else random ids."""
    if args.text is None:
        return torch.randint(args.vocab, (rows, args.batch_size), generator=torch.Generator().manual_seed(0))
    lines = args.text.read_text(encoding="utf-8").splitlines()
    words = [word for line in lines for word in [*line.split(), "<eos>"]]
    vocab = {word: i for i, word in enumerate(dict.fromkeys(words))}
    args.vocab = len(vocab)
    ids = torch.tensor([vocab[word] for word in words])
    streams = ids[: ids.numel() // args.batch_size * args.batch_size].view(args.batch_size, -1).t()
    if streams.size(0) < rows:
        raise SystemExit(f"{args.text}: {streams.size(0)} rows per stream, {rows} needed")
    return streams[:rows].contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each at the start")
    parser.add_argument("--nhid", type=int, default=650)
    parser.add_argument("--nlayers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--vocab", type=int, default=11_751, help="the random ids' vocabulary (no --text)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="lstmlm's precision")
    parser.add_argument("--text", type=Path, help="train on this text's words (e.g. WikiText-2 valid.txt)")
    parser.add_argument("--peer", type=Path, default=PEER, help="the peer's folder (copied to a scratch dir)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.warmup + args.steps
    data = token_ids(args, rounds * args.bptt + 1)
    with tempfile.TemporaryDirectory() as scratch:
        peer_dir = copy_peer(Path(scratch) / "peer", args.peer)
        steps = {"peer": peer_step(args, peer_dir), "lstmlm": lstmlm_step(args)}
        times: dict[str, list[float]] = {name: [] for name in steps}
        for index in range(rounds):
            first = index * args.bptt
            x, y = data[first : first + args.bptt], data[first + 1 : first + 1 + args.bptt]
            for name in list(steps) if index % 2 == 0 else reversed(steps):
                start = time.perf_counter()
                steps[name](x, y)
                if index >= args.warmup:
                    times[name].append(1000 * (time.perf_counter() - start))
    peer, ours = (statistics.median(times[name]) for name in steps)
    per_round = statistics.median(p / o for p, o in zip(times["peer"], times["lstmlm"], strict=True))
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
    print(
        f"CPU training step, {args.nlayers}x{args.nhid} tied LSTM, dropout {args.dropout}, "
        f"vocab {args.vocab:,}, B={args.batch_size}, T={args.bptt}, {args.steps} steps (+{args.warmup} "
        f"warm-up), {torch.get_num_threads()} threads, ATen {torch.backends.cpu.get_cpu_capability()}, "
        f"oneDNN {isa}"
    )
    for name, label, median in (("peer", "peer", peer), ("lstmlm", f"lstmlm {args.precision}", ours)):
        spread = f"{min(times[name]):.1f}-{max(times[name]):.1f}"
        print(f"{label:<12} {median:8.1f} ms/step median  (range {spread})")
    print(f"peer/lstmlm  {peer / ours:8.3f} of the medians, {per_round:.3f} median per round")


if __name__ == "__main__":
    main()
