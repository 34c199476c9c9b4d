"""``lstmlm score``: per-token and per-word log-probabilities of sentences, as JSON or a table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SENTENCES, invoke


def test_score_command_json_and_table(trained_run: Path, tmp_path: Path) -> None:
    result = invoke("score", str(trained_run), "--text", SENTENCES[0], "--text", SENTENCES[1], "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == SENTENCES[:2]
    for row in rows:
        assert set(row) == {"text", "logprob", "surprisal_bits", "tokens", "words"}
        assert set(row["words"][0]) == {"word", "logprob", "surprisal_bits", "tokens"}
        assert set(row["tokens"][0]) == {"token", "logprob", "surprisal_bits"}
        assert row["surprisal_bits"] == pytest.approx(sum(t["surprisal_bits"] for t in row["tokens"]))
    stimuli = tmp_path / "stimuli.txt"
    stimuli.write_text("\n".join(SENTENCES) + "\n\n", encoding="utf-8")
    carried = invoke("score", str(trained_run), "--file", str(stimuli), "--context", "--json")
    lines = [json.loads(line) for line in carried.stdout.splitlines()]
    assert len(lines) == 3 and lines[1]["logprob"] != rows[1]["logprob"]
    table = invoke("score", str(trained_run), "--text", "the cat sees the zebra .")
    assert table.exit_code == 0 and "zebra" in table.stdout and "log P =" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--text SENTENCE or --file FILE"),
        (("--text", "a", "--file", "x"), "--text SENTENCE or --file FILE"),
        (("--text", "   "), "nothing to score"),
        (("--file", "/no/such/file.txt"), "not found"),
    ],
)
def test_score_bad_input_is_one_line(trained_run: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke("score", str(trained_run), *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
