"""The long-range suite: pronouns agreeing across whole sentences, distances counted in tokens."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lstmlm.config import ModelConfig
from lstmlm.data.grammar.demo_prompts import demo_prompts
from lstmlm.data.grammar.lexicon import noun_features, pronoun_features
from lstmlm.data.grammar.sentences import SPLIT_SIZES, spread
from lstmlm.data.grammar.suites import LONG_RANGE_BETWEEN, generate_long_range_pairs
from lstmlm.data.grammar.words import NEUTER
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.model.lm import LanguageModel, detach_state
from lstmlm.scoring.accuracy import accuracy_by, distance_bin
from lstmlm.scoring.pairs import SuitePair, differing_word, line_ids, score_pairs, token_logprobs
from lstmlm.scoring.suites import load_suite
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate_long_range_pairs(6, seed=0)


def test_the_distance_is_the_tokens_between_antecedent_and_pronoun(records: list[dict]) -> None:
    for record in records:
        good, bad = record["sentence_good"].split(), record["sentence_bad"].split()
        target = differing_word(record["sentence_good"], record["sentence_bad"])
        assert target is not None
        antecedent = good.index(".") - 2  # "The (adjective) noun verb ." opens every discourse
        assert noun_features(good[antecedent]) is not None, good
        assert record["distance"] == target - antecedent - 1
        assert good.count(".") == record["sentences_between"] + 2
        assert pronoun_features(good[target]) and pronoun_features(bad[target])


def test_nothing_in_between_can_be_the_swapped_pronouns_antecedent(records: list[dict]) -> None:
    for record in records:
        good = record["sentence_good"].split()
        target = differing_word(record["sentence_good"], record["sentence_bad"])
        between = good[good.index(".") + 1 : target]
        features = [noun_features(word) for word in between]
        assert all(f is None or f[1] == NEUTER for f in features), record["sentence_good"]
        assert not any(pronoun_features(word) for word in between)


def test_the_shipped_suite_spans_a_few_to_over_two_hundred_tokens() -> None:
    pairs, label = load_suite("long-range")  # --suite long-range
    assert label.endswith("long_range_suite.jsonl")
    assert [p.good for p in pairs] == [r["sentence_good"] for r in generate_long_range_pairs(20, seed=0)]
    distances = [p.fields["distance"] for p in pairs]
    assert min(distances) < 10 and max(distances) > 200
    assert {p.fields["sentences_between"] for p in pairs} == set(LONG_RANGE_BETWEEN)


def test_by_distance_bins() -> None:
    assert [distance_bin(d) for d in (0, 9, 10, 34, 35, 69, 70, 139, 140, 260)] == [
        "0-9", "0-9", "10-34", "10-34", "35-69", "35-69", "70-139", "70-139", "140+", "140+",
    ]  # fmt: skip
    model = LanguageModel(ModelConfig(ntoken=10, emsize=4, nhid=4, nlayers=1)).eval()
    tokenizer = train_tokenizer("word", ["a b c"])
    pairs = [SuitePair("a b", "b a", {"distance": d}, i) for i, d in enumerate((150, 3, 40, 12))]
    groups = accuracy_by(score_pairs(model, tokenizer, pairs), ["distance"])
    assert [g.group["distance"] for g in groups] == ["0-9", "10-34", "35-69", "140+"]


def test_scoring_a_discourse_equals_reading_it_window_by_window(records: list[dict]) -> None:
    """What a trained model does in a long text: BPTT-sized windows, the state carried."""
    longest = max(records, key=lambda r: r["distance"])["sentence_good"]
    tokenizer = train_tokenizer("word", [r["sentence_good"] for r in records])
    model = LanguageModel(ModelConfig(ntoken=tokenizer.vocab_size, emsize=8, nhid=8, nlayers=2)).eval()
    ids = line_ids(tokenizer, longest)
    (whole,) = token_logprobs(model, [ids])
    tokens = torch.tensor(ids).unsqueeze(1)
    state, windowed = model.init_state(1), []
    with torch.no_grad():
        for start in range(0, len(ids) - 1, 35):
            window = tokens[start : start + 36]
            logits, state = model(window[:-1], state)
            state = detach_state(state)
            windowed += F.log_softmax(logits, -1).gather(2, window[1:, :, None]).flatten().tolist()
    assert len(ids) > 3 * 35
    torch.testing.assert_close(torch.tensor(whole), torch.tensor(windowed), atol=1e-5, rtol=0)


def test_spread_keeps_both_orders_and_spaces_the_inserts_evenly() -> None:
    lines, inserts = [f"s{i}" for i in range(37)], ["d0", "d1", "d2"]
    mixed = spread(lines, inserts)
    assert [x for x in mixed if x.startswith("s")] == lines
    assert [x for x in mixed if x.startswith("d")] == inserts
    positions = [mixed.index(d) for d in inserts]
    gaps = [b - a for a, b in zip([-1, *positions], [*positions, len(mixed)], strict=True)]
    assert max(gaps) - min(gaps) <= 1
    assert spread(lines, []) == lines


def test_the_default_corpus_carries_long_range_discourses_throughout() -> None:
    path = ROOT / "data" / "default" / "train.txt"
    train = path.read_text(encoding="utf-8").splitlines()
    discourses = [i for i, line in enumerate(train) if line.count(" . ") >= 2]  # 3+ sentences
    assert len(discourses) == SPLIT_SIZES["train"][1]  # no other construction has three sentences
    streams = 32  # configs/demo.toml's batch size: every stream of the batch sees some
    assert {i * streams // len(train) for i in discourses} == set(range(streams))
    assert "Mary smiled . The keys to the cabinet are old . The radio was sharp ." in {
        p["prompt"] for p in demo_prompts()
    }
