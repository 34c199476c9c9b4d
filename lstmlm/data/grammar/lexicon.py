"""The lexicon: nouns and verbs with their inflected forms, and feature lookups by word.

Held-out split: every tenth noun lemma, gendered pair and first name (index % 10 == 9 in
each word list) goes to :data:`HELDOUT_LEXICON`; the rest form :data:`TRAIN_LEXICON`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lstmlm.data.grammar.words import (
    ALL_GENDERS,
    ANIMATE_INTRANSITIVE,
    CLAUSE_VERBS,
    COMMON,
    COMMON_NOUNS,
    DOUBLED_FINAL,
    FEM,
    FEMALE_NAMES,
    GENDERED_PAIRS,
    IRREGULAR_PAST,
    IRREGULAR_PLURALS,
    MALE_NAMES,
    MASC,
    NEUTER,
    PL,
    PRESENT,
    PRONOUNS,
    REFLEXIVE_VERBS,
    SG,
    THING_INTRANSITIVE,
    THING_NOUNS,
    TRANSITIVE_ANIMATE,
    TRANSITIVE_ANY,
    TRANSITIVE_THING,
)

_T = TypeVar("_T")

HELDOUT_EVERY = 10
HELDOUT_OFFSET = 9


def _plural(word: str) -> str:
    """Regular English plural with explicit irregulars."""
    if word.endswith("man"):
        return word[:-3] + "men"
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _third_person(base: str) -> str:
    """Third person singular present: likes, watches, carries."""
    if base.endswith(("s", "x", "z", "ch", "sh", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def _past(base: str) -> str:
    """Simple past: irregulars from the table, then regular -ed spelling rules."""
    if base in IRREGULAR_PAST:
        return IRREGULAR_PAST[base]
    if base in DOUBLED_FINAL:
        return base + base[-1] + "ed"
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    return base + "ed"


@dataclass(frozen=True)
class Noun:
    """A noun lemma (or first name) with its features."""

    singular: str
    plural: str | None
    gender: str
    is_name: bool = False

    def form(self, number: str) -> str:
        if number == SG:
            return self.singular
        if self.plural is None:
            raise ValueError(f"{self.singular} has no plural")
        return self.plural


@dataclass(frozen=True)
class Verb:
    """A verb with its present (sg/pl) and past (sg/pl) forms."""

    base: str
    third: str
    past: str
    past_plural: str | None = None

    def form(self, number: str, tense: str) -> str:
        if tense == PRESENT:
            return self.third if number == SG else self.base
        if self.past_plural is not None and number == PL:
            return self.past_plural
        return self.past

    def agrees(self, tense: str) -> bool:
        """Whether the form carries number in this tense."""
        return tense == PRESENT or self.past_plural is not None


def _verb(base: str) -> Verb:
    return Verb(base, _third_person(base), _past(base))


BE = Verb("are", "is", "was", "were")
HAVE = Verb("have", "has", "had")
ALL_VERB_BASES = tuple(
    dict.fromkeys(
        ANIMATE_INTRANSITIVE
        + THING_INTRANSITIVE
        + TRANSITIVE_ANY
        + TRANSITIVE_THING
        + TRANSITIVE_ANIMATE
        + REFLEXIVE_VERBS
        + CLAUSE_VERBS
    )
)
VERBS = {base: _verb(base) for base in ALL_VERB_BASES}


def _is_heldout(index: int) -> bool:
    return index % HELDOUT_EVERY == HELDOUT_OFFSET


def _split(items: Sequence[_T]) -> tuple[tuple[_T, ...], tuple[_T, ...]]:
    """(training items, held-out items): every tenth item is held out."""
    train = tuple(x for i, x in enumerate(items) if not _is_heldout(i))
    held = tuple(x for i, x in enumerate(items) if _is_heldout(i))
    return train, held


@dataclass(frozen=True)
class Lexicon:
    """Noun pools by category."""

    things: tuple[Noun, ...]
    commons: tuple[Noun, ...]
    males: tuple[Noun, ...]
    females: tuple[Noun, ...]
    male_names: tuple[Noun, ...]
    female_names: tuple[Noun, ...]

    def nouns(self) -> tuple[Noun, ...]:
        return self.things + self.commons + self.males + self.females + self.male_names + self.female_names


def _nouns(words: Iterable[str], gender: str) -> tuple[Noun, ...]:
    return tuple(Noun(w, _plural(w), gender) for w in words)


def _names(words: Iterable[str], gender: str) -> tuple[Noun, ...]:
    return tuple(Noun(w, None, gender, is_name=True) for w in words)


def _build_lexicons() -> tuple[Lexicon, Lexicon]:
    things, held_things = _split(THING_NOUNS)
    commons, held_commons = _split(COMMON_NOUNS)
    pairs, held_pairs = _split(GENDERED_PAIRS)
    male_names, held_male = _split(MALE_NAMES)
    female_names, held_female = _split(FEMALE_NAMES)

    def lexicon(
        t: Iterable[str],
        c: Iterable[str],
        p: Sequence[tuple[str, str]],
        mn: Iterable[str],
        fn: Iterable[str],
    ) -> Lexicon:
        return Lexicon(
            things=_nouns(t, NEUTER),
            commons=_nouns(c, COMMON),
            males=_nouns((m for m, _ in p), MASC),
            females=_nouns((f for _, f in p), FEM),
            male_names=_names(mn, MASC),
            female_names=_names(fn, FEM),
        )

    return (
        lexicon(things, commons, pairs, male_names, female_names),
        lexicon(held_things, held_commons, held_pairs, held_male, held_female),
    )


TRAIN_LEXICON, HELDOUT_LEXICON = _build_lexicons()


def _index_nouns() -> dict[str, tuple[Noun, str]]:
    """Noun form -> (noun, number)."""
    index = {}
    for noun in TRAIN_LEXICON.nouns() + HELDOUT_LEXICON.nouns():
        index[noun.singular] = (noun, SG)
        if noun.plural is not None:
            index[noun.plural] = (noun, PL)
    return index


def _index_verbs() -> dict[str, str]:
    """Inflecting verb form -> number (base forms read as plural present)."""
    index = {}
    for verb in (*VERBS.values(), BE, HAVE):
        index[verb.third], index[verb.base] = SG, PL
        if verb.past_plural is not None:
            index[verb.past], index[verb.past_plural] = SG, PL
    return index


_NOUN_BY_FORM = _index_nouns()
_VERB_NUMBER = _index_verbs()


def heldout_words() -> frozenset[str]:
    """Every form of every held-out noun and name."""
    words = set()
    for noun in HELDOUT_LEXICON.nouns():
        words.add(noun.singular)
        if noun.plural is not None:
            words.add(noun.plural)
    return frozenset(words)


def noun_features(word: str) -> tuple[str, str] | None:
    """(number, gender) of a noun form or name, or None if ``word`` is not a noun."""
    hit = _NOUN_BY_FORM.get(word) or _NOUN_BY_FORM.get(word.lower())
    return None if hit is None else (hit[1], hit[0].gender)


def verb_number(word: str) -> str | None:
    """Number carried by a present-tense form (or was/were), None for other words.

    Base forms read as plural: only ask about words known to be agreement targets.
    """
    return _VERB_NUMBER.get(word.lower())


def pronoun_features(word: str) -> frozenset[tuple[str, str]]:
    """All (number, gender) pairs a pronoun can stand for; empty for non-pronouns."""
    out: set[tuple[str, str]] = set()
    for forms in PRONOUNS.values():
        for key, form in forms.items():
            if form == word.lower():
                if key == PL:
                    out.update((PL, g) for g in ALL_GENDERS)
                else:
                    out.add((SG, key))
    return frozenset(out)


def pronoun(case: str, number: str, gender: str) -> str:
    """The pronoun of ``case`` (subj/obj/refl/poss) for a referent."""
    if number == PL:
        return PRONOUNS[case][PL]
    if gender == COMMON:
        raise ValueError("singular common-gender nouns take no pronoun")
    return PRONOUNS[case][gender]
