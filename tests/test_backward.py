"""``--direction backward``: a backward run is a forward run on the reversed text, bit for bit,
and the commands that read a run either score it reversed or refuse in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lstmlm
from lstmlm.config import ModelConfig
from lstmlm.data.direction import oriented, oriented_line
from lstmlm.errors import LstmlmError
from tests.conftest import events, invoke, one_line_error, train_tiny_run, write_tiny_file

EOS = 1


def reversed_text(text: str) -> str:
    """The lines in reverse order, each line's words reversed: what a backward model reads."""
    lines = text.splitlines()
    return "".join(" ".join(reversed(line.split())) + "\n" for line in reversed(lines))


def reverse_corpus(corpus: Path, out: Path) -> Path:
    out.mkdir()
    for file in corpus.iterdir():
        (out / file.name).write_text(reversed_text(file.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def test_oriented_reverses_all_but_the_final_eos() -> None:
    a, b, c, d = 10, 11, 12, 13
    ids = np.array([a, b, EOS, c, d, EOS], dtype=np.uint16)
    back = oriented(ids, "backward", EOS)
    assert back.tolist() == [d, c, EOS, b, a, EOS]
    assert back.dtype == ids.dtype
    assert oriented(ids, "forward", EOS) is ids
    assert oriented(np.array([a, b], dtype=np.uint16), "backward", EOS).tolist() == [b, a]
    assert oriented_line([a, b, c], "backward") == [c, b, a]


def test_a_config_without_direction_reads_forward() -> None:
    assert ModelConfig(ntoken=10).direction == "forward"
    with pytest.raises(LstmlmError, match="direction"):
        ModelConfig(ntoken=10, direction="sideways")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A backward run on the tiny corpus and a forward run on its reversed text, same seed."""
    from tests.conftest import cache_folder, write_tiny_corpus

    root = tmp_path_factory.mktemp("backward")
    corpus = write_tiny_corpus(root / "corpus")
    flipped = reverse_corpus(corpus, root / "flipped")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMLM_CACHE", str(cache_folder(tmp_path_factory)))
        backward = train_tiny_run(root / "backward", corpus, "--direction", "backward", "--seed", "3")
        forward = train_tiny_run(root / "forward", flipped, "--seed", "3")
    return {"backward": backward, "forward": forward, "corpus": corpus, "flipped": flipped}


def test_backward_run_equals_forward_run_on_reversed_text_bit_for_bit(runs: dict[str, Path]) -> None:
    backward, forward = runs["backward"], runs["forward"]
    # the same vocabulary (same counts), so the same ids: a backward run differs only in its order
    assert (backward / "tokenizer.json").read_text() == (forward / "tokenizer.json").read_text()
    assert json.loads((backward / "config.json").read_text())["model"]["direction"] == "backward"
    for name in ("model.safetensors", "best.safetensors"):
        a, b = load_file(backward / name), load_file(forward / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key  # exact: the same computation on the same ids
    losses = [[e["loss"] for e in events(run, "log")] for run in (backward, forward)]
    assert losses[0] == losses[1] and losses[0]
    valid = [[e["valid_loss"] for e in events(run, "eval")] for run in (backward, forward)]
    assert valid[0] == valid[1] and valid[0]


def test_eval_scores_the_reversed_stream(runs: dict[str, Path], tmp_path: Path) -> None:
    results = [invoke("eval", str(runs[name]), "--json") for name in ("backward", "forward")]
    assert all(r.exit_code == 0 for r in results), results[0].output + results[1].output
    ppl = [json.loads(r.stdout)["perplexity"] for r in results]
    assert ppl[0] == ppl[1]  # the test split reversed is the flipped corpus's test split
    text = write_tiny_file(tmp_path / "held.txt", 30, 9)
    flipped = tmp_path / "flipped.txt"
    flipped.write_text(reversed_text(text.read_text()), encoding="utf-8")
    whole = [
        invoke("eval", str(runs["backward"]), "--data", str(text), "--json"),
        invoke("eval", str(runs["forward"]), "--data", str(flipped), "--json"),
    ]
    assert [json.loads(r.stdout)["perplexity"] for r in whole][0] == json.loads(whole[1].stdout)["perplexity"]
    model = lstmlm.load(runs["backward"])
    assert model.perplexity(text).perplexity == lstmlm.load(runs["forward"]).perplexity(flipped).perplexity


def test_agreement_scores_sentences_right_to_left(runs: dict[str, Path], tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    pairs = [("the cat sees the dog .", "the cat see the dog ."), ("the dog likes the cow .", "dog the")]
    suite.write_text("".join(json.dumps({"sentence_good": g, "sentence_bad": b}) + "\n" for g, b in pairs))
    flipped = tmp_path / "flipped.jsonl"
    flipped.write_text(
        "".join(
            json.dumps({"sentence_good": reversed_text(g).strip(), "sentence_bad": reversed_text(b).strip()})
            + "\n"
            for g, b in pairs
        )
    )
    out = [tmp_path / "b.jsonl", tmp_path / "f.jsonl"]
    for run, file, pairs_out in (("backward", suite, out[0]), ("forward", flipped, out[1])):
        result = invoke(
            "agreement", str(runs[run]), "--suite", str(file), "--pairs", str(pairs_out), "--json"
        )
        assert result.exit_code == 0, result.output
    back, fwd = ([json.loads(line) for line in path.read_text().splitlines()] for path in out)
    for b, f in zip(back, fwd, strict=True):
        assert (b["good_logprob"], b["bad_logprob"]) == (f["good_logprob"], f["bad_logprob"])
        assert b["prefix_good_logprob"] is None  # the prefix rule reads left to right


@pytest.mark.parametrize(
    "args",
    [
        ("generate", "{run}", "--prompt", "the cat"),
        ("inspect", "{run}", "--text", "the cat sees the dog ."),
    ],
)
def test_commands_that_read_left_to_right_refuse_a_backward_run(runs: dict[str, Path], args: tuple) -> None:
    result = invoke(*(a.format(run=runs["backward"]) for a in args))
    one_line_error(result, "backward")


def test_api_refuses_left_to_right_methods_on_a_backward_run(runs: dict[str, Path]) -> None:
    model = lstmlm.load(runs["backward"])
    for call in (
        lambda: model.generate("the cat"),
        lambda: model.next_token_probs("the cat"),
    ):
        with pytest.raises(LstmlmError, match="backward"):
            call()


@pytest.mark.parametrize("context", [False, True])
def test_score_gives_each_word_given_the_words_to_its_right(runs: dict[str, Path], context: bool) -> None:
    lines = ["the cat sees the dog .", "the frog hears the cow ."]
    back = lstmlm.load(runs["backward"]).score(lines, context=context)
    # the forward run on the reversed text: the lines in reverse order, each reversed
    fwd = lstmlm.load(runs["forward"]).score(reversed_text("\n".join(lines)).splitlines(), context=context)[
        ::-1
    ]
    for b, f in zip(back, fwd, strict=True):
        assert b.logprob == pytest.approx(f.logprob, abs=1e-5)  # the same sums in another order
        assert [t.token for t in b.tokens] == [t.token for t in f.tokens[-2::-1]] + ["<eos>"]
        expected = [t.logprob for t in f.tokens[-2::-1]] + [f.tokens[-1].logprob]
        assert [t.logprob for t in b.tokens] == expected  # the same positions: exact
        assert [w.word for w in b.words] == b.text.split()
    result = invoke("score", str(runs["backward"]), "--text", lines[0], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["direction"] == "backward"


def test_a_backward_run_exports_with_its_direction_in_the_sidecar(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "lm.pt"
    result = invoke("export", str(runs["backward"]), "--format", "torchscript", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "lm.pt.json").read_text())["model"]["direction"] == "backward"


def test_the_direction_cannot_change_on_resume(tiny_corpus: Path) -> None:
    from lstmlm.config import replace
    from lstmlm.training.launch import resume_conflicts
    from tests.conftest import tiny_config

    saved = tiny_config(tiny_corpus)
    assert resume_conflicts(saved, replace(saved, model={"direction": "backward"})) == [
        "model.direction ('forward' -> 'backward')"
    ]


def test_info_says_a_run_reads_backward(runs: dict[str, Path]) -> None:
    backward = invoke("info", str(runs["backward"]))
    assert backward.exit_code == 0, backward.output
    assert "reads backward" in " ".join(backward.stdout.split())
    assert "reads backward" not in " ".join(invoke("info", str(runs["forward"])).stdout.split())
