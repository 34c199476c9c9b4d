"""Every command on a mixture-of-softmaxes run (``--softmax mos``, Yang et al. 2018): train and
resume, eval (static, dynamic, cache), generate, score, agreement, inspect, and fine-tuning
with the vocabulary extended. Export parity is in tests/export/test_formats.py (``OPTIONS``),
the bad option values in tests/cli/bad_inputs.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from tests.conftest import SENTENCES, invoke, train_tiny_run, train_tiny_run_once
from tests.training.test_init_from import fine_tuned_model, make_parent, new_text, plan

# tied with emsize 12 != nhid 16: the experts' projections map 16 -> 12 units
MOS = ["--softmax", "mos", "--mos-experts", "3", "--emsize", "12"]


@pytest.fixture(scope="module")
def mos_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """READ-ONLY: a tiny tied mixture-of-softmaxes run (``TINY_FLAGS``, 60 steps)."""
    return train_tiny_run_once(tmp_path_factory, "mos", *MOS)


def test_eval_learns_and_dynamic_evaluation_and_the_cache_run(mos_run: Path) -> None:
    config = json.loads((mos_run / "config.json").read_text())["model"]
    assert (config["softmax"], config["mos_experts"], config["tied"]) == ("mos", 3, True)
    result = invoke("eval", str(mos_run), "--json", "--dynamic", "--cache")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert 1.0 < scores["perplexity"] < config["ntoken"] / 2  # it learned from the tiny grammar
    for method in (scores["dynamic"], scores["cache"]):
        assert 1.0 < method["perplexity"] < config["ntoken"] / 2


def test_generate_inspect_and_agreement_run(mos_run: Path, tmp_path: Path) -> None:
    def sample(seed: str) -> str:
        result = invoke("generate", str(mos_run), "--prompt", "the cat", "--seed", seed, "--max-tokens", "12")
        assert result.exit_code == 0, result.output
        return result.stdout

    assert sample("4") == sample("4")
    assert invoke("inspect", str(mos_run), "--text", SENTENCES[0]).exit_code == 0
    suite = tmp_path / "pairs.jsonl"
    pair = {"sentence_good": SENTENCES[0], "sentence_bad": "the cat the sees dog .", "kind": "order"}
    suite.write_text(json.dumps(pair) + "\n")
    agreement = invoke("agreement", str(mos_run), "--suite", str(suite), "--json")
    assert agreement.exit_code == 0, agreement.output


def test_score_gives_log_probabilities_of_the_mixture(mos_run: Path) -> None:
    from lstmlm.runs.load import load_run

    result = invoke("score", str(mos_run), "--text", SENTENCES[0], "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    run = load_run(mos_run, best=True)
    eos = run.tokenizer.eos_id
    ids = torch.tensor([eos, *run.tokenizer.encode(SENTENCES[0]), eos]).unsqueeze(1)  # as score reads a line
    with torch.no_grad():
        log_probs, _ = run.model(ids[:-1], None)  # the mixture's own log-probabilities
    expected = log_probs[:, 0].gather(1, ids[1:]).sum().item()
    # the same fp32 numbers summed in another order: ~1e-6, well under 1e-4 of a ~6 nat sum
    assert row["logprob"] == pytest.approx(expected, abs=1e-4)
    assert all(t["logprob"] < 0 for t in row["tokens"])


def test_resume_continues_a_mos_run(tiny_corpus: Path, tmp_path: Path) -> None:
    out = train_tiny_run(tmp_path / "run", tiny_corpus, "--max-steps", "20", *MOS)
    resumed = invoke("train", "--out", str(out), "--resume", "--max-steps", "30")
    assert resumed.exit_code == 0, resumed.output
    assert ckpt.read_weights(out / run_folder.MODEL)[1] == 30


@pytest.mark.parametrize("tied", [True, False])
def test_extend_grows_the_output_rows_of_a_mos_parent(tiny_corpus: Path, tmp_path: Path, tied: bool) -> None:
    parent_dir = make_parent(tmp_path / "parent", tiny_corpus, softmax="mos", mos_experts=2, tied=tied)
    config = plan(tmp_path / "new", parent_dir, new_text(tmp_path / "text"), vocab="extend")
    parent, model, tokenizer = fine_tuned_model(config)
    old, _ = ckpt.read_weights(parent_dir / run_folder.MODEL)
    rows = ["encoder.weight", "decoder.bias"] + ([] if tied else ["decoder.weight"])
    state, n = model.state_dict(), parent.tokenizer.vocab_size
    assert tokenizer.vocab_size == n + 2 and set(rows) <= set(old)
    for key in rows:
        assert state[key].shape[0] == n + 2
        assert torch.equal(state[key][:n], old[key]), key
        assert torch.equal(state[key][n], old[key].mean(dim=0)), key  # ULMFiT's mean row
    for key in old.keys() - set(rows):  # prior and projections do not depend on the vocabulary
        assert torch.equal(state[key], old[key]), key
    assert math.isclose(model.logits(torch.zeros(1, 16)).exp().sum().item(), 1.0, abs_tol=1e-5)
