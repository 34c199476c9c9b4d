"""Bad input, from any command, gives one clear line and exit 1; so does a full disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lstmlm.runs import folder as run_folder
from tests.cli.bad_inputs import bad_inputs
from tests.conftest import invoke, make_untrained_run


def test_bad_input_gives_one_line_and_exit_1(tiny_corpus: Path, tmp_path: Path) -> None:
    for args, expected in bad_inputs(tmp_path, tiny_corpus):
        result = invoke(*args)
        where = " ".join(args)
        assert result.exit_code == 1, f"{where}: exit {result.exit_code}\n{result.output}{result.stderr}"
        assert expected in result.stderr, f"{where}: {result.stderr!r}"
        assert len(result.stderr.strip().splitlines()) == 1, f"{where}: {result.stderr!r}"
        assert "Traceback" not in result.output + result.stderr, where


def fail_writes_under(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a full disk: fsync of any file under ``folder`` fails with ENOSPC."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if folder.resolve() in Path(os.readlink(f"/proc/self/fd/{fd}")).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_full_disk_gives_one_line_and_leaves_the_run_intact(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = make_untrained_run(tmp_path / "run", tiny_corpus)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fail_writes_under(out, monkeypatch)
    result = invoke("train", "--out", str(out), "--resume", "--max-steps", "5")
    assert result.exit_code == 1, result.output + result.stderr
    error = f"error: cannot write {out / run_folder.CONFIG}: No space left on device"
    assert result.stderr.strip().splitlines()[-1] == error  # after the "no checkpoint yet" warning
    assert "Traceback" not in result.output + result.stderr
    assert {
        p.name: p.read_bytes() for p in out.iterdir() if p.name != run_folder.LOCK
    } == before  # no temp files
