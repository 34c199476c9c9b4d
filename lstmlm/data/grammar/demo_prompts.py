"""Hand-picked demo prompts: agreement at growing distance, from the training lexicon."""

from __future__ import annotations

from collections.abc import Sequence

from lstmlm.data.grammar.lexicon import BE, HAVE, TRAIN_LEXICON, VERBS, Noun, pronoun
from lstmlm.data.grammar.structures import capitalise
from lstmlm.data.grammar.words import FEM, MASC, PAST, PL, PRESENT, SG


def _train_noun(word: str) -> Noun:
    """A training-lexicon noun by its singular form."""
    for noun in TRAIN_LEXICON.nouns():
        if noun.singular == word:
            return noun
    raise LookupError(f"{word!r} is not a training noun")


def _np_words(word: str, number: str = SG, *adjectives: str) -> list[str]:
    """``the [adjectives] noun`` of a training noun, or the bare name."""
    noun = _train_noun(word)
    return [noun.form(number)] if noun.is_name else ["the", *adjectives, noun.form(number)]


def _prompt(words: Sequence[str], correct: str, wrong: str, what: str) -> dict:
    """A prompt record; sentence-initial words get a capital."""
    tokens = [capitalise(w) if i == 0 or words[i - 1] == "." else w for i, w in enumerate(words)]
    if tokens[-1] == ".":
        correct, wrong = capitalise(correct), capitalise(wrong)
    return {"prompt": " ".join(tokens), "correct": correct, "wrong": wrong, "what": what}


def demo_prompts() -> list[dict]:
    """Hand-picked prompts of growing distance and attractors, from the training lexicon.

    Keys: ``prompt``, ``correct`` and ``wrong`` (the two forms of the next word) and ``what``.
    """
    return _verb_prompts() + _pronoun_prompts()


def _verb_prompts() -> list[dict]:
    """Subject-verb number agreement, adjacent to three attractors."""
    be, laugh, like = BE, VERBS["laugh"], VERBS["like"]
    return [
        _prompt(_np_words("key"), be.form(SG, PRESENT), be.form(PL, PRESENT), "number, adjacent"),
        _prompt(
            [*_np_words("key", PL), "to", *_np_words("cabinet")],
            be.form(PL, PRESENT),
            be.form(SG, PRESENT),
            "number, 1 attractor",
        ),
        _prompt(  # a verb the grammar puts after adverbs: sleep/sleeps there was ~0.001 vs 0.001
            [*_np_words("dog", PL, "old", "and", "tired"), "often"],
            HAVE.form(PL, PRESENT),
            HAVE.form(SG, PRESENT),
            "number, adjectives and adverb",
        ),
        _prompt(
            [*_np_words("author"), "that", *_np_words("guard", PL), like.form(PL, PRESENT)],
            laugh.form(SG, PRESENT),
            laugh.form(PL, PRESENT),
            "number, object relative clause, 1 attractor",
        ),
        _prompt(
            [*_np_words("key"), "to", *_np_words("cabinet", PL), "near", *_np_words("door", PL)],
            be.form(SG, PRESENT),
            be.form(PL, PRESENT),
            "number, 2 attractors",
        ),
        _prompt(
            [*_np_words("key", PL), "to", *_np_words("cabinet"), "near", *_np_words("door")]
            + ["behind", *_np_words("table")],
            be.form(PL, PRESENT),
            be.form(SG, PRESENT),
            "number, 3 attractors",
        ),
    ]


def _pronoun_prompts() -> list[dict]:
    """Pronoun gender (with an attractor, across one and three sentences) and reflexive number."""
    smile, say, hurt = VERBS["smile"], VERBS["say"], VERBS["hurt"]
    return [
        _prompt(
            [*_np_words("queen"), say.form(SG, PAST), "that"],
            pronoun("subj", SG, FEM),
            pronoun("subj", SG, MASC),
            "gender",
        ),
        _prompt(
            [*_np_words("king"), "near", *_np_words("girl"), say.form(SG, PAST), "that"],
            pronoun("subj", SG, MASC),
            pronoun("subj", SG, FEM),
            "gender, 1 attractor",
        ),
        _prompt(
            [*_np_words("Mary"), smile.form(SG, PAST), "."],
            pronoun("subj", SG, FEM),
            pronoun("subj", SG, MASC),
            "gender, across sentences",
        ),
        _prompt(  # the long-range discourses of discourse.py: only things in between
            [*_np_words("Mary"), smile.form(SG, PAST), "."]
            + [*_np_words("key", PL), "to", *_np_words("cabinet"), BE.form(PL, PRESENT), "old", "."]
            + [*_np_words("radio"), BE.form(SG, PAST), "sharp", "."],
            pronoun("subj", SG, FEM),
            pronoun("subj", SG, MASC),
            "gender, two sentences between",
        ),
        _prompt(
            [*_np_words("boy", PL), hurt.form(PL, PAST)],
            pronoun("refl", PL, MASC),
            pronoun("refl", SG, MASC),
            "number, reflexive",
        ),
    ]
