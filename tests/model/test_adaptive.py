"""The adaptive softmax: exact log-probabilities, PyTorch's own module as the reference, tying,
and every command on an adaptive run (train, resume, eval, generate, agreement, inspect)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from lstmlm.config import ModelConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.adaptive import AdaptiveSoftmax
from lstmlm.model.lm import LanguageModel
from tests.conftest import TINY_FLAGS, invoke, train_tiny_run

ADAPTIVE = ["--softmax", "adaptive", "--cutoffs", "4,10"]


def adaptive_model(ntoken: int, size: int, cutoffs: str, *, tied: bool) -> LanguageModel:
    cfg = ModelConfig(ntoken=ntoken, emsize=size, nhid=size, tied=tied, softmax="adaptive", cutoffs=cutoffs)
    return LanguageModel(cfg)


@pytest.mark.parametrize("tied", [True, False])
def test_log_probabilities_sum_to_one_and_the_loss_is_their_target_entry(tied: bool, seeded: None) -> None:
    model = LanguageModel(
        ModelConfig(ntoken=40, emsize=12, nhid=12, tied=tied, softmax="adaptive", cutoffs="5,17")
    )
    model.eval()
    x, y = torch.randint(0, 40, (6, 3)), torch.randint(0, 40, (6, 3))
    log_probs, _ = model(x, model.init_state(3))
    loss, _ = model(x, model.init_state(3), targets=y)
    assert log_probs.shape == (6, 3, 40)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(6, 3), rtol=0, atol=1e-5)
    torch.testing.assert_close(loss, -log_probs.gather(2, y.unsqueeze(-1)).squeeze(-1), rtol=0, atol=1e-6)


def test_equals_pytorchs_adaptive_softmax_with_the_same_weights(seeded: None) -> None:
    ours = AdaptiveSoftmax(16, 60, (8, 20), tied=False)
    reference = nn.AdaptiveLogSoftmaxWithLoss(16, 60, [8, 20], div_value=4.0, head_bias=True)
    with torch.no_grad():
        for bias in ours.tail_biases:  # PyTorch's tails have no bias
            bias.zero_()
        reference.head.weight.copy_(ours.head_weight)
        reference.head.bias.copy_(ours.head_bias)
        for k, tail in enumerate(reference.tail):
            tail[0].weight.copy_(ours.projections[k].weight)
            tail[1].weight.copy_(ours.tail_weights[k])
    x, y = torch.randn(50, 16), torch.randint(0, 60, (50,))
    torch.testing.assert_close(ours.log_prob(x), reference.log_prob(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.nll(x, y), -reference(x, y).output, rtol=1e-5, atol=1e-5)


def test_tied_rows_are_the_embedding_and_get_its_gradient(seeded: None) -> None:
    model = LanguageModel(
        ModelConfig(ntoken=30, emsize=8, nhid=8, tied=True, softmax="adaptive", cutoffs="6,12")
    )
    x, y = torch.randint(0, 30, (5, 2)), torch.full((5, 2), 25)  # every target in the last cluster
    loss, _ = model(x, model.init_state(2), targets=y)
    loss.mean().backward()
    assert model.encoder.weight.grad[25].abs().sum() > 0  # reached through the output rows
    assert "decoder.weight" not in model.state_dict()


def test_cutoffs_that_do_not_fit_are_one_line_errors() -> None:
    for cutoffs, words in (
        ("10,60", "do not fit the vocabulary"),
        ("10,5", "must increase"),
        ("a,5", "integers"),
    ):
        with pytest.raises(LstmlmError, match=words):
            ModelConfig(ntoken=50, softmax="adaptive", cutoffs=cutoffs)
    ModelConfig(ntoken=50, softmax="full", cutoffs="2000,10000")  # only an adaptive softmax needs them to fit


def test_every_command_works_on_an_adaptive_run(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_tiny_run(out, tiny_corpus, "--max-steps", "40", *ADAPTIVE)
    resumed = invoke("train", "--out", str(out), "--resume", "--max-steps", "60")
    assert resumed.exit_code == 0, resumed.output

    evaluation = json.loads(invoke("eval", str(out), "--json").stdout)
    vocab = json.loads((out / "config.json").read_text())["model"]["ntoken"]
    assert 1.0 < evaluation["perplexity"] < vocab / 2  # it learned from the tiny grammar

    def sample(seed: str) -> str:
        result = invoke("generate", str(out), "--prompt", "the cat", "--seed", seed, "--max-tokens", "15",
                        "--top-k", "5")  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.stdout

    assert sample("4") == sample("4")
    assert invoke("inspect", str(out), "--text", "the cat sees the dog .").exit_code == 0
    suite = tmp_path / "pairs.jsonl"
    pair = {
        "sentence_good": "the cat sees the dog .",
        "sentence_bad": "the cat the sees dog .",
        "kind": "order",
    }
    suite.write_text(json.dumps(pair) + "\n")
    agreement = invoke("agreement", str(out), "--suite", str(suite), "--by", "kind", "--json")
    assert agreement.exit_code == 0, agreement.output


def test_train_rejects_cutoffs_beyond_the_vocabulary(tiny_corpus: Path, tmp_path: Path) -> None:
    flags = [*TINY_FLAGS, "--softmax", "adaptive", "--cutoffs", "5,500"]
    result = invoke("train", "--data", str(tiny_corpus), "--out", str(tmp_path / "r"), *flags)
    assert result.exit_code == 1
    assert "--cutoffs 5,500 do not fit the vocabulary" in result.output
    assert "Traceback" not in result.output
