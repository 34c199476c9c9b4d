"""``lstmlm plot``: training curves from metrics.jsonl, one or several runs, errors in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import invoke, one_line_error

PNG = b"\x89PNG\r\n\x1a\n"


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
