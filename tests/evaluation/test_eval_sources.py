"""What ``eval`` scores: all of a file or of stdin given as ``--data`` (one stream, as
``Model.perplexity`` reads a file), a split when ``--split`` asks for one, the run's own test
split without ``--data``; and every output says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lstmlm
from lstmlm.config import replace
from lstmlm.evaluation.perplexity import evaluate_split
from lstmlm.runs import folder as run_folder
from lstmlm.runs.load import load_run, run_split, trained_on
from tests.conftest import invoke, one_line_error, tiny_lines

TODAYS_KEYS = {
    "bits_per_byte",
    "bits_per_char",
    "loss",
    "perplexity",
    "run",
    "split",
    "step",
    "tokens",
    "weights",
}


@pytest.fixture
def held(tmp_path: Path) -> Path:
    """100 lines of other text, with a blank line and spaces around a line (score skips and strips them)."""
    lines = tiny_lines(100, seed=7)
    lines[10] = f"  {lines[10]}  "
    path = tmp_path / "held.txt"
    path.write_text("\n".join(lines[:50] + [""] + lines[50:]) + "\n", encoding="utf-8")
    return path


def eval_json(*args: str, input: str | bytes | None = None) -> dict:
    result = invoke("eval", *args, "--json", input=input)  # type: ignore[arg-type]  # CliRunner takes bytes too
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eval_of_a_file_scores_all_of_it_as_model_perplexity_does(trained_run: Path, held: Path) -> None:
    scored = eval_json(str(trained_run), "--data", str(held))
    lm = lstmlm.load(trained_run)
    lines = [line for line in held.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) == 100
    file_tokens = sum(len(lm.tokenizer.encode(line.strip())) + 1 for line in lines)  # each line and its <eos>
    reference = lm.perplexity(held)
    assert scored["tokens"] == file_tokens == reference.tokens
    assert scored["loss"] == pytest.approx(reference.loss, rel=1e-9)
    assert scored["perplexity"] == pytest.approx(reference.perplexity, rel=1e-9)
    assert set(scored) >= TODAYS_KEYS
    assert (scored["split"], scored["source"], scored["data"]) == ("whole", "data", str(held))
    assert scored["corpus"] == f"{held} (file: every line, one stream)"


def test_eval_reads_stdin_as_it_reads_a_file(trained_run: Path, held: Path) -> None:
    from_file = eval_json(str(trained_run), "--data", str(held))
    from_stdin = eval_json(str(trained_run), "--data", "-", input=held.read_text(encoding="utf-8"))
    assert (from_stdin["source"], from_stdin["data"], from_stdin["split"]) == ("stdin", "-", "whole")
    assert from_stdin["corpus"].startswith("stdin")
    for key in ("tokens", "loss", "perplexity"):
        assert from_stdin[key] == from_file[key]


def test_eval_split_of_a_file_is_that_split_as_before(trained_run: Path, held: Path) -> None:
    scored = eval_json(str(trained_run), "--data", str(held), "--split", "valid")
    run = load_run(trained_run)
    before = evaluate_split(run.model, run_split(run, "valid", str(held)), run.config, "valid", "word")
    assert scored["tokens"] == before.tokens and scored["loss"] == pytest.approx(before.loss, rel=1e-9)
    assert (scored["split"], scored["source"], scored["data"]) == ("valid", "data", str(held))
    assert "90/5/5" in scored["corpus"]
    assert scored["tokens"] < eval_json(str(trained_run), "--data", str(held))["tokens"]


def test_eval_of_the_runs_own_data_and_of_a_folder_says_so(trained_run: Path, tiny_corpus: Path) -> None:
    own = eval_json(str(trained_run))
    config = load_run(trained_run).config
    assert (own["split"], own["source"], own["data"]) == ("test", "run", config.data.data)
    assert own["corpus"].endswith("(folder)")
    folder = eval_json(str(trained_run), "--data", str(tiny_corpus))  # a folder: its test split, as before
    assert (folder["split"], folder["source"], folder["data"]) == ("test", "data", str(tiny_corpus))
    assert folder["tokens"] == own["tokens"]  # the same 40 test lines of the same generator


def test_eval_table_says_what_was_scored(trained_run: Path, held: Path) -> None:
    whole = invoke("eval", str(trained_run), "--data", str(held))
    assert whole.exit_code == 0, whole.output
    tokens = eval_json(str(trained_run), "--data", str(held))["tokens"]
    assert f"scored: all of {held} (file: every line, one stream), {tokens:,} tokens" in whole.stdout
    assert "whole" in whole.stdout  # the split column
    piped = invoke("eval", str(trained_run), "--data", "-", input=held.read_text(encoding="utf-8"))
    assert "scored: all of stdin" in piped.stdout
    own = invoke("eval", str(trained_run), "--split", "valid")
    assert "scored: the valid split of the run's own data, " in own.stdout


def test_eval_of_a_whole_text_carries_the_methods_over_one_stream(trained_run: Path, held: Path) -> None:
    scored = eval_json(
        str(trained_run), "--data", str(held), "--cache", "--cache-lambda", "0",
        "--dynamic", "--dynamic-method", "sgd", "--dynamic-lr", "0",
    )  # fmt: skip
    for method in (scored["cache"], scored["dynamic"], scored["dynamic"]["with_cache"]):
        assert method["tokens"] == scored["tokens"]
        # limits: static. The same fp32 products, grouped into other row blocks (MKL's sgemm
        # blocks by row count): each logit within a few ulp (~1e-7 relative), the mean loss
        # (~1) and so log(ppl) within ~1e-7
        assert method["perplexity"] == pytest.approx(scored["perplexity"], rel=1e-7)
    assert scored["tokens"] == lstmlm.load(trained_run).perplexity(held).tokens


def test_eval_warns_when_the_file_scored_whole_is_the_training_file(
    trained_run_copy: Path, held: Path
) -> None:
    config = run_folder.read_config(trained_run_copy)
    run_folder.write_config(trained_run_copy, replace(config, data={"data": str(held.resolve())}))
    assert trained_on(load_run(trained_run_copy), str(held))
    result = invoke("eval", str(trained_run_copy), "--data", str(held))
    assert result.exit_code == 0 and "the file this run was trained on" in result.stderr
    quiet = invoke("eval", str(trained_run_copy), "--data", str(held), "--split", "test")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (("--split", "whole"), None, ["--split whole", "file or stdin"]),
        (("--data", "-", "--split", "valid"), "the cat\n", ["--split valid", "stdin", "scored whole"]),
        (("--data", "-"), b"the cat \xff sees\n", ["stdin: not UTF-8 text (byte 0xff at offset 8)"]),
        (("--data", "-"), "\n  \n", ["nothing to score", "stdin"]),
    ],
)
def test_eval_bad_text_is_one_line(
    trained_run: Path, args: tuple[str, ...], stdin: object, words: list[str]
) -> None:
    one_line_error(invoke("eval", str(trained_run), *args, input=stdin), *words)  # type: ignore[arg-type]


def test_eval_of_a_glob_scores_every_file_and_two_data_are_refused(trained_run: Path, tmp_path: Path) -> None:
    """A quoted glob is the files it matches, all of them in name order; --data twice is one line."""
    shards = tmp_path / "shards"
    shards.mkdir()
    texts = ["the cat sees the dog", "a dog sees a cat", "the dog sees a cat"]
    for i, line in enumerate(texts):
        (shards / f"part-{i:03d}.txt").write_text(line + "\n")
    (tmp_path / "all.txt").write_text("".join(t + "\n" for t in texts))
    globbed = invoke("eval", str(trained_run), "--data", str(shards / "*.txt"), "--json")
    whole = invoke("eval", str(trained_run), "--data", str(tmp_path / "all.txt"), "--json")
    assert globbed.exit_code == 0 and whole.exit_code == 0, globbed.output + globbed.stderr
    assert json.loads(globbed.stdout)["tokens"] == json.loads(whole.stdout)["tokens"]
    assert json.loads(globbed.stdout)["loss"] == pytest.approx(json.loads(whole.stdout)["loss"], rel=1e-6)
    twice = invoke(
        "eval", str(trained_run), "--data", str(tmp_path / "all.txt"), "--data", str(tmp_path / "all.txt")
    )
    assert twice.exit_code == 1 and "give one --data" in twice.stderr
