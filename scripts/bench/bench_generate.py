"""Generation speed: ``lstmlm generate`` vs the peer's ``generate.py`` (pytorch/examples), whole process.

Both sides get the same model shape (embedding -> 2 x 650 LSTM -> decoder tied to the
embedding, dropout 0.5, untrained weights: speed does not depend on them) and the same
vocabulary, every word of one corpus file (default WikiText-2's valid.txt, used as the
train, valid and test split of a scratch corpus folder, as the peer's ``data.Corpus``
reads all three).

* peer: ``generate.py --data CORPUS --checkpoint model.pt --words N`` run from a scratch
  copy of its folder, with a checkpoint made as its ``main.py`` saves one
  (``torch.save`` of its own ``RNNModel``). It loads under torch 2.13 as it is.
* lstmlm: ``python -m lstmlm generate RUN --max-tokens N`` on a run folder written as
  ``train`` writes one (config, tokenizer, step-0 weights), from this checkout.

Each is timed as a fresh process (interpreter start, imports, loading, sampling; stdout
discarded, the peer writes its file), ``--repeats`` times, alternating (which goes first
flips every round), after one untimed run of each; median and min per side and the
peer/lstmlm ratios. Both get ``--threads`` threads (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``;
default: the CPU count).

In this process, then: the per-token latency at batch 1 in steady state, through
``lstmlm.generate.sample`` (the fused step) and through the model's ``forward`` (the
general path), and the peer's loop body; next to the bound a token cannot beat when its
weights come from memory: the model's weight bytes over a measured read bandwidth
(summing a buffer far larger than the caches).

    python -m scripts.bench.bench_generate [--tokens 2000] [--repeats 5] [--threads N] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from scripts.common import LSTMLM, PEER, ROOT, SHARED_DATA, copy_peer, import_peer_module, thread_env

DATA = SHARED_DATA / "wikitext-2"
SHAPE = {"emsize": 650, "nhid": 650, "nlayers": 2, "dropout": 0.5, "tied": True}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=2000, help="tokens each side samples")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each side")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both sides")
    p.add_argument("--data", type=Path, default=DATA, help="folder with valid.txt (the vocabulary)")
    p.add_argument("--peer", type=Path, default=PEER, help="the peer's folder (copied to a scratch dir)")
    p.add_argument("--latency-tokens", type=int, default=200, help="timed tokens of the in-process latency")
    return p.parse_args()


def make_corpus(data: Path, folder: Path) -> Path:
    folder.mkdir()
    for split in ("train", "valid", "test"):
        shutil.copyfile(data / "valid.txt", folder / f"{split}.txt")
    return folder


def make_peer_checkpoint(peer: Path, corpus: Path, path: Path) -> int:
    """The peer's ``RNNModel`` of ``SHAPE`` saved as its ``main.py`` does; returns its vocabulary size."""
    data = import_peer_module(peer, "data")  # the peer's data.py and model.py, from the scratch copy
    RNNModel = import_peer_module(peer, "model").RNNModel

    ntokens = len(data.Corpus(str(corpus)).dictionary)
    torch.manual_seed(0)
    shape = [SHAPE[key] for key in ("emsize", "nhid", "nlayers", "dropout", "tied")]
    model = RNNModel("LSTM", ntokens, *shape)
    with open(path, "wb") as f:
        torch.save(model, f)
    return ntokens


def make_lstmlm_run(corpus: Path, out: Path) -> int:
    """A run folder as ``lstmlm train`` starts one, with untrained weights; returns its vocabulary size."""
    from lstmlm.config import RunConfig, replace
    from lstmlm.data.corpus import load_corpus
    from lstmlm.model.lm import LanguageModel
    from lstmlm.runs import checkpoint
    from lstmlm.runs import folder as run_folder
    from lstmlm.training.launch import build_tokenizer

    config = RunConfig.from_dict({"model": SHAPE, "data": {"data": str(corpus)}})
    tokenizer = build_tokenizer(config, load_corpus(config.data))
    config = replace(config, model={"ntoken": tokenizer.vocab_size})
    out.mkdir()
    tokenizer.save(out / run_folder.TOKENIZER)
    run_folder.write_config(out, config)
    torch.manual_seed(0)
    (out / run_folder.MODEL).write_bytes(checkpoint.weights_bytes(LanguageModel(config.model), 0))
    return tokenizer.vocab_size


def wall_times(commands: dict[str, tuple[list[str], Path]], repeats: int, env: dict[str, str]) -> dict:
    """Seconds of each command as a fresh process: one untimed run each, then alternating rounds."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(repeats + 1):
        order = list(commands) if index % 2 == 0 else list(reversed(commands))
        for name in order:
            command, cwd = commands[name]
            start = time.perf_counter()
            subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
            if index > 0:
                times[name].append(time.perf_counter() - start)
    return times


def per_token_ms(step: Callable[[], object], tokens: int, warmup: int = 20) -> float:
    """Median milliseconds of ``step()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(tokens):
        start = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def latencies(run: Path, peer_checkpoint: Path, tokens: int) -> tuple[dict[str, float], int]:
    """Per-token ms at batch 1 (lstmlm's ``sample``, its model's forward, the peer's loop body)
    and lstmlm's weight bytes."""
    from lstmlm.generate import pick_next, sample
    from lstmlm.runs.load import load_run

    model = load_run(run).model
    fused = sample(model, [1], max_tokens=10**9, generator=torch.Generator().manual_seed(1))
    state, x = model.init_state(1), torch.tensor([[1]])
    generator = torch.Generator().manual_seed(1)

    def forward_step() -> None:
        nonlocal state
        logits, state = model(x, state)
        x.fill_(pick_next(logits[0, 0], 1.0, 0, 1.0, generator))

    peer = torch.load(peer_checkpoint, weights_only=False).eval()  # our own file, made above
    hidden, peer_x = peer.init_hidden(1), torch.tensor([[1]])

    def peer_step() -> None:  # the loop body of the peer's generate.py
        nonlocal hidden
        output, hidden = peer(peer_x, hidden)
        peer_x.fill_(torch.multinomial(output.squeeze().div(1.0).exp().cpu(), 1)[0])

    with torch.no_grad():
        return {
            "lstmlm sample (fused step)": per_token_ms(lambda: next(fused), tokens),
            "lstmlm model forward": per_token_ms(forward_step, tokens),
            "peer loop body": per_token_ms(peer_step, tokens),
        }, sum(p.numel() * p.element_size() for p in model.parameters())


def read_bandwidth(megabytes: int = 1024, repeats: int = 5) -> float:
    """Bytes/s summing an fp32 buffer of ``megabytes`` (far beyond the caches), best of ``repeats``."""
    buffer = torch.ones(megabytes * 2**20 // 4)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        buffer.sum()
        best = min(best, time.perf_counter() - start)
    return buffer.numel() * 4 / best


def report(times: dict[str, list[float]], lat: dict[str, float], weight_bytes: int, bandwidth: float) -> None:
    print(f"{'whole process':<28} {'median s':>9} {'min s':>8}")
    for name, values in times.items():
        print(f"{name:<28} {statistics.median(values):9.2f} {min(values):8.2f}")
    peer, ours = times["peer generate.py"], times["lstmlm generate"]
    print(
        f"peer/lstmlm: {statistics.median(peer) / statistics.median(ours):.2f}x of the medians, "
        f"{min(peer) / min(ours):.2f}x of the mins"
    )
    bound = 1000 * weight_bytes / bandwidth
    print("\nper token, batch 1, steady state (median of the timed tokens)")
    for name, ms in lat.items():
        print(f"{name:<28} {ms:8.3f} ms  ({ms / bound:.2f}x the bound)")
    print(
        f"{'bound: weights / bandwidth':<28} {bound:8.3f} ms  "
        f"({weight_bytes / 1e6:.1f} MB of weights / {bandwidth / 1e9:.1f} GB/s read)"
    )


def main() -> None:
    args = parse_args()
    if not (args.data / "valid.txt").is_file():
        print(f"skipped: {args.data / 'valid.txt'} not found (pass --data)")
        return
    if not (args.peer / "generate.py").is_file():
        print(f"skipped: the peer's generate.py not found in {args.peer} (pass --peer)")
        return
    torch.set_num_threads(args.threads)
    env = thread_env(args.threads, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="lstmlm-bench-generate-") as scratch:
        tmp = Path(scratch)
        peer = copy_peer(tmp / "peer", args.peer)
        corpus = make_corpus(args.data, tmp / "corpus")
        vocab = make_peer_checkpoint(peer, corpus, tmp / "model.pt"), make_lstmlm_run(corpus, tmp / "run")
        if vocab[0] != vocab[1]:
            raise SystemExit(f"vocabularies differ: peer {vocab[0]}, lstmlm {vocab[1]}")
        n = str(args.tokens)
        commands = {
            "peer generate.py": (
                [sys.executable, "generate.py", "--data", str(corpus), "--checkpoint", str(tmp / "model.pt"),
                 "--words", n, "--outf", str(tmp / "peer.txt"), "--seed", "1"],
                peer,
            ),
            "lstmlm generate": ([*LSTMLM, "generate", str(tmp / "run"),
                                 "--max-tokens", n, "--seed", "1"], ROOT),
        }  # fmt: skip
        print(
            f"{args.tokens} tokens, 2x650 tied LSTM, vocab {vocab[1]:,} ({args.data.name}/valid.txt), "
            f"{args.threads} threads, {args.repeats} alternating repeats (+1 untimed), "
            f"load average {os.getloadavg()[0]:.2f} at the start"
        )
        times = wall_times(commands, args.repeats, env)
        lat, weight_bytes = latencies(tmp / "run", tmp / "model.pt", args.latency_tokens)
    report(times, lat, weight_bytes, read_bandwidth())
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
