"""Reading trained runs: load a run's model and tokenizer, and encode its splits.

``load_run`` gives eval, generate, agreement and inspect a ``Run`` (config, tokenizer,
model on a device); ``run_split`` gives them a split of the run's text (or of other
text) as token ids, through the shared token cache (``evaluation`` scores one), and
``read_text`` what ``eval`` scores with where it came from: a split, or (``WHOLE``) every
line of a file or of stdin as ``score --context`` and ``Model.perplexity`` read them.
Starting and resuming training is ``training/launch.py``; what a run folder holds
without loading it is ``folder.py``.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lstmlm.config import RunConfig, replace
from lstmlm.data.corpus import Corpus, load_corpus
from lstmlm.data.direction import FORWARD, oriented_split
from lstmlm.data.sources import LineSource, ListSource, Progress, decode_utf8, split_lines
from lstmlm.data.text_file import scan_text_file
from lstmlm.data.text_files import pattern_files
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.data.tokens import EncodedSplit, encode_split, ids_dtype
from lstmlm.errors import LstmlmError, RunError, RunNotFound
from lstmlm.files import cache_dir
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs.provenance import check_unchanged

# (stage, done, total): "read" (bytes or rows), "tokenizer" and "encode <split>" (lines).
DataProgress = Callable[[str, int, int | None], None]


def stage_progress(on_data: DataProgress | None, stage: str) -> Progress | None:
    return None if on_data is None else lambda done, total: on_data(stage, done, total)


def encode(
    corpus: Corpus, split: str, tokenizer: Tokenizer, on_data: DataProgress | None, direction: str = FORWARD
) -> EncodedSplit:
    """``split`` of ``corpus`` as token ids, through the shared token cache, in the order a
    ``direction`` model reads them (``oriented``: training and eval both read splits here)."""
    on_progress = stage_progress(on_data, f"encode {split}")
    encoded = encode_split(corpus.splits[split], tokenizer, cache_dir=cache_dir(), on_progress=on_progress)
    return oriented_split(encoded, direction, tokenizer.eos_id)


def run_split(run: Run, split: str, data: str | None, *, on_data: DataProgress | None = None) -> EncodedSplit:
    """A split of the run's corpus (or of ``data``), encoded with the run's tokenizer;
    ``WHOLE``: every line of the file or stdin ``data`` (``whole_text``)."""
    return read_text(run, split, data, on_data=on_data).encoded


STDIN = "-"  # --data - (eval), --file - (score): standard input
WHOLE = "whole"  # the "split" of a text scored whole: every line with text, one stream


@dataclass(frozen=True)
class ScoredText:
    """What ``eval`` scores, and where it came from (its ``--json`` fields ``source``, ``data``
    and ``corpus``, beside ``split`` and ``tokens``)."""

    encoded: EncodedSplit
    split: str  # train, valid, test, or WHOLE
    source: str  # "run" (its own data), "data" (--data) or "stdin"
    data: object  # the --data given; the run's own (None: the embedded corpus); "-" for stdin
    corpus: str  # what was read, for people: the corpus as train names it, a file, or "stdin"

    def fields(self) -> dict[str, object]:
        return {"source": self.source, "data": self.data, "corpus": self.corpus}


def eval_split(data: str | None, split: str | None) -> str:
    """The split ``eval`` scores: ``split`` when given (None: not given); else the whole text of
    a ``data`` file, of a glob of files or of stdin, else (the run's own data, a folder, a dataset) test."""
    whole = data is not None and (
        data == STDIN or Path(data).expanduser().is_file() or bool(glob_files(data))
    )
    if split is None:
        return WHOLE if whole else "test"
    if split == WHOLE and not whole:
        raise LstmlmError(
            "--split whole: only for a file or stdin given as --data (the run's own data, "
            "a folder, files or a dataset are scored by split: train, valid or test)"
        )
    if data == STDIN and split != WHOLE:
        raise LstmlmError(
            f"--split {split}: stdin (--data -) is scored whole; "
            "save the text to a file to score a split of it"
        )
    return split


def read_text(run: Run, split: str, data: str | None, *, on_data: DataProgress | None = None) -> ScoredText:
    """``split`` of the run's corpus or of ``data`` (``run_split``), or the ``WHOLE`` text of a
    file or stdin, encoded, with where it came from."""
    if split == WHOLE:
        if data is None:
            raise LstmlmError("the whole text is scored for a file or stdin only: give one as data")
        encoded, name = whole_text(data, run.tokenizer, on_data=on_data)
        encoded = oriented_split(encoded, run.config.model.direction, run.tokenizer.eos_id)
        return ScoredText(encoded, WHOLE, "stdin" if data == STDIN else "data", data, name)
    other = {"data": data, "valid_data": None, "test_data": None}  # other text: none of the run's splits
    data_config = run.config.data if data is None else replace(run.config, data=other).data
    corpus = load_corpus(data_config, on_progress=stage_progress(on_data, "read"))
    if split not in corpus.splits or not corpus.splits[split]:
        available = ", ".join(sorted(corpus.splits))
        raise LstmlmError(f"{corpus.name} has no {split!r} split (available: {available})")
    if data is None:
        check_unchanged(run.dir, corpus, (split,), "pass --data to score other text on purpose")
    encoded = encode(corpus, split, run.tokenizer, on_data, run.config.model.direction)
    if data is None:
        return ScoredText(encoded, split, "run", run.config.data.data, corpus.name)
    return ScoredText(encoded, split, "data", data, corpus.name)


def whole_text(
    data: str, tokenizer: Tokenizer, *, on_data: DataProgress | None = None
) -> tuple[EncodedSplit, str]:
    """Every line with text of the file ``data`` (or of stdin, ``-``), encoded as
    ``encode_text`` reads lines, and what was read (for people)."""
    if data == STDIN:
        lines: LineSource = ListSource(stdin_lines())
        name = "stdin (every line, one stream)"
    elif glob_files(data):  # files named by a pattern: all of them, in name order, as one text
        files = glob_files(data)
        lines = ListSource([line for path in files for line in file_lines(path)])
        name = f"{data} ({len(files)} files in name order: every line, one stream)"
    else:
        path = Path(data).expanduser()
        if not path.is_file():
            raise LstmlmError(f"--data {data}: not a file")
        lines, _ = scan_text_file(path, on_progress=stage_progress(on_data, "read"))
        name = f"{data} (file: every line, one stream)"
    encoded = encode_text(lines, tokenizer, on_progress=stage_progress(on_data, f"encode {WHOLE}"))
    if not len(encoded.ids):
        raise LstmlmError(f"nothing to score: {'stdin' if data == STDIN else data} has no words")
    return encoded, name


def glob_files(data: str) -> list[Path]:
    """The files a glob pattern such as ``shards/*.txt`` matches, in ``train``'s name order
    (``part-2`` before ``part-10``); [] for a plain path."""
    if not any(char in data for char in "*?["):
        return []
    return pattern_files(data)


def encode_text(
    lines: LineSource, tokenizer: Tokenizer, *, on_progress: Progress | None = None
) -> EncodedSplit:
    """The lines as ``score`` reads them: each stripped and followed by ``<eos>``, blank lines
    skipped (a split keeps them: ``encode_split``); chars and bytes count each line end as 1."""
    dtype = ids_dtype(tokenizer.vocab_size)
    chunks: list[np.ndarray] = []
    num_chars = num_bytes = 0
    for batch in lines.iter_batches(on_progress=on_progress):
        kept = [line.strip() for line in batch if line.strip()]
        chunks.append(tokenizer.encode_lines(kept, dtype=dtype))
        num_chars += sum(len(line) + 1 for line in kept)
        num_bytes += sum(len(line.encode("utf-8", "surrogatepass")) + 1 for line in kept)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    return EncodedSplit(ids=ids, num_chars=num_chars, num_bytes=num_bytes)


def stdin_lines() -> list[str]:
    """Standard input's lines (``text_lines``)."""
    try:
        raw = sys.stdin.buffer.read()
    except (OSError, AttributeError, ValueError) as e:  # closed, or not a byte stream
        raise LstmlmError(f"stdin: cannot be read ({e})") from None
    return text_lines(raw, "stdin")


def file_lines(path: Path) -> list[str]:
    """A text file's lines (``text_lines``), read at once (``score --file``)."""
    try:
        raw = _read_pipe(path) if stat.S_ISFIFO(path.stat().st_mode) else path.read_bytes()
    except OSError as e:
        raise LstmlmError(f"{path}: cannot read the file ({e.strerror or e})") from None
    return text_lines(raw, str(path))


def _read_pipe(path: Path) -> bytes:
    """All of a named pipe (``<(cmd)``, a FIFO). Opened without blocking, so a pipe that no
    program writes to reads as empty at once instead of waiting for a writer forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:  # a writer is there, not done yet: wait for it
                os.set_blocking(fd, True)
                continue
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def text_lines(raw: bytes, name: str) -> list[str]:
    """The lines of UTF-8 ``raw`` as a text file's are read (a leading BOM dropped, ``\\r\\n``
    accepted); other bytes are a one-line error naming ``name``, the byte and its offset."""
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    return split_lines(decode_utf8(raw[start:], Path(name), start))


def trained_on(run: Run, data: str) -> bool:
    """Whether ``data`` is the very file the run was trained on (its recorded, resolved ``--data``)."""
    recorded = run.config.data.data
    if not isinstance(recorded, str) or data == STDIN:
        return False
    try:
        return Path(data).expanduser().resolve() == Path(recorded).resolve()
    except OSError:
        return False


@dataclass
class Run:
    """A trained run, ready for eval, generate, agreement and inspect."""

    dir: Path
    config: RunConfig
    tokenizer: Tokenizer
    model: LanguageModel
    step: int
    weights_path: Path


def load_run(run_dir: Path | str, *, best: bool = True, device: str | torch.device = "cpu") -> Run:
    """Load config, tokenizer and weights (``best.safetensors`` if present and ``best``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunNotFound(f"run folder not found: {run_dir}")
    config = run_folder.read_config(run_dir)
    tokenizer = Tokenizer.load(run_dir / run_folder.TOKENIZER)
    if config.model.ntoken != tokenizer.vocab_size:  # checked before the model is built: it may be huge
        raise RunError(
            f"{run_dir}: config.json's vocabulary ({config.model.ntoken:,} tokens) is not the one of "
            f"{run_folder.TOKENIZER} ({tokenizer.vocab_size:,}): the run's files do not belong together"
        )
    model = LanguageModel(config.model)
    candidates = [run_folder.BEST, run_folder.MODEL, run_folder.PREV_MODEL]
    if not best:
        candidates = candidates[1:] + candidates[:1]
    found = [run_dir / name for name in candidates if (run_dir / name).exists()]
    if not found:
        raise RunError(f"{run_dir} has no weights yet ({run_folder.MODEL} or {run_folder.BEST})")
    tensors, step = ckpt.read_weights(found[0])
    ckpt.load_weights_into(model, tensors, found[0])
    model.to(device).eval()
    return Run(run_dir, config, tokenizer, model, step, found[0])
