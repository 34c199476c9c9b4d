"""``lstmlm.train(...)``: the CLI's options from Python, its checks, typed events, a loaded model."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import lstmlm
from lstmlm.runs.events import End, Event, Log, Start
from tests.conftest import file_digests

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = {"emsize": 16, "nhid": 16, "nlayers": 1, "bptt": 8, "batch_size": 4, "max_steps": 12, "log_every": 4}


def test_train_returns_the_run_loaded_and_reports_typed_events(tiny_corpus: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    lm = lstmlm.train(data=tiny_corpus, out=tmp_path / "run", on_event=events.append, **TINY)
    assert isinstance(lm, lstmlm.Model)
    assert lm.run.config.model.nhid == 16 and lm.run.config.train.max_steps == 12
    kinds = [type(e) for e in events]
    assert kinds[0] is Start and kinds[-1] is End and kinds.count(Log) == 3
    assert isinstance(lm.generate("the", max_tokens=3, seed=1), str)


def test_the_same_options_as_the_cli_give_the_same_run(tiny_corpus: Path, tmp_path: Path) -> None:
    from tests.conftest import invoke

    lstmlm.train(data=str(tiny_corpus), out=tmp_path / "py", **TINY)
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.items()]
    result = invoke("train", "--data", str(tiny_corpus), "--out", str(tmp_path / "cli"), *flags)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "py" / "model.safetensors").read_bytes() == (
        tmp_path / "cli" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hidden": 16}, r"unknown option 'hidden'"),
        ({"seed": 1.5}, r"lstmlm.train \[train\]: seed must be an integer \(got 1.5\)"),
        ({"cell": "lstmx"}, r"cell must be one of"),
        ({"threads": 0}, r"threads must be a whole number"),
        ({"resume": True}, r"nothing to resume"),
    ],
)
def test_bad_options_are_one_line_errors_and_write_nothing(
    tiny_corpus: Path, tmp_path: Path, options: dict, message: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(lstmlm.LstmlmError, match=message) as caught:
        lstmlm.train(data=tiny_corpus, out=out, **{**TINY, **options})
    assert "\n" not in str(caught.value)
    assert not out.exists()


def test_an_existing_run_is_refused_resumed_or_replaced(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    lstmlm.train(data=tiny_corpus, out=out, **TINY)
    before = file_digests(out)
    with pytest.raises(lstmlm.LstmlmError, match="already holds a run"):
        lstmlm.train(data=tiny_corpus, out=out, **TINY)
    assert file_digests(out) == before
    lm = lstmlm.train(out=out, resume=True, max_steps=16)
    assert lm.run.config.train.max_steps == 16


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    marker = "<!-- tested: tests/test_train_from_python.py runs this block -->"
    block = re.search(re.escape(marker) + r"\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "the README's training example is gone"
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"step 60: valid ppl \d", printed) and "train ppl" in printed
    assert (tmp_path / "runs" / "from-python" / "best.safetensors").is_file()
    assert os.listdir(tmp_path) == ["runs"]


def test_notices_point_at_the_callers_line(trained_run: Path, tmp_path: Path) -> None:
    """Without ``on_notice`` a fine-tuning's notice is a ``LstmlmNotice`` warning at this file's call."""
    text = tmp_path / "new.txt"
    text.write_text("the cat sat on the mat .\n" * 60, encoding="utf-8")
    with pytest.warns(lstmlm.LstmlmNotice, match="fine-tuning from") as caught:
        lstmlm.train(
            init_from=trained_run, data=text, out=tmp_path / "tuned", max_steps=4, bptt=8, batch_size=4
        )
    assert all(
        Path(w.filename) == Path(__file__) for w in caught if issubclass(w.category, lstmlm.LstmlmNotice)
    )
