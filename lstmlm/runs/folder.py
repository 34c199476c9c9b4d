"""The run folder: its files, its mark, its config, the writer lock, and what a run holds, without torch.

Layout (see README "Runs and checkpoints")::

    RUN_DIR/
      config.json            resolved RunConfig
      data.json              the --data path and each split's fingerprint (provenance.py)
      lineage.json           a fine-tuned run's parent: path, weights' sha256, step, vocabulary mode
      tokenizer.json         HF tokenizers file
      model.safetensors      latest weights (metadata: step)
      train_state.pt         optimizer, schedule, RNG states, data position, carried state (step)
      model.prev.safetensors / train_state.prev.pt   the checkpoint before the latest
      best.safetensors       best weights on valid
      metrics.jsonl          one JSON object per event (events.py)
      .lock                  held by the one `train` writing here (pid inside)
      .lstmlm-run            the mark: lstmlm made this folder, so --overwrite may replace its run

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
DATA_RECORD = "data.json"  # written by provenance.py
LINEAGE = "lineage.json"  # a fine-tuned run's parent (training/init_from.py)
LOCK = ".lock"
MARK = ".lstmlm-run"
MARK_TEXT = b"lstmlm run folder: lstmlm train --overwrite replaces only folders with this file\n"
#: what ``train --overwrite`` removes (``.lock`` and the mark stay while it writes)
RUN_FILES = (CONFIG, DATA_RECORD, LINEAGE, TOKENIZER, MODEL, STATE, PREV_MODEL, PREV_STATE, BEST, METRICS)
#: a run folder's own files: no command's output option may replace one of them
OWN_FILES = (*RUN_FILES, LOCK, MARK)
HEADER_BYTES_MAX = 100_000_000  # a safetensors header larger than this is a damaged file


def is_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a run folder lstmlm made (see ``not_a_run``)."""
    return not_a_run(run_dir) is None


def not_a_run(run_dir: Path) -> str | None:
    """Why ``run_dir`` is not a run folder lstmlm made, or None when it is one.

    A run folder carries the mark (``MARK``), written before anything else. A run trained
    before the mark existed is recognised by its ``config.json`` (lstmlm's own, with its
    model/data/train sections) beside its tokenizer and its metrics or weights: a Hugging
    Face model folder (``config.json``, ``tokenizer.json``, ``model.safetensors``) is not one.
    """
    if (run_dir / MARK).is_file():
        return None
    if not (run_dir / CONFIG).is_file():
        return f"it has no {MARK} mark and no {CONFIG}"
    problem = _foreign_config(run_dir / CONFIG)
    if problem:
        return f"its {CONFIG} is not lstmlm's, {problem}"
    if not (run_dir / TOKENIZER).is_file():
        return f"it has no {TOKENIZER}"
    if not any((run_dir / name).is_file() for name in (METRICS, MODEL, BEST)):
        return f"it has no {METRICS} and no weights"
    return None


def _foreign_config(path: Path) -> str | None:
    """What makes ``path`` something other than a ``RunConfig`` lstmlm wrote (None: nothing)."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"not readable JSON ({e})"
    sections = ("model", "data", "train")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(name), dict) for name in sections):
        keys = list(raw) if isinstance(raw, dict) else [f"a JSON {type(raw).__name__}"]
        shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
        return f"with no model, data and train sections (it has {shown or 'nothing'})"
    try:
        RunConfig.from_dict(raw, source=CONFIG)
    except LstmlmError as e:
        return f"not a valid RunConfig ({e})"
    return None


def overwritable_files(run_dir: Path) -> list[str]:
    """The run files ``train --overwrite`` removes from ``run_dir``; one line, and nothing
    touched, when ``run_dir`` holds anything and is not a run folder lstmlm made."""
    if not run_dir.is_dir():
        return []
    if any(p.name != LOCK for p in run_dir.iterdir()):
        reason = not_a_run(run_dir)
        if reason:
            raise LstmlmError(
                f"--overwrite: {run_dir} is not an lstmlm run folder, nothing replaced: {reason}"
            )
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def mark_run(run_dir: Path) -> None:
    """Mark ``run_dir`` as a run folder lstmlm made (``train`` does, before writing anything else)."""
    write_atomic(run_dir / MARK, MARK_TEXT)


def refuse_run_file(path: Path, option: str) -> None:
    """One line if writing ``path`` would replace a run folder's own file, or is a run folder.

    The path is resolved first: a link into a run folder names the run's file.
    """
    target = path.resolve()
    if target.is_dir() and is_run(target):
        raise LstmlmError(f"{option} {path} is a run folder; name a file to write")
    if target.name in OWN_FILES and target.parent.is_dir() and is_run(target.parent):
        raise LstmlmError(
            f"{option} {path} would replace {target.name} of the run in {target.parent}; "
            "write it outside the run's own files"
        )


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


def write_lineage(run_dir: Path, lineage: dict[str, Any]) -> None:
    """Record where a fine-tuned run came from (``training/init_from.py`` says what it holds)."""
    write_atomic(run_dir / LINEAGE, (json.dumps(lineage, indent=2, sort_keys=True) + "\n").encode())


def read_lineage(run_dir: Path) -> dict[str, Any] | None:
    """A fine-tuned run's ``lineage.json``; None for a run trained from scratch."""
    path = run_dir / LINEAGE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LstmlmError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("parent"), str):
        raise LstmlmError(f"{path}: not an lstmlm lineage record (no parent)")
    return raw


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
    lineage: dict[str, Any] | None = None  # a fine-tuned run's parent (lineage.json)

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
        lineage=read_lineage(run_dir),
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
