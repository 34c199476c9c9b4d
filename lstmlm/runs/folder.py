"""The run folder's files, its config, the writer lock, and what a run holds, without torch.

Layout (see README "Runs and checkpoints")::

    RUN_DIR/
      config.json            resolved RunConfig
      data.json              the --data path and each split's fingerprint (provenance.py)
      tokenizer.json         HF tokenizers file
      model.safetensors      latest weights (metadata: step)
      train_state.pt         optimizer, schedule, RNG states, data position, carried state (step)
      model.prev.safetensors / train_state.prev.pt   the checkpoint before the latest
      best.safetensors       best weights on valid
      metrics.jsonl          one JSON object per event (events.py)
      .lock                  held by the one `train` writing here (pid inside)

Writing and reading checkpoints needs torch and lives in ``checkpoint.py``; what is here
serves ``lstmlm info`` and the planning of a run, which start without importing torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lstmlm.config import RunConfig
from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic
from lstmlm.runs.events import Eval
from lstmlm.runs.metrics import read_events

CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
MODEL = "model.safetensors"
STATE = "train_state.pt"
PREV_MODEL = "model.prev.safetensors"
PREV_STATE = "train_state.prev.pt"
BEST = "best.safetensors"
METRICS = "metrics.jsonl"
LOCK = ".lock"
HEADER_BYTES_MAX = 100_000_000  # a safetensors header larger than this is a damaged file


def is_run(run_dir: Path) -> bool:
    return (run_dir / CONFIG).exists()


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files left by a killed writer are garbage: the renamed files are the truth."""
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def write_config(run_dir: Path, config: RunConfig) -> None:
    write_atomic(run_dir / CONFIG, config.to_json().encode())


def read_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LstmlmError(f"{run_dir} is not an lstmlm run folder (no {CONFIG})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LstmlmError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise LstmlmError(f"{path}: not an lstmlm config")
    return RunConfig.from_dict(raw, source=str(path))


# ---------------------------------------------------------------- weights headers


def weights_header(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """The JSON header of a safetensors file: tensor names to dtype/shape, and ``__metadata__``.

    ``data``: the file's bytes when the caller has read them already (the header is then
    the one of those bytes, not of a file replaced since); else just the header is read.
    """
    try:
        with io.BytesIO(data) if data is not None else open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= HEADER_BYTES_MAX:
                raise ValueError(f"header size {size}")
            header = json.loads(f.read(size))
        if not isinstance(header, dict):
            raise ValueError("header is not a table")
        return header
    except FileNotFoundError:
        raise LstmlmError(f"{path}: file not found") from None
    except (ValueError, OSError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise LstmlmError(f"{path}: not a readable safetensors file ({e})") from None


def saved_step(header: dict[str, Any]) -> int:
    """The step a weights file was saved at (-1 if it does not say)."""
    try:
        return int(header.get("__metadata__", {}).get("step", -1))
    except (TypeError, ValueError):
        return -1


def tensor_count(header: dict[str, Any]) -> int:
    """Numbers stored in a weights file (a tied decoder is stored once, as the embedding)."""
    shapes = [entry["shape"] for name, entry in header.items() if name != "__metadata__"]
    return sum(math.prod(shape) for shape in shapes)


# ---------------------------------------------------------------- what a run holds


@dataclass
class RunSummary:
    """What ``lstmlm info`` shows; read from the folder's files without loading the model."""

    run: str
    parameters: int
    vocab_size: int
    tokenizer: str
    step: int
    best_valid_ppl: float | None
    config: dict[str, Any]
    files: dict[str, int]  # name -> bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(run_dir: Path) -> RunSummary:
    """Size, vocabulary, progress and best validation perplexity of the run in ``run_dir``."""
    if not run_dir.is_dir():
        raise LstmlmError(f"run folder not found: {run_dir}")
    config = read_config(run_dir)
    present = [run_dir / name for name in (MODEL, PREV_MODEL, BEST) if (run_dir / name).exists()]
    headers = [weights_header(path) for path in present]
    if not headers:
        raise LstmlmError(f"{run_dir} has no weights yet ({MODEL} or {BEST})")
    return RunSummary(
        run=str(run_dir),
        parameters=tensor_count(headers[0]),
        vocab_size=config.model.ntoken,
        tokenizer=config.data.tokenizer,
        step=max(saved_step(header) for header in headers),
        best_valid_ppl=best_valid_ppl(run_dir),
        config=config.to_dict(),
        files={p.name: p.stat().st_size for p in sorted(run_dir.iterdir()) if p.is_file()},
    )


def best_valid_ppl(run_dir: Path) -> float | None:
    """The best validation perplexity in the run's metrics (None before its first evaluation)."""
    losses = [event.valid_loss for event in read_events(run_dir / METRICS) if isinstance(event, Eval)]
    return math.exp(min(losses)) if losses else None


# ---------------------------------------------------------------- the writer lock


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder; the kernel releases it if we die.

    A lock file left by a dead process is not a problem: ``flock`` locks die with their
    owner, so a stale ``.lock`` is simply taken over.
    """
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise LstmlmError(
                f"another lstmlm train (pid {other}) is writing to {run_dir}; "
                "wait for it or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
