"""``lstmlm train --tensorboard``: the same events as a TensorBoard log, or one line saying what
to install."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from lstmlm.training import tensorboard as tb
from tests.conftest import TINY_FLAGS, invoke, one_line_error

SHORT = ["--max-steps", "20", "--eval-every", "10"]  # later flags win: a shorter tiny run


def train(corpus: Path, out: Path, *extra: str):
    return invoke("train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, *SHORT, *extra)


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
