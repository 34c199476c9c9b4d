"""Atomic file writes: a crash leaves either the old file or the new one, never a mix.

The data goes to a temp file in the target's folder (so the rename stays on one
filesystem), is flushed and fsynced, and is renamed over the target. Temp files are
named ``.NAME.*.tmp``; one left by a killed writer is garbage (``checkpoint`` sweeps them).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class WriteError(OSError):
    """An OS error while writing a file; ``filename`` is the file meant, not its temp file."""


def write_error(error: OSError, path: Path) -> WriteError:
    """``error`` (ENOSPC, EROFS, ...) restated as a failure to write ``path``."""
    return WriteError(error.errno, error.strerror or str(error), str(path))


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temp file next to ``path``; when the block succeeds it is fsynced and renamed over ``path``.

    On any failure the temp file is removed and ``path`` is left as it was; an OS error
    of the writing itself (no file of its own named) is raised as a ``WriteError``.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_error(e, path) from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError) and e.filename in (None, tmp):
            raise write_error(e, path) from e
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, the rename itself made durable (folder fsynced)."""
    with atomic_file(path) as f:
        f.write(data)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir() -> Path:
    """``$LSTMLM_CACHE`` if set, else ``~/.cache/lstmlm``: token ids, scan results, kernel choices."""
    return Path(os.environ.get("LSTMLM_CACHE") or Path.home() / ".cache" / "lstmlm").expanduser()
