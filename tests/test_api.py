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
    whole = lm.evaluate(data=data / "test.txt")  # a file: all of it, as `lstmlm eval --data FILE`
    assert whole["split"] == "whole" and whole["loss"] == pytest.approx(evaluation["loss"], rel=1e-6)


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


# ---------------------------------------------------------------- bad calls: one line, a named LstmlmError


@pytest.fixture(scope="module")
def bad_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    (root / "latin1.txt").write_bytes("the café cat\n".encode("latin-1"))
    (root / "damaged").mkdir()
    (root / "damaged" / "config.json").write_text("{", encoding="utf-8")
    (root / "empty").mkdir()
    return {
        "latin1": root / "latin1.txt",
        "missing": root / "missing.txt",
        "folder": root,
        "no_run": root / "no_run",
        "damaged": root / "damaged",
        "not_a_run": root / "empty",
    }


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available here")

# A call (Python, run with ``lm``, ``run``: its folder, ``paths``: bad_paths), the class of
# LstmlmError it raises, and a fragment of its one-line message.
BAD_CALLS = [
    # lstmlm.load: the run folder, weights, device
    pytest.param("lstmlm.load(run, device='cuda')", "BadArgument", "no CUDA GPU", marks=no_cuda),
    pytest.param("lstmlm.load(run, device='mps')", "BadArgument", "MPS is not available", marks=no_mps),
    ("lstmlm.load(run, device='tpu')", "BadArgument", "device must be one of auto, cpu, cuda, mps"),
    ("lstmlm.load(run, device='cuda:99')", "BadArgument", "device cuda"),
    ("lstmlm.load(run, device='cpu:1')", "BadArgument", "device cpu:1 does not exist here (only cpu:0)"),
    ("lstmlm.load(run, device='auto:0')", "BadArgument", "auto takes no index"),
    ("lstmlm.load(run, device=0)", "BadArgument", "device must be a str"),
    ("lstmlm.load(run, weights='newest')", "BadArgument", "weights must be 'best' or 'last'"),
    ("lstmlm.load(3)", "BadArgument", "run_dir must be a str or a path"),
    ("lstmlm.load(paths['no_run'])", "RunNotFound", "run folder not found"),
    ("lstmlm.load(paths['not_a_run'])", "RunError", "not an lstmlm run folder"),
    ("lstmlm.load(paths['damaged'])", "RunError", "not valid JSON"),
    ("lstmlm.Model(run)", "BadArgument", "use lstmlm.load(RUN_DIR)"),
    # Model.generate: types and ranges, checked before any sampling (stream=True included)
    ("lm.generate(temperature=float('nan'))", "BadArgument", "temperature must be a finite number >= 0"),
    ("lm.generate(temperature=float('inf'))", "BadArgument", "temperature must be a finite number"),
    ("lm.generate(temperature=-0.5)", "BadArgument", "(got -0.5)"),
    ("lm.generate(temperature='1')", "BadArgument", "temperature must be a number"),
    ("lm.generate(top_p=float('nan'))", "BadArgument", "top_p must be in (0, 1]"),
    ("lm.generate(top_p=0)", "BadArgument", "top_p must be in (0, 1] (got 0)"),
    ("lm.generate(top_p=1.5)", "BadArgument", "(got 1.5)"),
    ("lm.generate(seed=2**70)", "BadArgument", "seed must be in 0..2**64-1"),
    ("lm.generate(seed=-1)", "BadArgument", "seed must be in 0..2**64-1 (got -1)"),
    ("lm.generate(seed=1.5)", "BadArgument", "seed must be an integer"),
    ("lm.generate(max_tokens=0)", "BadArgument", "max_tokens must be >= 1"),
    ("lm.generate(max_tokens=True)", "BadArgument", "max_tokens must be an integer (got True)"),
    ("lm.generate(max_tokens=2.5)", "BadArgument", "max_tokens must be an integer"),
    ("lm.generate(top_k=-1)", "BadArgument", "top_k must be >= 0"),
    ("lm.generate(top_k=1.5)", "BadArgument", "top_k must be an integer"),
    ("lm.generate(5)", "BadArgument", "prompt must be a str (got 5)"),
    ("lm.generate('the \\udcff')", "BadText", "prompt is not valid Unicode text"),
    ("lm.generate(stream='yes')", "BadArgument", "stream must be True or False"),
    ("lm.generate(temperature=float('nan'), stream=True)", "BadArgument", "temperature must be"),
    # Model.next_token_probs
    ("lm.next_token_probs('the', k=-1)", "BadArgument", "k must be >= 1"),
    ("lm.next_token_probs('the', k=0)", "BadArgument", "k must be >= 1 (got 0)"),
    ("lm.next_token_probs('the', k=2.0)", "BadArgument", "k must be an integer"),
    ("lm.next_token_probs('the', k=True)", "BadArgument", "k must be an integer"),
    ("lm.next_token_probs(None)", "BadArgument", "prefix must be a str"),
    # Model.score
    ("lm.score([])", "BadArgument", "texts is empty"),
    ("lm.score(['the cat', 3])", "BadArgument", "texts[1] must be a str"),
    ("lm.score(b'the cat')", "BadArgument", "texts must be a str or a list of str"),
    ("lm.score(7)", "BadArgument", "texts must be a str or a list of str"),
    ("lm.score(['the \\udcff'])", "BadText", "texts[0] is not valid Unicode text"),
    ("lm.score('the cat', context='yes')", "BadArgument", "context must be True or False"),
    # Model.perplexity
    ("lm.perplexity(paths['latin1'])", "BadText", "not UTF-8 text (byte 0xe9 at offset 7)"),
    ("lm.perplexity(paths['missing'])", "BadText", "file not found"),
    ("lm.perplexity(paths['folder'])", "BadText", "not a file"),
    ("lm.perplexity(3)", "BadArgument", "must be a str (text) or a path (a file)"),
    ("lm.perplexity(b'the cat')", "BadArgument", "text_or_file must be"),
    ("lm.perplexity('the \\udcff')", "BadText", "text is not valid Unicode text"),
    # Model.evaluate
    ("lm.evaluate(3)", "BadArgument", "split must be a str"),
    ("lm.evaluate('test', 3)", "BadArgument", "data must be a str or a path"),
    ("lm.evaluate(cache='x')", "BadArgument", "cache must be a lstmlm.CacheSettings or None"),
    ("lm.evaluate(dynamic=1)", "BadArgument", "dynamic must be a lstmlm.DynamicSettings or None"),
    ("lm.evaluate(tune_cache='yes')", "BadArgument", "tune_cache must be True or False"),
]


@pytest.mark.parametrize(("call", "kind", "fragment"), BAD_CALLS)
def test_bad_calls_raise_one_line_errors(
    call: str, kind: str, fragment: str, lm: lstmlm.Model, api_run: Path, bad_paths: dict[str, Path]
) -> None:
    with pytest.raises(lstmlm.LstmlmError) as caught:
        eval(call, {"lstmlm": lstmlm, "lm": lm, "run": api_run, "paths": bad_paths})
    assert type(caught.value) is getattr(lstmlm, kind)
    message = str(caught.value)
    assert fragment in message, message
    assert "\n" not in message and message == message.strip()


def test_error_classes_are_public_lstmlm_errors() -> None:
    from lstmlm import errors

    for name in ("RunError", "RunNotFound", "BadArgument", "BadText"):
        kind = getattr(lstmlm, name)
        assert kind is getattr(errors, name) and name in lstmlm.__all__ and kind.__doc__
        assert issubclass(kind, lstmlm.LstmlmError)
    assert issubclass(lstmlm.RunNotFound, lstmlm.RunError)


def test_arguments_at_their_limits_are_accepted(lm: lstmlm.Model, api_run: Path) -> None:
    import numpy as np

    for device in ("cpu", "cpu:0", "auto", torch.device("cpu")):
        assert isinstance(lstmlm.load(api_run, device=device).module, torch.nn.Module)
    text = lm.generate(
        "the", max_tokens=np.int64(3), seed=2**64 - 1, temperature=0, top_p=1, top_k=np.int32(2)
    )
    assert text == lm.generate("the", max_tokens=3, temperature=0.0)
    assert len(lm.next_token_probs("the", k=10**9)) == lm.tokenizer.vocab_size
    assert [s.text for s in lm.score(line for line in SENTENCES[:2])] == SENTENCES[:2]  # any iterable


def test_a_file_is_checked_in_blocks(
    lm: lstmlm.Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lstmlm.data.text_file

    monkeypatch.setattr(lstmlm.data.text_file, "BLOCK_BYTES", 3)  # the file is read in many blocks
    good = tmp_path / "good.txt"
    good.write_text("the café cat .\nthe dog é é .\n", encoding="utf-8")
    assert lm.perplexity(good).loss == lm.perplexity(good.read_text(encoding="utf-8")).loss
    for raw, offset in ((b"the cat \xff .", 8), (b"the caf\xc3", 7), (b"ab\xe2\x82(", 2)):
        good.write_bytes(raw)
        with pytest.raises(lstmlm.BadText, match=rf"byte 0x{raw[offset]:02x} at offset {offset}\)"):
            lm.perplexity(good)
