"""The Python API (``lstmlm.load``) and ``lstmlm score``, on a tiny trained run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import lstmlm
from lstmlm.cli import app

from .conftest import TINY_FLAGS, write_tiny_corpus

runner = CliRunner()
SENTENCES = ["the cat sees the dog .", "the dog chases the bird .", "the frog hears the cow ."]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api")
    corpus = write_tiny_corpus(root / "corpus")
    out = root / "run"
    flags = [*TINY_FLAGS, "--eval-batch-size", "1"]
    result = invoke("train", "--data", str(corpus), "--out", str(out), *flags)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def lm(run_dir: Path) -> lstmlm.Model:
    return lstmlm.load(run_dir)


def test_generate_is_seeded_and_streams(lm: lstmlm.Model) -> None:
    text = lm.generate("the cat", max_tokens=12, seed=3)
    assert text == lm.generate("the cat", max_tokens=12, seed=3)
    assert "".join(lm.generate("the cat", max_tokens=12, seed=3, stream=True)) == text
    assert len(text.split()) >= 6
    samples = {lm.generate("the cat", max_tokens=12, seed=s, temperature=1.5) for s in range(6)}
    assert len(samples) > 1  # the seed matters
    assert lm.generate("the", max_tokens=5, temperature=0) == lm.generate(
        "the", max_tokens=5, temperature=0, seed=9
    )


def _forward_logprobs(lm: lstmlm.Model, ids: list[int]) -> list[float]:
    """log P of ids[1:] by a plain forward pass from the zero state (the test's own reference)."""
    x = torch.tensor(ids).unsqueeze(1)
    with torch.no_grad():
        logits, _ = lm.module(x[:-1], lm.module.init_state(1))
    return torch.log_softmax(logits[:, 0].double(), -1).gather(1, x[1:]).flatten().tolist()


def test_score_is_the_sum_of_token_logprobs(lm: lstmlm.Model) -> None:
    scores = lm.score(SENTENCES)
    eos = lm.tokenizer.eos_id
    for sentence, score in zip(SENTENCES, scores, strict=True):
        reference = _forward_logprobs(lm, [eos, *lm.tokenizer.encode(sentence), eos])
        assert [t.logprob for t in score.tokens] == pytest.approx(reference, abs=1e-5)
        assert score.logprob == pytest.approx(sum(t.logprob for t in score.tokens), abs=1e-9)
        assert [w.word for w in score.words] == sentence.split()
        words_and_eos = sum(w.logprob for w in score.words) + score.tokens[-1].logprob
        assert score.logprob == pytest.approx(words_and_eos, abs=1e-9)
        assert score.tokens[-1].token == "<eos>"
        for token in score.tokens:
            assert token.surprisal_bits == pytest.approx(-token.logprob / math.log(2))


def test_context_carries_the_state_and_equals_eval(lm: lstmlm.Model, run_dir: Path, tmp_path: Path) -> None:
    carried = lm.score(SENTENCES, context=True)
    fresh = lm.score(SENTENCES)
    assert carried[0].logprob == pytest.approx(fresh[0].logprob, abs=1e-6)  # the same start
    assert carried[1].logprob != pytest.approx(fresh[1].logprob, abs=1e-6)  # the state was carried
    total = sum(s.logprob for s in carried)
    tokens = sum(len(s.tokens) for s in carried)
    assert lm.perplexity("\n".join(SENTENCES)).perplexity == pytest.approx(
        math.exp(-total / tokens), rel=1e-6
    )
    # lstmlm eval over the same lines (a blank first line: the <eos> that starts the stream)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    (data / "test.txt").write_text("\n" + "\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = invoke("eval", str(run_dir), "--data", str(data), "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["tokens"] == tokens
    assert evaluation["loss"] * tokens == pytest.approx(-total, rel=1e-5)
    assert lm.perplexity(data / "test.txt").loss == pytest.approx(evaluation["loss"], rel=1e-6)


def test_next_token_probs(lm: lstmlm.Model) -> None:
    top = lm.next_token_probs("the cat sees", k=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] > 0
    assert top[0][0] == "the"  # the tiny language always continues "sees the"
    assert sum(p for _, p in lm.next_token_probs("the cat sees", k=10_000)) == pytest.approx(1.0, abs=1e-4)


def test_words_of_several_tokens_are_summed(lm: lstmlm.Model) -> None:
    class Splitting:  # a tokenizer that reads "dog." as "dog" "."
        def __init__(self, inner) -> None:
            self.inner = inner

        def encode(self, text: str) -> list[int]:
            return self.inner.encode(text.replace(".", " ."))

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

    from lstmlm.scoring.surprisal import score_lines

    [score] = score_lines(lm.module, Splitting(lm.tokenizer), ["the cat sees the dog."])
    assert [w.word for w in score.words] == ["the", "cat", "sees", "the", "dog."]
    assert [t.token for t in score.words[-1].tokens] == ["dog", "."]
    [plain] = lm.score(["the cat sees the dog ."])
    assert score.words[-1].logprob == pytest.approx(plain.words[-2].logprob + plain.words[-1].logprob)


def test_score_command_json_and_table(run_dir: Path, tmp_path: Path) -> None:
    result = invoke("score", str(run_dir), "--text", SENTENCES[0], "--text", SENTENCES[1], "--json")
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
    carried = invoke("score", str(run_dir), "--file", str(stimuli), "--context", "--json")
    lines = [json.loads(line) for line in carried.stdout.splitlines()]
    assert len(lines) == 3 and lines[1]["logprob"] != rows[1]["logprob"]
    table = invoke("score", str(run_dir), "--text", "the cat sees the zebra .")
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
def test_score_bad_input_is_one_line(run_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke("score", str(run_dir), *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_load_errors(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(lstmlm.LstmlmError, match="not found"):
        lstmlm.load(tmp_path / "missing")
    with pytest.raises(lstmlm.LstmlmError, match="best' or 'last"):
        lstmlm.load(run_dir, weights="newest")  # type: ignore[arg-type]
    assert "step 60" in repr(lstmlm.load(run_dir, weights="last"))


def test_readme_example_runs(run_dir: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nimport lstmlm\n")
    example = readme[start + len("```python\n") : readme.index("```", start + 10)]
    namespace: dict = {}
    exec(
        example.replace('"runs/demo"', repr(str(run_dir))).replace("The keys to the cabinet", "the cat"),
        namespace,
    )
