"""A line range of a UTF-8 text file as a ``LineSource``, and the one-pass scan that makes it.

``scan_text_file`` checks a file (readable, non-empty, UTF-8) and counts its lines in one
streaming pass, optionally fingerprinting it; a large unchanged file's scan is
remembered (``_ScanMemo``). ``FileSource`` reads its byte range back in blocks of whole
lines and refuses a file that changed since the scan.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lstmlm.data.sources import (
    LineSource,
    Progress,
    check_split,
    decode_utf8,
    split_lines,
)
from lstmlm.errors import LstmlmError
from lstmlm.files import cache_dir, write_atomic

BLOCK_BYTES = 1 << 18  # bytes read from a text file at a time (a block fits one batch)
MEMO_MIN_BYTES = 16 << 20  # files at least this large have their scan remembered (_ScanMemo)
_BOM = b"\xef\xbb\xbf"


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
        check_split(k, self.n_lines)
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
