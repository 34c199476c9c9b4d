"""Damaged run files, odd bytes and outputs onto inputs: one line and exit 1, never exit 2.

Each case here gave an internal error (exit 2), a silent failure or lost data in the
hostile-input sweep (``python -m scripts.experiments.input_sweep``).
"""

from __future__ import annotations

import json
from pathlib import Path

from lstmlm.config import replace
from lstmlm.runs import folder as run_folder
from tests.conftest import invoke, make_untrained_run


def one_error_line(args: list[str], expected: str) -> None:
    result = invoke(*args)
    where = " ".join(args)
    assert result.exit_code == 1, f"{where}: exit {result.exit_code}\n{result.output}{result.stderr}"
    assert expected in result.stderr, f"{where}: {result.stderr!r}"
    assert len(result.stderr.strip().splitlines()) == 1, f"{where}: {result.stderr!r}"


def test_files_of_a_run_that_do_not_belong_together(tiny_corpus: Path, tmp_path: Path) -> None:
    """A config.json whose vocabulary is not the tokenizer's (a huge one would exhaust memory
    building the model), and weights of another model: one line each."""
    run = make_untrained_run(tmp_path / "run", tiny_corpus)
    config = run_folder.read_config(run)
    run_folder.write_config(run, replace(config, model={"ntoken": 10**12}))
    one_error_line(["eval", str(run)], "the run's files do not belong together")
    other = make_untrained_run(tmp_path / "other", tiny_corpus)
    weights = json.loads((other / run_folder.CONFIG).read_text())
    weights["model"]["tied"], weights["model"]["emsize"] = False, 8
    (other / run_folder.CONFIG).write_text(json.dumps(weights))
    (run / run_folder.CONFIG).write_text((other / run_folder.CONFIG).read_text())
    one_error_line(["eval", str(run)], "weights do not fit the model in config.json")


def test_metrics_that_are_not_utf8_are_skipped_like_a_torn_line(
    trained_run_copy: Path, tmp_path: Path
) -> None:
    metrics = trained_run_copy / run_folder.METRICS
    metrics.write_bytes(b"\xa5\xff garbage\n" + metrics.read_bytes())
    result = invoke("plot", str(trained_run_copy), "--out", str(tmp_path / "curves.png"))
    assert result.exit_code == 0, result.output + result.stderr


def test_a_cache_window_beyond_any_memory_is_refused(trained_run: Path) -> None:
    one_error_line(
        ["eval", str(trained_run), "--cache", "--cache-window", str(2**70)], "--cache-window must be"
    )


def test_pair_scores_never_overwrite_the_suite(trained_run: Path, tmp_path: Path) -> None:
    suite = tmp_path / "pairs.jsonl"
    suite.write_text(json.dumps({"sentence_good": "the cat sees", "sentence_bad": "the cat see"}) + "\n")
    before = suite.read_bytes()
    one_error_line(
        ["agreement", str(trained_run), "--suite", str(suite), "--pairs", str(suite)], "--suite file"
    )
    assert suite.read_bytes() == before


def test_a_suite_with_a_byte_order_mark_is_read(trained_run: Path, tmp_path: Path) -> None:
    suite = tmp_path / "bom.jsonl"
    line = json.dumps({"sentence_good": "the cat sees", "sentence_bad": "the cat see"})
    suite.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n")
    result = invoke("agreement", str(trained_run), "--suite", str(suite), "--json")
    assert result.exit_code == 0, result.output + result.stderr


def test_arguments_that_are_not_utf8_are_one_line(trained_run: Path) -> None:
    """Bytes that are not UTF-8 in argv reach Python as lone surrogates (PEP 383)."""
    one_error_line(["generate", str(trained_run), "--prompt", "the \udcff cat"], "not valid UTF-8")
    one_error_line(["inspect", str(trained_run), "--text", "the \udcff cat"], "not valid UTF-8")
