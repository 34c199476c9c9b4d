"""`lstmlm plot` (training curves from metrics.jsonl) and `lstmlm train --tensorboard`."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lstmlm.cli import app
from lstmlm.training import tensorboard as tb

from .conftest import TINY_FLAGS

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
SHORT = ["--max-steps", "20", "--eval-every", "10"]  # later flags win: a shorter tiny run


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def train(corpus: Path, out: Path, *extra: str):
    return invoke("train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, *SHORT, *extra)


@pytest.fixture
def trained_run(tiny_corpus: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    result = train(tiny_corpus, out)
    assert result.exit_code == 0, result.output + result.stderr
    return out


def one_line_error(result: Any, *words: str) -> None:
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_plot_one_and_two_runs(trained_run: Path, tmp_path: Path) -> None:
    figure = tmp_path / "figs" / "one.png"  # the missing folder is made
    result = invoke("plot", str(trained_run), "--out", str(figure))
    assert result.exit_code == 0, result.stderr
    assert f"wrote {figure}" in result.stdout
    assert figure.read_bytes().startswith(PNG) and figure.stat().st_size > 1000

    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    figure = tmp_path / "two.png"
    result = invoke(
        "plot", str(trained_run), str(other), "--out", str(figure), "--label", "a", "--label", "b"
    )
    assert result.exit_code == 0, result.stderr
    assert figure.read_bytes().startswith(PNG) and figure.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_plot_errors_are_one_line(trained_run: Path, tmp_path: Path) -> None:
    figure = str(tmp_path / "f.png")
    one_line_error(invoke("plot", str(tmp_path / "nope"), "--out", figure), "nope", "no such run folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(invoke("plot", str(empty), "--out", figure), "metrics.jsonl")
    (empty / "metrics.jsonl").write_text('{"event": "start", "step": 0}\n')
    one_line_error(invoke("plot", str(empty), "--out", figure), "no log or eval records")
    one_line_error(invoke("plot", str(trained_run), "--out", str(tmp_path / "f.jpg")), ".png")
    one_line_error(
        invoke("plot", str(trained_run), "--out", figure, "--label", "a", "--label", "b"), "--label"
    )
    assert not (tmp_path / "f.png").exists()


def test_tensorboard_missing_fails_before_training(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    out = tmp_path / "run"
    one_line_error(train(tiny_corpus, out, "--tensorboard"), "pip install tensorboard")
    assert not out.exists()


class FakeWriter:
    instances: list[FakeWriter] = []

    def __init__(self, log_dir: str, purge_step: int) -> None:
        self.log_dir, self.purge_step = log_dir, purge_step
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        FakeWriter.instances.append(self)

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self.scalars.append((tag, value, global_step))

    def close(self) -> None:
        self.closed = True


def test_tensorboard_routes_events_and_closes(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring without the package: which scalars at which steps, and the writer closed."""
    monkeypatch.setattr(tb, "summary_writer_class", lambda: FakeWriter)
    FakeWriter.instances.clear()
    out = tmp_path / "run"
    result = train(tiny_corpus, out, "--tensorboard")
    assert result.exit_code == 0, result.stderr
    assert "step" in result.stdout  # the display still gets the events
    (writer,) = FakeWriter.instances
    assert writer.log_dir == str(out / "tensorboard") and writer.purge_step == 1 and writer.closed
    tags = {tag for tag, _, _ in writer.scalars}
    assert tags == {"train/loss", "train/ppl", "train/lr", "train/tokens_per_s", "valid/loss", "valid/ppl"}
    assert sorted(step for tag, _, step in writer.scalars if tag == "valid/ppl") == [10, 20]


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard not installed")
def test_tensorboard_writes_event_files(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train(tiny_corpus, out, "--tensorboard")
    assert result.exit_code == 0, result.stderr
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
