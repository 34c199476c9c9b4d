"""Minimal-pair scoring: hand-set models, exact log-probabilities, suite errors, a real model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lstmlm.config import ModelConfig
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.scoring.accuracy import accuracy_by, wilson_interval
from lstmlm.scoring.pairs import (
    SuitePair,
    by_fields,
    group_fields,
    line_ids,
    next_word_probability,
    read_suite,
    resolve_suite,
    score_pairs,
    token_logprobs,
)

LINES = ["the key is here .", "the keys are here .", "the dog is old .", "the dogs are old ."]


def tokenizer():
    return train_tokenizer("word", LINES)


def biased_model(vocab: int, favourite: int) -> LanguageModel:
    """Output ignores the input: uniform except a strong preference for one token."""
    model = LanguageModel(ModelConfig(ntoken=vocab, emsize=8, nhid=8, nlayers=1, dropout=0.0, tied=False))
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
        model.decoder.bias[favourite] = 5.0
    return model.eval()


def pairs() -> list[SuitePair]:
    return [
        SuitePair("the key is here .", "the key are here .", {"construction": "simple", "attractors": 0}, 1),
        SuitePair("the dogs are old .", "the dogs is old .", {"construction": "simple", "attractors": 0}, 2),
        SuitePair("the keys are here .", "the keys is here .", {"construction": "pp", "attractors": 1}, 3),
    ]


def test_a_model_that_always_says_is_gets_is_pairs_right_and_are_pairs_wrong() -> None:
    tok = tokenizer()
    scores = score_pairs(biased_model(tok.vocab_size, tok.id("is")), tok, pairs())
    assert [s.sentence_correct for s in scores] == [True, False, False]
    assert [s.prefix_correct for s in scores] == [True, False, False]
    table = {
        (a.group["construction"], a.group["attractors"]): a
        for a in accuracy_by(scores, ["construction", "attractors"])
    }
    assert table[("simple", 0)].sentence_accuracy == 0.5 and table[("pp", 1)].sentence_accuracy == 0.0
    flipped = score_pairs(biased_model(tok.vocab_size, tok.id("are")), tok, pairs())
    assert [s.sentence_correct for s in flipped] == [False, True, True]


def test_sentence_logprob_is_the_sum_of_separately_computed_token_logprobs() -> None:
    tok = tokenizer()
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(ntoken=tok.vocab_size, emsize=8, nhid=8, nlayers=2, dropout=0.0)).eval()
    ids = line_ids(tok, "the dogs are here .")
    expected = 0.0
    for t in range(1, len(ids)):  # each token scored from scratch on its own prefix
        logits, _ = model(torch.tensor(ids[:t]).unsqueeze(1), model.init_state(1))
        expected += torch.log_softmax(logits[-1, 0], -1)[ids[t]].item()
    batched = token_logprobs(model, [ids, line_ids(tok, "the key is old ."), ids[:3]])
    assert math.isclose(sum(batched[0]), expected, rel_tol=1e-5)
    score = score_pairs(model, tok, [SuitePair("the dogs are here .", "the dogs is here .", {}, 1)])[0]
    assert math.isclose(score.good_logprob, expected, rel_tol=1e-5)
    p_are = next_word_probability(model, tok, "the dogs", "are")
    assert math.isclose(math.log(p_are), score.prefix_good, rel_tol=1e-5)


def test_unknown_words_are_counted() -> None:
    tok = tokenizer()
    model = biased_model(tok.vocab_size, tok.id("is"))
    score = score_pairs(model, tok, [SuitePair("the zebra is here .", "the zebra are here .", {}, 1)])[0]
    assert score.unk_tokens == 2


def test_wilson_interval_matches_the_formula() -> None:
    low, high = wilson_interval(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"sentence_good": "a b", "sentence_bad": "a c"}\n{not json\n', ":2: not valid JSON"),
        ('{"sentence_good": "a b"}\n', ":1: missing or empty 'sentence_bad'"),
        ('\n["a", "b"]\n', ":2: expected a JSON object"),
        ("", "the suite is empty"),
    ],
)
def test_malformed_suites_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_text(content)
    with pytest.raises(LstmlmError, match=message):
        read_suite(path)


def test_a_suite_written_by_anyone_is_read(tmp_path: Path) -> None:
    path = tmp_path / "blimp.jsonl"
    record = {"sentence_good": "x y", "sentence_bad": "x z", "UID": "anaphor", "field": "syntax"}
    path.write_text(json.dumps(record) + "\n")
    (pair,) = read_suite(path)
    assert pair.good == "x y" and pair.fields["UID"] == "anaphor"


# ---------------------------------------------------------------- grouping (--by)

BLIMP = {"UID": "anaphor_number_agreement", "linguistics_term": "anaphor_agreement", "field": "syntax",
         "pairID": "0"}  # fmt: skip


def test_grouping_defaults_to_the_fields_the_pairs_have() -> None:
    ours = pairs()
    assert group_fields(ours, None, "ours") == ["construction", "attractors"]
    blimp = [SuitePair("a b", "a c", BLIMP, 1)]
    assert group_fields(blimp, None, "blimp") == ["linguistics_term", "UID"]
    bare = [SuitePair("a b", "a c", {}, 1)]
    assert group_fields(bare, None, "bare") == []  # one row of all pairs
    assert group_fields(blimp, ["field"], "blimp") == ["field"]
    with pytest.raises(LstmlmError, match=r"--by: no pair in blimp has the field\(s\) construction"):
        group_fields(blimp, ["construction"], "blimp")  # typed: an unknown field is an error


def test_by_is_none_untyped_empty_for_all_pairs_and_refuses_an_empty_name() -> None:
    assert by_fields(None) is None
    assert by_fields("") == [] and by_fields("  ") == []
    assert by_fields("UID, field") == ["UID", "field"]
    with pytest.raises(LstmlmError, match="--by: an empty field name in ','"):
        by_fields(",")


def test_named_suites_are_the_shipped_files() -> None:
    """``--suite default`` and ``long-range`` read data/default's files, not a regenerated copy."""
    shipped = Path(__file__).resolve().parents[2] / "data" / "default"
    assert resolve_suite("default") == shipped / "agreement_suite.jsonl"
    assert resolve_suite("long-range") == shipped / "long_range_suite.jsonl"
