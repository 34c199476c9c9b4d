"""Token id arrays: encoding splits (with an on-disk memmap cache), batchify, BPTT windows.

Cache layout, one pair of files per (split content, tokenizer, format version)::

    <cache_dir>/<key>.bin    the ids, raw little-endian uint16/uint32
    <cache_dir>/<key>.json   {"format", "dtype", "length", "num_chars", "num_bytes"}

The ``.json`` is written last, so a pair whose ``.json`` exists and whose ``.bin`` has the
announced size is complete; anything else is re-encoded. Encoding streams: batches of
lines go through the tokenizer and straight into the ``.bin`` file, so memory stays flat
whatever the split's size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lstmlm.data.sources import LineSource, Progress, as_source, text_bytes
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.files import atomic_file

CACHE_FORMAT = 1
_CACHE_DTYPES = (np.dtype("<u2"), np.dtype("<u4"))


@dataclass
class EncodedSplit:
    """One split as token ids, plus the size of its text for bits-per-char/byte."""

    ids: np.ndarray  # (N,) uint16 or uint32; a read-only np.memmap when cached
    num_chars: int  # characters of the text, each line end counted as 1
    num_bytes: int  # UTF-8 bytes of the text, each line end counted as 1


def ids_dtype(vocab_size: int) -> np.dtype:
    """The smallest id dtype for ``vocab_size``: uint16 if all ids fit (<= 65536 tokens), else uint32."""
    return _CACHE_DTYPES[0] if vocab_size <= 2**16 else _CACHE_DTYPES[1]


def encode_split(
    lines: LineSource | Iterable[str],
    tokenizer: Tokenizer,
    *,
    cache_dir: Path | None,
    on_progress: Progress | None = None,
) -> EncodedSplit:
    """Encode ``lines`` (each followed by ``<eos>``), reusing ``cache_dir`` when given.

    A cache hit memory-maps the stored ids without running the tokenizer (finding it
    reads the text once, to fingerprint it); a miss streams the ids into the cache, and a
    missing, corrupt or unwritable cache falls back to encoding in memory.
    ``on_progress(lines_done, lines_total)`` follows the encoding.
    """
    source = as_source(lines)
    if cache_dir is None:
        return _encode_in_memory(source, tokenizer, on_progress)
    cache_dir = Path(cache_dir)
    key = cache_key(source, tokenizer)
    cached = _read_cache(cache_dir, key)
    if cached is None:
        try:
            return _write_cache(cache_dir, key, source, tokenizer, on_progress)
        except OSError:
            return _encode_in_memory(source, tokenizer, on_progress)  # an unwritable cache only costs time
    if on_progress is not None:
        on_progress(len(source), len(source))
    return cached


def cache_key(lines: LineSource | Iterable[str], tokenizer: Tokenizer) -> str:
    """sha256 of the split content, the tokenizer and the cache format."""
    digest = hashlib.sha256()
    for part in (f"lstmlm-tokens-{CACHE_FORMAT}", as_source(lines).fingerprint(), tokenizer.to_json()):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def _encode_stream(
    source: LineSource,
    tokenizer: Tokenizer,
    write: Callable[[np.ndarray], object],
    on_progress: Progress | None,
) -> tuple[int, int, int]:
    """Pass each batch's ids to ``write``; returns (ids, chars, bytes) of the split."""
    dtype = ids_dtype(tokenizer.vocab_size)
    length = num_chars = num_bytes = 0
    for batch in source.iter_batches(on_progress=on_progress):
        ids = tokenizer.encode_lines(batch, dtype=dtype)
        write(ids)
        length += ids.size
        num_chars += sum(map(len, batch)) + len(batch)  # each line end counts 1
        num_bytes += len(text_bytes(batch))
    return length, num_chars, num_bytes


def _encode_in_memory(source: LineSource, tokenizer: Tokenizer, on_progress: Progress | None) -> EncodedSplit:
    chunks: list[np.ndarray] = []
    _, num_chars, num_bytes = _encode_stream(source, tokenizer, chunks.append, on_progress)
    dtype = ids_dtype(tokenizer.vocab_size)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    return EncodedSplit(ids=ids, num_chars=num_chars, num_bytes=num_bytes)


def _cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.bin", cache_dir / f"{key}.json"


def _read_cache(cache_dir: Path, key: str) -> EncodedSplit | None:
    bin_path, meta_path = _cache_paths(cache_dir, key)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        dtype, length = np.dtype(meta["dtype"]), int(meta["length"])
        complete = bin_path.stat().st_size == length * dtype.itemsize
        if meta["format"] != CACHE_FORMAT or dtype not in _CACHE_DTYPES or not complete:
            return None
        ids = _open_ids(bin_path, dtype, length)
        return EncodedSplit(ids=ids, num_chars=int(meta["num_chars"]), num_bytes=int(meta["num_bytes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(
    cache_dir: Path, key: str, source: LineSource, tokenizer: Tokenizer, on_progress: Progress | None
) -> EncodedSplit:
    """Stream the ids of ``source`` into the cache pair ``key``, then memory-map them.

    Raises OSError when the cache cannot be written (the temp file is removed).
    """
    bin_path, meta_path = _cache_paths(cache_dir, key)
    dtype = ids_dtype(tokenizer.vocab_size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(bin_path) as f:
        length, num_chars, num_bytes = _encode_stream(
            source,
            tokenizer,
            f.write,  # type: ignore[arg-type]  # arrays are buffers; numpy's stubs say so only for 3.12+
            on_progress,
        )
    meta = {
        "format": CACHE_FORMAT,
        "dtype": dtype.str,
        "length": length,
        "num_chars": num_chars,
        "num_bytes": num_bytes,
    }
    with atomic_file(meta_path) as f:
        f.write(json.dumps(meta, indent=2).encode("utf-8"))
    ids = _open_ids(bin_path, dtype, length)
    return EncodedSplit(ids=ids, num_chars=num_chars, num_bytes=num_bytes)


def _open_ids(path: Path, dtype: np.dtype, length: int) -> np.ndarray:
    if length == 0:
        return np.zeros(0, dtype=dtype)  # an empty file cannot be memory-mapped
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def check_length(n_tokens: int, batch_size: int, split_name: str) -> None:
    """Raise unless every one of ``batch_size`` streams gets an input and a target."""
    need = 2 * batch_size
    if n_tokens < need:
        raise LstmlmError(
            f"the {split_name} split has {n_tokens} tokens: too short for batch size "
            f"{batch_size} (need at least {need}); add text or lower the batch size"
        )


def batchify(ids: np.ndarray | Tensor, batch_size: int, *, split_name: str = "train") -> Tensor:
    """Cut the id sequence into ``batch_size`` parallel streams, one per column.

    With the sequence a b c ... z and ``batch_size=4``, each column continues the
    text from the bottom of the column before it; y and z, which cannot fill a
    row, are dropped::

        a g m s
        b h n t
        c i o u
        d j p v
        e k q w
        f l r x

    Returns a (T, B) int64 tensor, T = len(ids) // batch_size. Streams are
    independent: the model never sees g right after f.
    """
    check_length(len(ids), batch_size, split_name)
    n = len(ids) // batch_size * batch_size
    if isinstance(ids, Tensor):
        flat = ids[:n].to(torch.int64)
    else:
        flat = torch.from_numpy(np.array(ids[:n], dtype=np.int64))
    return flat.view(batch_size, -1).t().contiguous()


def num_windows(source: Tensor, bptt: int) -> int:
    """How many BPTT windows ``get_window`` cuts ``source`` into (the last may be short)."""
    return len(range(0, source.size(0) - 1, bptt))


def get_window(source: Tensor, i: int, bptt: int) -> tuple[Tensor, Tensor]:
    """Inputs and targets of the window starting at row ``i`` (i = 0, bptt, 2*bptt, ...).

    The targets are the inputs shifted one row down, so consecutive windows
    tile each stream with no gap. For the batchify picture above and ``bptt=2``::

        i=0:  x      y          i=2:  x      y          i=4:  x      y
            a g m s  b h n t        c i o u  d j p v        e k q w  f l r x
            b h n t  c i o u        d j p v  e k q w

    x and y are (t, B) with t = min(bptt, len(source) - 1 - i).
    """
    t = min(bptt, source.size(0) - 1 - i)
    return source[i : i + t], source[i + 1 : i + 1 + t]
