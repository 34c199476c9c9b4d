"""Several text files read as one text: a folder's files, a pattern's matches, ``ConcatSource``.

The files of a folder are its regular files whose names do not start with a dot, not
those in subfolders; a pattern (``shards/*.txt``, ``corpus/**/*.txt``) is expanded by
lstmlm, so it works quoted and on every shell. Both come in name order with numbers
compared by value (``part-2`` before ``part-10``). Empty files add no lines.

``scan_files`` checks every file in one streaming pass (``scan_text_file``) and joins
them as a ``ConcatSource``: each file's lines, file after file, read lazily, so a
folder of shards is never held in memory.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from lstmlm.config.loading import is_pattern
from lstmlm.data.sources import LineSource, ListSource, Progress, check_split
from lstmlm.data.text_file import scan_text_file
from lstmlm.errors import LstmlmError

_DIGITS = re.compile(r"(\d+)")


def name_order(path: Path | str) -> list[str | int]:
    """Sort key: the name with its runs of digits as numbers (``part-2`` before ``part-10``)."""
    parts = _DIGITS.split(str(path))
    # split() alternates text and digits starting with text, so equal positions hold equal types
    return [int(part) if i % 2 else part for i, part in enumerate(parts)]


def folder_files(folder: Path) -> list[Path]:
    """The folder's text files in name order (see the module docstring), or a user error."""
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        raise LstmlmError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    visible = [p for p in entries if not p.name.startswith(".")]
    files = sorted((p for p in visible if p.is_file()), key=name_order)
    if files:
        return files
    if not visible:
        raise LstmlmError(f"{folder}: the folder is empty, no text to read")
    raise LstmlmError(
        f"{folder}: no text files directly in this folder, only subfolders; "
        f"pass a pattern for the files inside them, e.g. --data '{folder}/**/*.txt'"
    )


def pattern_files(pattern: str, option: str = "--data") -> list[Path]:
    """The files ``pattern`` matches, in name order; no match or a matched folder is a user error."""
    matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True), key=name_order)
    if not matches:
        raise LstmlmError(f"{option} {pattern}: no file matches this pattern")
    folders = [m for m in matches if os.path.isdir(m)]
    if folders:
        raise LstmlmError(
            f"{option} {pattern}: the pattern matches the folder {folders[0]}; "
            "a pattern must match text files only (e.g. end it with /*.txt)"
        )
    return [Path(m) for m in matches]


def local_files(data: str, option: str = "--data") -> list[Path]:
    """The text files ``data`` names: a file, a folder's files or a pattern's matches."""
    path = Path(data).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return folder_files(path)
    if path.exists():
        raise LstmlmError(f"{option} {data}: not a regular file or folder")
    if is_pattern(data):
        return pattern_files(data, option)
    raise LstmlmError(f"{option} {data}: no such file or folder")


def scan_files(
    files: Sequence[Path],
    *,
    count_text: int = 0,
    fingerprint: bool = False,
    on_progress: Progress | None = None,
) -> tuple[LineSource, int]:
    """Check each file and join them (see ``scan_text_file``); among several, empty files are left out.

    Returns the text and how many of its lines hold text, counted up to ``count_text``.
    ``fingerprint`` fingerprints a single file in the same pass (a join's fingerprint is
    the joined text's, computed when asked). ``on_progress(bytes_read, total_bytes)`` runs
    over all the files.
    """
    if len(files) == 1:
        return scan_text_file(
            files[0], count_text=count_text, fingerprint=fingerprint, on_progress=on_progress
        )
    sizes = [_size(file) for file in files]
    total, before, text_lines = sum(sizes), 0, 0
    parts: list[LineSource] = []
    for file, size in zip(files, sizes, strict=True):
        if size == 0:
            continue  # a file with no bytes has no lines: nothing to join
        report = None if on_progress is None else _offset_progress(on_progress, before, total)
        source, found = scan_text_file(file, count_text=count_text - text_lines, on_progress=report)
        parts.append(source)
        text_lines += found
        before += size
    if not parts:
        raise LstmlmError(f"{files[0]} and the {len(files) - 1:,} other files are all empty: no text to read")
    return concat(parts), text_lines


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise LstmlmError(f"{path}: cannot read the file ({e.strerror or e})") from None


def _offset_progress(on_progress: Progress, before: int, total: int) -> Progress:
    return lambda done, _: on_progress(before + done, total)


def concat(parts: Sequence[LineSource]) -> LineSource:
    """``parts`` one after the other; one part is itself, none is an empty list."""
    kept = [part for part in parts if len(part)]
    if len(kept) == 1:
        return kept[0]
    return ConcatSource(kept) if kept else ListSource([])


class ConcatSource(LineSource):
    """The lines of several sources, one after the other (each file's lines, then the next's).

    Its fingerprint is the joined text's, so shards cut at line ends from one file give the
    fingerprint of that file's lines.
    """

    def __init__(self, parts: Sequence[LineSource]) -> None:
        self.parts = list(parts)
        self.n_lines = sum(len(part) for part in self.parts)

    def __repr__(self) -> str:
        return f"ConcatSource({len(self.parts)} parts, {self.n_lines} lines)"

    def __len__(self) -> int:
        return self.n_lines

    def _raw_batches(self) -> Iterator[list[str]]:
        for part in self.parts:
            yield from part._raw_batches()

    def split_at(self, k: int) -> tuple[LineSource, LineSource]:
        check_split(k, self.n_lines)
        before = 0
        for i, part in enumerate(self.parts):
            if k <= before + len(part):
                head, tail = part.split_at(k - before)
                return concat([*self.parts[:i], head]), concat([tail, *self.parts[i + 1 :]])
            before += len(part)
        return concat(self.parts), ListSource([])  # k == 0 with no parts
