"""Splits read lazily, batch by batch: an in-memory list, a line range of a text file, a datasets column.

A source never holds a whole split: it hands out consecutive batches of whole lines
(``iter_batches``), knows its number of lines (``len``) and fingerprints its content in
one streaming pass. Every source gives exactly the lines that reading its text at once
gives: UTF-8, a leading BOM dropped, ``\\r\\n`` accepted, spaces and empty lines kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic

Progress = Callable[[int, int | None], None]  # (done, total or None when unknown)

BATCH_LINES = 10_000  # lines per batch handed to the tokenizer, at most ...
BATCH_CHARS = 1 << 18  # ... and about this many characters, which bounds encode_batch's memory
BLOCK_BYTES = 1 << 18  # bytes read from a text file at a time (a block fits one batch)
DATASET_ROWS = 4096  # rows read from a dataset at a time
MEMO_MIN_BYTES = 16 << 20  # files at least this large have their scan remembered (_ScanMemo)

_BOM = b"\xef\xbb\xbf"


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
        raise LstmlmError(
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
        _check_split(k, len(self))
        return ListSource(self.lines[:k]), ListSource(self.lines[k:])

    def to_list(self) -> list[str]:
        return list(self.lines)


class FileSource(LineSource):
    """The lines in bytes ``[start, stop)`` of a UTF-8 text file; both fall at line starts.

    Made by ``scan_text_file`` (which checks the file) and ``split_at``; reading a file
    that changed since the scan is a user error rather than silently different text.
    """

    def __init__(self, path: Path, start: int, stop: int, n_lines: int, stamp: tuple[int, int]) -> None:
        self.path, self.start, self.stop, self.n_lines, self._stamp = path, start, stop, n_lines, stamp

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r}, bytes {self.start}-{self.stop}, {self.n_lines} lines)"

    def __len__(self) -> int:
        return self.n_lines

    def _raw_batches(self) -> Iterator[list[str]]:
        with self._open() as f:
            for offset, block in _line_blocks(f, self.start, self.stop, self.path):
                yield split_lines(decode_utf8(block, self.path, offset))

    def _compute_fingerprint(self) -> str:
        digest, last = hashlib.sha256(), b""
        with self._open() as f:  # the bytes themselves: they are the lines joined by "\n" already
            for _, block in _line_blocks(f, self.start, self.stop, self.path):
                digest.update(_lf_only(block))
                last = block[-1:]
        return _final_digest(digest, last)

    def split_at(self, k: int) -> tuple[FileSource, FileSource]:
        _check_split(k, self.n_lines)
        cut = self.start if k == 0 else self.stop if k == self.n_lines else self._after_newline(k)
        head = FileSource(self.path, self.start, cut, k, self._stamp)
        return head, FileSource(self.path, cut, self.stop, self.n_lines - k, self._stamp)

    def _after_newline(self, k: int) -> int:
        """The offset just past the ``k``-th ``"\\n"`` of the range (it has more than ``k`` lines)."""
        with self._open() as f:
            f.seek(self.start)
            pos, seen = self.start, 0
            while data := f.read(min(BLOCK_BYTES, self.stop - pos)):
                count = data.count(b"\n")
                if seen + count >= k:
                    i = -1
                    for _ in range(k - seen):
                        i = data.index(b"\n", i + 1)
                    return pos + i + 1
                seen, pos = seen + count, pos + len(data)
        raise LstmlmError(_changed(self.path))

    def _open(self) -> _CheckedFile:
        return _CheckedFile(self.path, self._stamp)


class _CheckedFile:
    """``open(path, "rb")`` that refuses a file changed since ``stamp`` and words read errors."""

    def __init__(self, path: Path, stamp: tuple[int, int]) -> None:
        self.path, self.stamp = path, stamp

    def __enter__(self) -> BinaryIO:
        try:
            self.file = self.path.open("rb")
            if _stamp(os.fstat(self.file.fileno())) != self.stamp:
                self.file.close()
                raise LstmlmError(_changed(self.path))
        except OSError as e:
            raise LstmlmError(_unreadable(self.path, e)) from None
        return self.file

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        self.file.close()
        if isinstance(error, OSError):
            raise LstmlmError(_unreadable(self.path, error)) from None


def scan_text_file(
    path: Path, *, count_text: int = 0, fingerprint: bool = False, on_progress: Progress | None = None
) -> tuple[FileSource, int]:
    """Check that ``path`` is readable, non-empty UTF-8 text and count its lines, in one pass.

    Returns the whole file as a source, and how many of its lines hold text, counted up
    to ``count_text``. ``fingerprint`` also fingerprints the file in the same pass (worth
    it when the whole file is a split). ``on_progress(bytes_read, file_size)`` follows the pass.
    """
    memo = _ScanMemo(path)
    known = memo.get(count_text, fingerprint)
    if known is not None:
        if on_progress is not None:
            on_progress(known[0].stop - known[0].start, known[0].stop - known[0].start)
        return known
    digest = hashlib.sha256() if fingerprint else None
    try:
        with path.open("rb") as f:
            status = os.fstat(f.fileno())
            start = len(_BOM) if f.read(len(_BOM)) == _BOM else 0
            if status.st_size <= start:
                raise LstmlmError(f"{path}: the file is empty")
            newlines, text_lines, last = 0, 0, b""
            for offset, block in _line_blocks(f, start, status.st_size, path, on_progress):
                text = decode_utf8(block, path, offset)
                newlines += block.count(b"\n")
                if text_lines < count_text:
                    text_lines += _text_lines(text, count_text - text_lines)
                if digest is not None:
                    digest.update(_lf_only(block))
                last = block[-1:]
    except OSError as e:
        raise LstmlmError(_unreadable(path, e)) from None
    source = FileSource(path, start, status.st_size, newlines + (last != b"\n"), _stamp(status))
    if digest is not None:
        source._fingerprint = _final_digest(digest, last)
    memo.put(source, status, text_lines, count_text)
    return source, text_lines


def cache_dir() -> Path:
    """``$LSTMLM_CACHE`` if set, else ``~/.cache/lstmlm``: token ids and scan results."""
    return Path(os.environ.get("LSTMLM_CACHE") or Path.home() / ".cache" / "lstmlm").expanduser()


class _ScanMemo:
    """What a scan of a text file found, kept while the file is unchanged.

    Keyed by the resolved path; valid while size, modification time (ns) and inode are
    those recorded, as build tools judge files. Lets a second run on a large unchanged
    corpus skip re-reading it (the token cache hit then takes milliseconds). Files under
    ``MEMO_MIN_BYTES`` are always read. A memo that cannot be read or written is ignored.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            resolved = str(path.resolve())
            self.status: os.stat_result | None = path.stat()
        except OSError:
            self.status = None
            return
        if self.status.st_size < MEMO_MIN_BYTES:  # cheap to re-read; and immune to coarse mtimes
            self.status = None
            return
        key = hashlib.sha256(resolved.encode("utf-8", "surrogatepass")).hexdigest()
        self.file = cache_dir() / "scans" / f"{key}.json"

    def _key(self, status: os.stat_result) -> list[int]:
        return [status.st_size, status.st_mtime_ns, status.st_ino]

    def get(self, count_text: int, fingerprint: bool) -> tuple[FileSource, int] | None:
        if self.status is None:
            return None
        try:
            memo = json.loads(self.file.read_text(encoding="utf-8"))
            if memo["stamp"] != self._key(self.status) or count_text > memo["count_text"]:
                return None
            if fingerprint and not memo["fingerprint"]:
                return None
            source = FileSource(
                self.path, memo["start"], self.status.st_size, memo["lines"], _stamp(self.status)
            )
            source._fingerprint = memo["fingerprint"] or None
            return source, min(memo["text_lines"], count_text)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, source: FileSource, status: os.stat_result, text_lines: int, count_text: int) -> None:
        if self.status is None:
            return
        memo = {
            "stamp": self._key(status),
            "start": source.start,
            "lines": len(source),
            "text_lines": text_lines,
            "count_text": count_text,
            "fingerprint": source._fingerprint or "",
        }
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.file, json.dumps(memo).encode("utf-8"))
        except OSError:
            pass  # a memo is an optimisation only


def _lf_only(block: bytes) -> bytes:
    return block.replace(b"\r\n", b"\n") if block.find(b"\r") >= 0 else block  # find is ~20x faster


def _final_digest(digest: Any, last: bytes) -> str:
    """The fingerprint of normalised blocks whose last byte was ``last`` (b"" for none)."""
    if last not in (b"", b"\n"):
        digest.update(b"\n")  # the last line gets its line end, as in text_bytes
    return digest.hexdigest()


def _text_lines(text: str, limit: int) -> int:
    found = 0
    for line in text.split("\n"):  # a "\r" left at a line end is whitespace to strip() anyway
        if line.strip():
            found += 1
            if found == limit:
                break
    return found


def _line_blocks(
    f: BinaryIO, start: int, stop: int, path: Path, on_progress: Progress | None = None
) -> Iterator[tuple[int, bytes]]:
    """Bytes ``[start, stop)`` of ``f`` as (offset, block); every block but the last ends with ``"\\n"``.

    A block holds whole lines only (a line longer than ``BLOCK_BYTES`` makes a longer
    block), so ``"\\r\\n"`` and UTF-8 sequences are never cut between blocks.
    """
    f.seek(start)
    offset, pos, pending = start, start, bytearray()
    while pos < stop:
        data = f.read(min(BLOCK_BYTES, stop - pos))
        if not data:
            raise LstmlmError(_changed(path))
        pos += len(data)
        cut = len(data) if pos == stop else data.rfind(b"\n") + 1
        if cut:
            block = bytes(pending + data[:cut]) if pending else data[:cut]
            pending = bytearray(data[cut:])
            yield offset, block
            offset += len(block)
        else:
            pending += data
        if on_progress is not None:
            on_progress(pos - start, stop - start)


def _stamp(status: os.stat_result) -> tuple[int, int]:
    return status.st_size, status.st_mtime_ns


def _changed(path: Path) -> str:
    return f"{path}: the file changed while lstmlm was reading it; run the command again"


def _unreadable(path: Path, error: OSError) -> str:
    return f"{path}: cannot read the file ({error.strerror or error})"


def _check_split(k: int, n: int) -> None:
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
        _check_split(k, self.n_lines)
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
