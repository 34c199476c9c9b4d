"""What every part of the GPU check shares: the sizes (real and smoke), the device, the clock
and the budget, memory figures, a scratch folder, and a small corpus from ``data/default``.

The real sizes are for one H100/H200 within the ~8-minute budget (estimates per part in
``Sizes.estimates``, seconds); the smoke sizes run the same code paths on 2 CPU cores in
about a minute.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from lstmlm.config import RunConfig
from lstmlm.data.sources import ListSource
from lstmlm.data.tokenizer import Tokenizer, train_tokenizer
from lstmlm.data.tokens import batchify
from lstmlm.runs.load import encode_text
from lstmlm.training.loop import Splits
from scripts.common import ROOT, SHARED_DATA

DEFAULT_CORPUS = ROOT / "data" / "default"  # the embedded agreement corpus (committed)
WIKITEXT = SHARED_DATA / "wikitext-2"  # valid.txt, test.txt
MIN_TIMEOUT = 20.0  # seconds a child process gets at least


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    """The last line a finished child wrote on stderr (else stdout): its error, for a FAIL row."""
    return (done.stderr.strip() or done.stdout.strip() or "(nothing)").splitlines()[-1]


@dataclass(frozen=True)
class Shape:
    """A model shape for the speed rows: embedding, layer sizes, vocabulary, batch, window."""

    name: str
    emsize: int
    layers: tuple[int, ...]
    vocab: int
    batch: int
    bptt: int

    def label(self) -> str:
        sizes = self.layers
        stack = f"{len(sizes)}×{sizes[0]}" if len(set(sizes)) == 1 else "×".join(map(str, sizes))
        return f"{stack} LSTM V={self.vocab:,} B={self.batch} T={self.bptt}"


@dataclass(frozen=True)
class Sizes:
    """How big each part runs. ``cells``: one cell per family by default (see ``FAMILIES``)."""

    cells: tuple[str, ...]
    precisions: tuple[str, ...]
    cell_nhid: int
    cell_batch: int
    cell_bptt: int
    cell_steps: int
    cell_minutes: float  # --max-time of each cell's run: a slow cell cannot eat the budget
    corpus_lines: int  # lines of data/default/train.txt trained on (valid: valid_lines)
    valid_lines: int
    speed_shapes: tuple[Shape, ...]
    speed_steps: int
    speed_warmup: int
    speed_repeats: int
    speed_precisions: tuple[str, ...]
    wd_steps: int
    wd_log_every: int
    gen_nhid: int
    gen_vocab: int
    gen_tokens: int
    bandwidth_mib: int
    real_nhid: int
    real_batch: int
    real_minutes: float | None  # the real run's --max-time (None: --max-steps real_steps)
    real_steps: int
    real_lines: int  # lines of valid.txt trained on (0: all)
    eval_lines: int  # lines of WikiText-2's test.txt (or the default corpus) for the eval methods
    compile_nhid: int
    compile_steps: int
    compile_log_every: int
    ddp_steps: int
    estimates: dict[str, float] = field(default_factory=dict)  # part -> expected seconds


#: one cell per family: the cell run, and the cells that share its code path
FAMILIES = {
    "lstm": "fused nn.LSTM (cuDNN)",
    "gru": "fused nn.GRU (cuDNN)",
    "rnn-tanh": "fused nn.RNN; also rnn-relu",
    "lstm-eq": "LSTM equations' scan; also peephole, coupled, depth-gated",
    "gru-eq": "GRU equations' scan",
    "slstm": "xLSTM sLSTM block",
    "mlstm": "xLSTM mLSTM block (chunkwise)",
    "minlstm": "minLSTM (log-space scan)",
    "mingru": "minGRU (log-space scan)",
}

REAL = Sizes(
    cells=tuple(FAMILIES),
    precisions=("fp32", "bf16", "fp16"),
    cell_nhid=256,
    cell_batch=32,
    cell_bptt=35,
    cell_steps=200,
    cell_minutes=0.4,
    corpus_lines=12_000,
    valid_lines=400,
    speed_shapes=(
        Shape("2×650", 650, (650, 650), 10_000, 20, 35),
        Shape("AWD", 400, (1150, 1150, 400), 33_278, 80, 70),
    ),
    speed_steps=80,
    speed_warmup=10,
    speed_repeats=2,
    speed_precisions=("fp32", "bf16"),
    wd_steps=100,
    wd_log_every=20,
    gen_nhid=650,
    gen_vocab=33_278,
    gen_tokens=400,
    bandwidth_mib=1024,
    real_nhid=650,
    real_batch=32,
    real_minutes=1.0,
    real_steps=0,
    real_lines=0,
    eval_lines=60,
    compile_nhid=256,
    compile_steps=150,
    compile_log_every=25,
    ddp_steps=100,
    estimates={
        "device": 5,
        "cells": 4,
        "speed": 12,
        "weight drop": 25,
        "generation": 10,
        "real run": 110,
        "eval": 40,
        "export": 25,
        "NCCL": 40,
        "compile": 120,
        "memory": 0,
    },
)

SMOKE = Sizes(
    cells=tuple(FAMILIES),
    precisions=("fp32", "bf16", "fp16"),
    cell_nhid=24,
    cell_batch=8,
    cell_bptt=8,
    cell_steps=32,
    cell_minutes=0.5,
    corpus_lines=400,
    valid_lines=40,
    speed_shapes=(
        Shape("2×650", 32, (32, 32), 400, 4, 8),
        Shape("AWD", 24, (40, 40, 24), 600, 4, 10),
    ),
    speed_steps=6,
    speed_warmup=2,
    speed_repeats=1,
    speed_precisions=("fp32",),
    wd_steps=12,
    wd_log_every=3,
    gen_nhid=32,
    gen_vocab=600,
    gen_tokens=30,
    bandwidth_mib=32,
    real_nhid=24,
    real_batch=8,
    real_minutes=None,
    real_steps=12,
    real_lines=150,
    eval_lines=6,
    compile_nhid=16,
    compile_steps=20,
    compile_log_every=5,
    ddp_steps=8,
    estimates={
        "device": 1,
        "cells": 1,
        "speed": 2,
        "weight drop": 2,
        "generation": 1,
        "real run": 10,
        "eval": 10,
        "export": 8,
        "NCCL": 10,
        "compile": 30,
        "memory": 0,
    },
)


@dataclass
class SmallCorpus:
    """Lines of the default corpus, tokenized by lstmlm's word tokenizer, as token ids."""

    tokenizer: Tokenizer
    train: torch.Tensor  # (N,) int64
    valid: torch.Tensor

    def splits(self, batch: int, eval_batch: int) -> Splits:
        return Splits(batchify(self.train, batch), batchify(self.valid, eval_batch, split_name="valid"))


@dataclass
class Context:
    """The check's run: mode, device, sizes, scratch folder, deadline, and what parts share."""

    smoke: bool
    device: torch.device
    sizes: Sizes
    tmp: Path
    data_dir: Path  # WikiText-2: valid.txt (trained on), test.txt (scored)
    deadline: float  # time.monotonic() by which the check ends
    tracebacks: TextIO
    shared: dict[str, Any] = field(default_factory=dict)  # e.g. "run": a run trained on the device

    @property
    def cuda(self) -> bool:
        """Whether the check runs on a CUDA device that is there."""
        return self.device.type == "cuda" and torch.cuda.is_available()

    @property
    def missing_device(self) -> bool:
        """CUDA asked for and absent (a CPU build of torch, or no GPU): nothing can run."""
        return self.device.type == "cuda" and not torch.cuda.is_available()

    def left(self) -> float:
        """Seconds left in the budget."""
        return self.deadline - time.monotonic()

    def sync(self) -> None:
        """Wait for the device (before and after anything timed)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float | None:
        """The device's peak allocated memory since ``reset_peak`` (None on CPU: see ``memory_mib``)."""
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None

    def memory_mib(self) -> float:
        """Memory in use now: the device's allocated tensors, or on CPU the process's resident size."""
        if self.cuda:
            return torch.cuda.memory_allocated(self.device) / 2**20
        return resident_mib()

    def scratch(self, name: str) -> Path:
        """A new, empty folder under the check's temporary folder."""
        return Path(tempfile.mkdtemp(prefix=f"{name.replace(' ', '-')}-", dir=self.tmp))

    def child_env(self) -> dict[str, str]:
        """The environment of a child process: one thread each in smoke mode (tiny tensors on a
        shared 2-core machine slow down by 100x with OpenMP threads spinning against each other)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if self.smoke:
            env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        return env

    def child(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run ``command`` from the repository root with ``child_env``, its output captured, for at
        most ``timeout`` seconds (and never past the budget, nor under ``MIN_TIMEOUT``)."""
        timeout = max(MIN_TIMEOUT, min(timeout, self.left()))
        env = self.child_env()
        env.setdefault("NCCL_DEBUG", "WARN")  # a failing NCCL says why on stderr
        try:
            return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(command[1:4])} timed out after {timeout:.0f} s") from None

    def corpus(self) -> SmallCorpus:
        """The small corpus the training parts share (made once)."""
        if "corpus" not in self.shared:
            self.shared["corpus"] = small_corpus(self.sizes.corpus_lines, self.sizes.valid_lines)
        corpus: SmallCorpus = self.shared["corpus"]
        return corpus


def small_config(ctx: Context, cell: str, dropout: float, steps: int, **train: Any) -> RunConfig:
    """The checks' small model: ``cell``, 2 tied layers of ``cell_nhid`` on the small corpus,
    trained ``steps`` steps of ``cell_batch`` x ``cell_bptt`` (``train``: more [train] settings)."""
    s = ctx.sizes
    model = {
        "cell": cell,
        "ntoken": ctx.corpus().tokenizer.vocab_size,
        "emsize": s.cell_nhid,
        "nhid": s.cell_nhid,
        "nlayers": 2,
        "dropout": dropout,
        "tied": True,
    }
    train_ = {
        "bptt": s.cell_bptt,
        "batch_size": s.cell_batch,
        "eval_batch_size": 8,
        "epochs": 1000,
        "max_steps": steps,
        "log_every": max(1, steps // 4),
        "seed": 1,
        **train,
    }
    return RunConfig.from_dict({"model": model, "train": train_})


def small_corpus(train_lines: int, valid_lines: int) -> SmallCorpus:
    train = read_lines(DEFAULT_CORPUS / "train.txt", train_lines)
    valid = read_lines(DEFAULT_CORPUS / "valid.txt", valid_lines)
    tokenizer = train_tokenizer("word", train)
    ids = [
        torch.from_numpy(encode_text(ListSource(lines), tokenizer).ids.astype("int64"))
        for lines in (train, valid)
    ]
    return SmallCorpus(tokenizer, ids[0], ids[1])


def read_lines(path: Path, limit: int) -> list[str]:
    """The first ``limit`` non-empty lines of a text file."""
    lines: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                lines.append(line.rstrip("\n"))
                if len(lines) == limit:
                    break
    return lines


def resident_mib() -> float:
    """This process's resident memory now (Linux), else its peak so far."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return peak_resident_mib()


def peak_resident_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@contextlib.contextmanager
def timed(ctx: Context) -> Iterator[list[float]]:
    """``with timed(ctx) as t: ...`` then ``t[0]`` is the seconds it took, the device waited for
    at both ends."""
    box = [0.0]
    ctx.sync()
    start = time.perf_counter()
    yield box
    ctx.sync()
    box[0] = time.perf_counter() - start
