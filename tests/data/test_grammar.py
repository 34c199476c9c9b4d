"""The agreement grammar: determinism, grammaticality by features, pairs, held-out split, data files."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from lstmlm.data.grammar.constructions import CONSTRUCTIONS, TRAINING_ONLY
from lstmlm.data.grammar.demo_prompts import demo_prompts
from lstmlm.data.grammar.lexicon import (
    BE,
    HAVE,
    HELDOUT_LEXICON,
    TRAIN_LEXICON,
    VERBS,
    heldout_words,
    noun_features,
    pronoun_features,
    verb_number,
)
from lstmlm.data.grammar.sentences import default_corpus, generate_sentences, generate_structures
from lstmlm.data.grammar.structures import Agreement, Sentence
from lstmlm.data.grammar.suites import (
    PairStructure,
    default_suites,
    generate_condition,
    generate_pair_structures,
    generate_pairs,
)
from lstmlm.data.grammar.words import (
    ALL_GENDERS,
    ANIMATE_ADJECTIVES,
    CONNECTORS,
    FEMALE_NAMES,
    FREQUENCY_ADVERBS,
    GENDERED_PAIRS,
    GENERAL_ADJECTIVES,
    LOCATION_PREPOSITIONS,
    MALE_NAMES,
    MANNER_ADVERBS,
    MODIFIER_PREPOSITIONS,
    PL,
    PRONOUNS,
    QUANTIFIERS,
    SENTENCE_ADVERBS,
    SG,
    THING_ADJECTIVES,
    THING_ADVERBS,
    THING_NOUNS,
    THING_PREPOSITIONS,
)
from tests.conftest import ROOT

DATA = ROOT / "data" / "default"
DATA_FILES = (
    "train.txt",
    "valid.txt",
    "test.txt",
    "agreement_suite.jsonl",
    "agreement_suite_heldout.jsonl",
    "long_range_suite.jsonl",
)
PAIR_KEYS = {
    "sentence_good",
    "sentence_bad",
    "construction",
    "attractors",
    "distance",
    "agreement",
    "UID",
    "field",
    "linguistics_term",
}
PRONOUN_FORMS = {form for forms in PRONOUNS.values() for form in forms.values()}
AGREEING_VERB_FORMS = {"is", "are", "was", "were", "has", "have"} | {
    form for v in VERBS.values() for form in (v.third, v.base) if form != v.past
}


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return default_corpus()


@pytest.fixture(scope="module")
def pairs() -> list[PairStructure]:
    return generate_pair_structures(6, seed=3)


@pytest.fixture(scope="module")
def heldout_pairs() -> list[PairStructure]:
    return generate_pair_structures(4, seed=4, heldout=True)


@pytest.fixture(scope="module")
def sentences() -> list[Sentence]:
    return generate_structures(3000, seed=5) + generate_structures(500, seed=6, heldout=True)


def features(token: str) -> set[tuple[str, str]]:
    """(number, gender) options of a controller token: a noun, a name or a pronoun."""
    noun = noun_features(token)
    if noun is not None:
        number, gender = noun
        return {(PL, g) for g in ALL_GENDERS} if number == PL else {noun}
    return set(pronoun_features(token))


def agrees(sentence_tokens: tuple[str, ...], link: Agreement, target_word: str) -> bool:
    """Whether ``target_word`` at the link's target agrees with its controller, by features."""
    controller = features(sentence_tokens[link.controller])
    assert controller, f"controller {sentence_tokens[link.controller]!r} has no features"
    if link.kind == "verb":
        return verb_number(target_word) in {number for number, _ in controller}
    return bool(controller & pronoun_features(target_word))


def recount_attractors(pair: PairStructure) -> int:
    """Intervening nouns whose tested feature differs from the controller's."""
    link = pair.target
    head = next(n for n in pair.good.nouns if n.index == link.controller)
    feature = "gender" if pair.agreement == "gender" else "number"
    between = [n for n in pair.good.nouns if link.controller < n.index < link.target]
    return sum(getattr(n, feature) != getattr(head, feature) for n in between)


# --- lexicon ---------------------------------------------------------------------


def test_lexicon_is_large_enough() -> None:
    assert len(THING_NOUNS) >= 150
    assert len(GENDERED_PAIRS) >= 40
    assert len(MALE_NAMES) + len(FEMALE_NAMES) >= 80
    assert len(VERBS) >= 100
    assert len(GENERAL_ADJECTIVES + THING_ADJECTIVES + ANIMATE_ADJECTIVES) >= 60


def test_word_forms() -> None:
    plural = {noun.singular: noun.plural for noun in TRAIN_LEXICON.nouns() + HELDOUT_LEXICON.nouns()}
    expected = {
        "man": "men",
        "woman": "women",
        "child": "children",
        "policeman": "policemen",
        "policewoman": "policewomen",
        "knife": "knives",
        "city": "cities",
        "key": "keys",
        "box": "boxes",
        "church": "churches",
        "princess": "princesses",
    }
    assert {word: plural[word] for word in expected} == expected
    assert plural["Mary"] is None
    verbs = {b: (v.third, v.past) for b, v in VERBS.items()}
    assert verbs["watch"] == ("watches", "watched")
    assert verbs["carry"] == ("carries", "carried")
    assert verbs["say"] == ("says", "said")
    assert verbs["drop"] == ("drops", "dropped")
    assert verbs["obey"] == ("obeys", "obeyed")


def test_word_classes_do_not_overlap() -> None:
    nouns = [form for n in TRAIN_LEXICON.nouns() + HELDOUT_LEXICON.nouns() for form in (n.singular, n.plural)]
    nouns = [form for form in nouns if form is not None]
    assert len(nouns) == len(set(nouns)), "a noun form belongs to two nouns"
    classes = {
        "nouns": set(nouns),
        "verbs": {f for v in (*VERBS.values(), BE, HAVE) for f in (v.base, v.third, v.past, v.past_plural)}
        - {None},
        "adjectives": set(GENERAL_ADJECTIVES + THING_ADJECTIVES + ANIMATE_ADJECTIVES),
        "adverbs": set(SENTENCE_ADVERBS + FREQUENCY_ADVERBS + MANNER_ADVERBS + THING_ADVERBS),
        "prepositions": set(MODIFIER_PREPOSITIONS + THING_PREPOSITIONS + LOCATION_PREPOSITIONS),
        "pronouns": PRONOUN_FORMS,
        "function": {"the", "a", "an", "that", "and", "but", "very", ",", "."}
        | set(QUANTIFIERS + CONNECTORS),
    }
    names = sorted(classes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not classes[a] & classes[b], (a, b, classes[a] & classes[b])


# --- determinism and format -------------------------------------------------------


def test_generation_is_deterministic_by_seed() -> None:
    assert generate_sentences(200, 5) == generate_sentences(200, 5)
    assert generate_sentences(200, 5) != generate_sentences(200, 6)
    assert generate_pairs(3, 5) == generate_pairs(3, 5)
    assert generate_pairs(3, 5) != generate_pairs(3, 6)


def test_text_format(corpus: dict[str, list[str]]) -> None:
    for line in corpus["valid"]:
        assert line == " ".join(line.split()), line
        assert line.endswith(" ."), line
        assert line[0].isupper(), line
        assert "  " not in line and "\t" not in line
    for sentence in generate_structures(300, 9):
        for i, token in enumerate(sentence.tokens):
            starts_sentence = i == 0 or sentence.tokens[i - 1] == "."
            noun = noun_features(token)
            is_name = token[0].isupper() and noun is not None and token in MALE_NAMES + FEMALE_NAMES
            assert token[0].isupper() == (starts_sentence or is_name), (token, sentence.text)


# --- grammaticality by features -----------------------------------------------------


def test_noun_records_match_the_lexicon(sentences: list[Sentence]) -> None:
    for sentence in sentences:
        for noun in sentence.nouns:
            assert noun_features(sentence.tokens[noun.index]) == (noun.number, noun.gender)


def test_every_generated_agreement_holds(sentences: list[Sentence], pairs: list[PairStructure]) -> None:
    checked = 0
    for sentence in sentences + [p.good for p in pairs]:
        for link in sentence.agreements:
            assert link.controller < link.target
            assert agrees(sentence.tokens, link, sentence.tokens[link.target]), (link, sentence.text)
            checked += 1
    assert checked > 5000


def test_every_agreeing_word_is_linked(sentences: list[Sentence]) -> None:
    """No inflected verb or pronoun escapes the checks above."""
    for sentence in sentences:
        targets = {link.target for link in sentence.agreements}
        for i, token in enumerate(sentence.tokens):
            if token.lower() in PRONOUN_FORMS or token in AGREEING_VERB_FORMS:
                assert i in targets, (token, sentence.text)


def test_training_distribution_is_rich_in_agreement(sentences: list[Sentence]) -> None:
    links = sum(len(s.agreements) for s in sentences)
    assert links / len(sentences) > 1.5
    kinds = Counter(link.kind for s in sentences for link in s.agreements)
    assert kinds["pronoun"] > 0.2 * kinds["verb"]
    constructions = Counter(s.construction for s in sentences)
    assert set(constructions) == set(CONSTRUCTIONS) | set(TRAINING_ONLY)
    attractors = Counter(
        sum(
            1
            for n in s.nouns
            if link.controller < n.index < link.target
            and n.number != next(m for m in s.nouns if m.index == link.controller).number
        )
        for s in sentences
        if s.construction in ("pp", "subj_rel", "obj_rel")
        for link in s.agreements[-1:]
    )
    assert attractors[0] > attractors[1] > attractors[3] > 0 and attractors[4] > 0


# --- minimal pairs ------------------------------------------------------------------


def test_pairs_differ_in_exactly_one_word(
    pairs: list[PairStructure], heldout_pairs: list[PairStructure]
) -> None:
    for record in generate_pairs(6, seed=3) + generate_pairs(4, seed=4, heldout=True):
        assert set(record) >= PAIR_KEYS
        good, bad = record["sentence_good"].split(), record["sentence_bad"].split()
        assert len(good) == len(bad)
        assert sum(g != b for g, b in zip(good, bad, strict=True)) == 1, record
        assert record["sentence_good"] != record["sentence_bad"]
        assert record["UID"] == record["construction"]
        assert record["field"] == "syntax"
        json.dumps(record)


def test_good_agrees_and_bad_does_not(pairs: list[PairStructure], heldout_pairs: list[PairStructure]) -> None:
    for pair in pairs + heldout_pairs:
        link = pair.target
        assert link in pair.good.agreements
        assert agrees(pair.good.tokens, link, pair.good.tokens[link.target])
        assert not agrees(pair.good.tokens, link, pair.bad_word), pair.good.text
        controller = features(pair.good.tokens[link.controller])
        bad = pronoun_features(pair.bad_word)
        if pair.agreement == "gender":  # same number, other gender
            assert {n for n, _ in bad} == {n for n, _ in controller} == {SG}
        elif link.kind == "pronoun":  # singular for a plural controller
            assert {n for n, _ in bad} == {SG} and {n for n, _ in controller} == {PL}


def test_pair_conditions_and_attractor_counts(pairs: list[PairStructure]) -> None:
    records = generate_pairs(6, seed=3)
    conditions = Counter((r["construction"], r["attractors"]) for r in records)
    for name, construction in CONSTRUCTIONS.items():
        for k in construction.attractor_counts:
            assert conditions[name, k] == 6
    assert {k for (name, k) in conditions if name == "pp"} == {0, 1, 2, 3, 4}
    assert set(conditions) == {
        (name, k) for name, construction in CONSTRUCTIONS.items() for k in construction.attractor_counts
    }
    for pair, record in zip(pairs, records, strict=True):
        assert record["sentence_good"] == pair.good.text
        assert recount_attractors(pair) == pair.attractors == record["attractors"]
        link = pair.target
        assert record["distance"] == link.target - link.controller - 1
        expected_term = "subject_verb_agreement" if link.kind == "verb" else "anaphor_agreement"
        assert record["linguistics_term"] == expected_term
        assert record["agreement"] in ("number", "gender")


def test_attractors_are_controllable_beyond_four() -> None:
    for name in ("pp", "subj_rel", "obj_rel", "reflexive"):
        condition = generate_condition(name, 6, 3, seed=2)
        assert [recount_attractors(p) for p in condition] == [6, 6, 6]
        assert all(p.distance >= 12 for p in condition)
    with pytest.raises(ValueError):
        generate_condition("simple", 1, 1, seed=2)


def test_pronoun_pairs_test_both_features(pairs: list[PairStructure]) -> None:
    by_construction = Counter((p.construction, p.agreement) for p in pairs)
    for name in ("pronoun", "reflexive", "pronoun_across_sentence"):
        assert by_construction[name, "gender"] > 0 and by_construction[name, "number"] > 0


# --- held-out lexical items -------------------------------------------------------------


def test_heldout_items_never_in_default_corpus(corpus: dict[str, list[str]]) -> None:
    heldout = heldout_words()
    assert len(heldout) > 50
    for split, lines in corpus.items():
        words = {w for line in lines for w in line.split()}
        assert not words & heldout, (split, sorted(words & heldout)[:5])


def test_heldout_suites_use_heldout_subjects(
    pairs: list[PairStructure], heldout_pairs: list[PairStructure]
) -> None:
    heldout = heldout_words()
    for pair in heldout_pairs:
        assert pair.good.tokens[pair.target.controller] in heldout, pair.good.text
    for pair in pairs:
        assert not set(pair.good.tokens) & heldout, pair.good.text
    assert {p.construction for p in heldout_pairs} == set(CONSTRUCTIONS)


def test_demo_prompts_use_the_training_vocabulary(corpus: dict[str, list[str]]) -> None:
    vocabulary = {w for line in corpus["train"] for w in line.split()}
    prompts = demo_prompts()
    assert 6 <= len(prompts) <= 12
    for prompt in prompts:
        assert prompt["correct"] != prompt["wrong"]
        words = prompt["prompt"].split() + [prompt["correct"], prompt["wrong"]]
        assert set(words) <= vocabulary, set(words) - vocabulary
        assert not set(words) & heldout_words()
        assert prompt["what"]


# --- committed data files ------------------------------------------------------------------


def load_script():
    spec = importlib.util.spec_from_file_location(
        "make_default_corpus", ROOT / "scripts" / "make_default_corpus.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_files_are_reproduced(corpus: dict[str, list[str]], tmp_path: Path) -> None:
    if not all((DATA / name).is_file() for name in DATA_FILES):
        pytest.skip("data/default is not generated")
    script = load_script()
    files = script.render(corpus, default_suites())
    assert sorted(files) == sorted(DATA_FILES)
    script.write_files(files, tmp_path)
    for name in DATA_FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), (
            f"{name} differs from the generator"
        )
