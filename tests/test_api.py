"""The Python API (``lstmlm.load``) on a tiny trained run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import lstmlm
from tests.conftest import ROOT, SENTENCES, invoke, train_tiny_run_once


@pytest.fixture(scope="module")
def api_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run with ``--eval-batch-size 1``: ``eval`` then reads a split as one stream, the
    state carried throughout, as ``Model.score(context=True)`` does. (With the default 10
    streams, ``eval`` of the 3-line split below scores 10 of its 21 tokens.)"""
    return train_tiny_run_once(tmp_path_factory, "api", "--eval-batch-size", "1")


@pytest.fixture(scope="module")
def lm(api_run: Path) -> lstmlm.Model:
    return lstmlm.load(api_run)


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


def test_context_carries_the_state_and_equals_eval(lm: lstmlm.Model, api_run: Path, tmp_path: Path) -> None:
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
    result = invoke("eval", str(api_run), "--data", str(data), "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    assert evaluation["tokens"] == tokens
    assert evaluation["loss"] * tokens == pytest.approx(-total, rel=1e-5)
    assert lm.perplexity(data / "test.txt").loss == pytest.approx(evaluation["loss"], rel=1e-6)
    # Model.evaluate is eval's own library call: the same object, field for field
    from_python = lm.evaluate("test", data)
    assert from_python == {k: v for k, v in evaluation.items() if k not in ("run", "weights", "step")}
    with_cache = lm.evaluate("test", data, cache=lstmlm.CacheSettings(window=5))
    assert with_cache["perplexity"] == from_python["perplexity"] and "cache" in with_cache


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


def test_load_errors(tmp_path: Path, api_run: Path) -> None:
    with pytest.raises(lstmlm.LstmlmError, match="not found"):
        lstmlm.load(tmp_path / "missing")
    with pytest.raises(lstmlm.LstmlmError, match="best' or 'last"):
        lstmlm.load(api_run, weights="newest")  # type: ignore[arg-type]
    assert "step 60" in repr(lstmlm.load(api_run, weights="last"))


def test_readme_example_runs(api_run: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nimport lstmlm\n")
    example = readme[start + len("```python\n") : readme.index("```", start + 10)]
    namespace: dict = {}
    exec(
        example.replace('"runs/demo"', repr(str(api_run))).replace("The keys to the cabinet", "the cat"),
        namespace,
    )
