"""Splits read lazily, batch by batch: the ``LineSource`` contract, in-memory lists, datasets columns.

A source never holds a whole split: it hands out consecutive batches of whole lines
(``iter_batches``), knows its number of lines (``len``) and fingerprints its content in
one streaming pass. Every source gives exactly the lines that reading its text at once
gives: UTF-8, a leading BOM dropped, ``\\r\\n`` accepted, spaces and empty lines kept.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstmlm.errors import BadText

Progress = Callable[[int, int | None], None]  # (done, total or None when unknown)

BATCH_LINES = 10_000  # lines per batch handed to the tokenizer, at most ...
BATCH_CHARS = 1 << 18  # ... and about this many characters, which bounds encode_batch's memory
DATASET_ROWS = 4096  # rows read from a dataset at a time


class LineSource(ABC):
    """A split's lines (without line ends), read lazily; ``len(source)`` is its number of lines.

    The underlying text must not change while the source is in use.
    """

    _fingerprint: str | None = None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _raw_batches(self) -> Iterator[list[str]]:
        """All the lines, in order, as consecutive non-empty lists of any size."""

    @abstractmethod
    def split_at(self, k: int) -> tuple[LineSource, LineSource]:
        """The first ``k`` lines and the remaining ones, as two sources."""

    def iter_batches(
        self,
        max_lines: int | None = None,
        max_chars: int | None = None,
        *,
        on_progress: Progress | None = None,
    ) -> Iterator[list[str]]:
        """The lines in lists of at most ``max_lines`` lines and about ``max_chars`` characters
        (default ``BATCH_LINES``, ``BATCH_CHARS``; a longer line comes alone);
        ``on_progress(lines_done, len(self))`` after each list."""
        max_lines, max_chars = max_lines or BATCH_LINES, max_chars or BATCH_CHARS
        total, done = len(self), 0
        for raw in self._raw_batches():
            for batch in _limit(raw, max_lines, max_chars):
                yield batch
                done += len(batch)
                if on_progress is not None:
                    on_progress(done, total)

    def __iter__(self) -> Iterator[str]:
        for batch in self.iter_batches():
            yield from batch

    def to_list(self) -> list[str]:
        """All the lines in memory (for small splits and tests)."""
        return list(self)

    def fingerprint(self) -> str:
        """sha256 hex of the content as a file, each line ending in ``"\\n"`` (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256()
        for batch in self._raw_batches():
            digest.update(text_bytes(batch))
        return digest.hexdigest()

    def has_text(self) -> bool:
        """Whether some line holds more than whitespace (stops at the first that does)."""
        return any(line.strip() for batch in self._raw_batches() for line in batch)


def as_source(lines: LineSource | Iterable[str]) -> LineSource:
    """``lines`` itself if it is a source, else its lines in memory as a ``ListSource``."""
    if isinstance(lines, LineSource):
        return lines
    return ListSource(lines if isinstance(lines, list) else list(lines))


def text_bytes(lines: Sequence[str]) -> bytes:
    """The UTF-8 bytes of ``lines`` as a file, each line followed by ``"\\n"``."""
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without line ends (``\\r\\n`` or ``\\n``; a final line end ends a line)."""
    return text.replace("\r\n", "\n").removesuffix("\n").split("\n")


def decode_utf8(raw: bytes, path: Path, offset: int = 0) -> str:
    """``raw`` (which starts at byte ``offset`` of ``path``) as text, or a user error naming the bad byte."""
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as e:
        raise BadText(
            f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {offset + e.start})"
        ) from None


def _limit(batch: list[str], max_lines: int, max_chars: int) -> Iterator[list[str]]:
    """``batch`` cut into consecutive lists within both limits (a line over ``max_chars`` alone)."""
    if sum(map(len, batch)) <= max_chars:  # the usual case: only the line count may need cutting
        if len(batch) <= max_lines:
            yield batch
        else:
            yield from (batch[start : start + max_lines] for start in range(0, len(batch), max_lines))
        return
    start, chars = 0, 0
    for i, line in enumerate(batch):
        if i > start and (i - start >= max_lines or chars + len(line) > max_chars):
            yield batch[start:i]
            start, chars = i, 0
        chars += len(line)
    yield batch[start:]


class ListSource(LineSource):
    """Lines already in memory (the default corpus, tests)."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines

    def __repr__(self) -> str:
        return f"ListSource({len(self.lines)} lines)"

    def __len__(self) -> int:
        return len(self.lines)

    def _raw_batches(self) -> Iterator[list[str]]:
        for start in range(0, len(self.lines), BATCH_LINES):
            yield list(self.lines[start : start + BATCH_LINES])

    def split_at(self, k: int) -> tuple[ListSource, ListSource]:
        check_split(k, len(self))
        return ListSource(self.lines[:k]), ListSource(self.lines[k:])

    def to_list(self) -> list[str]:
        return list(self.lines)


def check_split(k: int, n: int) -> None:
    if not 0 <= k <= n:
        raise ValueError(f"cannot split {n} lines at line {k}")


class DatasetSource(LineSource):
    """Lines of a ``datasets`` text column, ``n_lines`` of them from line ``skip`` of row ``row``.

    A row holding several lines gives several lines (an empty or missing row gives one
    empty line). Rows are read ``DATASET_ROWS`` at a time from the memory-mapped Arrow data.
    """

    def __init__(self, dataset: Any, column: str, row: int, skip: int, n_lines: int) -> None:
        self._rows = dataset.with_format("arrow")  # slices come back as pyarrow tables
        self.column, self.row, self.skip, self.n_lines = column, row, skip, n_lines

    @classmethod
    def open(cls, dataset: Any, column: str, *, on_progress: Progress | None = None) -> DatasetSource:
        """All the lines of ``column`` (counting them reads the column once, vectorised)."""
        rows = dataset.with_format("arrow")
        total = 0
        for counts in _line_counts(rows, column, 0, on_progress):
            total += int(counts.sum())
        return cls(dataset, column, 0, 0, total)

    def __repr__(self) -> str:
        return f"DatasetSource({self.column!r}, row {self.row} line {self.skip}, {self.n_lines} lines)"

    def __len__(self) -> int:
        return self.n_lines

    def _raw_batches(self) -> Iterator[list[str]]:
        remaining, skip = self.n_lines, self.skip
        for row in range(self.row, len(self._rows), DATASET_ROWS):
            if remaining <= 0:
                return
            texts = self._rows[row : row + DATASET_ROWS][self.column].to_pylist()
            lines = [line for text in texts for line in split_lines(text or "")]
            lines = lines[skip : skip + remaining]
            skip, remaining = 0, remaining - len(lines)
            if lines:
                yield lines

    def split_at(self, k: int) -> tuple[DatasetSource, DatasetSource]:
        check_split(k, self.n_lines)
        row, skip = len(self._rows), 0
        target = self.skip + k  # counted from the first line of self.row
        first = self.row
        for counts in _line_counts(self._rows, self.column, self.row):
            total = int(counts.sum())
            if target < total:
                ends = np.cumsum(counts)
                r = int(np.searchsorted(ends, target, side="right"))
                row, skip = first + r, target - (int(ends[r - 1]) if r else 0)
                break
            target -= total
            first += len(counts)
        head = DatasetSource(self._rows, self.column, self.row, self.skip, k)
        return head, DatasetSource(self._rows, self.column, row, skip, self.n_lines - k)


def _line_counts(
    rows: Any, column: str, start: int, on_progress: Progress | None = None
) -> Iterator[np.ndarray]:
    """Per row from ``start`` on, in batches: how many lines ``split_lines`` makes of it."""
    import pyarrow.compute as pc

    n = len(rows)
    for row in range(start, n, DATASET_ROWS):
        texts = rows[row : row + DATASET_ROWS][column]
        newlines = pc.count_substring(texts, pattern="\n").fill_null(0).to_numpy()
        final = pc.ends_with(texts, pattern="\n").fill_null(False).to_numpy()
        yield newlines.astype(np.int64) + 1 - final
        if on_progress is not None:
            on_progress(min(row + DATASET_ROWS, n) - start, n - start)
