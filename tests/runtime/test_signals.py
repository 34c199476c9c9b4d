"""SIGINT and SIGTERM while ``train`` prepares its data stop it at once, with one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import TINY_FLAGS, error_lines, write_tiny_file

STAGE_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from lstmlm.cli import train_display
    from lstmlm.cli import main

    stage, signum = sys.argv[1], getattr(signal, sys.argv[2])
    real = train_display.TrainDisplay.data

    def data(self, name, done, total):
        if name == stage and done:
            os.kill(os.getpid(), signum)
        return real(self, name, done, total)

    train_display.TrainDisplay.data = data
    train_display.TrainDisplay.live = property(lambda self: True, lambda self, value: None)
    sys.argv = ["lstmlm", "train", *sys.argv[3:]]
    main()
    """
)


@pytest.mark.parametrize(
    ("stage", "name", "code"),
    [
        ("read", "SIGTERM", 143),
        ("tokenizer", "SIGINT", 130),
        ("tokenizer", "SIGTERM", 143),
        ("encode train", "SIGTERM", 143),
    ],
)
def test_a_signal_during_data_preparation_stops_at_once(
    stage: str, name: str, code: int, tmp_path: Path
) -> None:
    corpus = write_tiny_file(tmp_path / "corpus.txt", 20_000, seed=1)
    out = tmp_path / "run"
    args = ["--data", str(corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-c", STAGE_KILLER, stage, name, *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == code, result.stderr
    assert error_lines(result) == [f"error: stopped by {name}"]
    assert not out.exists()
