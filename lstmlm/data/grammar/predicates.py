"""Verb phrases: the head verb (which may agree with its subject) and what follows it."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from lstmlm.data.grammar.lexicon import BE, HAVE, VERBS, Verb, pronoun
from lstmlm.data.grammar.phrases import (
    GenerationContext,
    adjectives,
    noun_phrase,
    object_phrase,
    other_number,
    weighted_choice,
)
from lstmlm.data.grammar.structures import Agreement, LineBuilder, NounPhrase, Ref
from lstmlm.data.grammar.words import (
    ALL_GENDERS,
    ANIMATE_GENDERS,
    ANIMATE_INTRANSITIVE,
    LOCATION_PREPOSITIONS,
    MANNER_ADVERBS,
    NEUTER,
    PAST,
    PL,
    PRESENT,
    SG,
    THING_ADVERBS,
    THING_INTRANSITIVE,
    TRANSITIVE_ANIMATE,
    TRANSITIVE_ANY,
    TRANSITIVE_THING,
)


def emit_verb(b: LineBuilder, verb: Verb, ref: Ref, tense: str) -> tuple[Agreement | None, str]:
    """Add a verb form; returns the agreement (None if the form does not inflect) and
    the form of the other number."""
    word = verb.form(ref.number, tense)
    bad = verb.form(other_number(ref.number), tense)
    if verb.agrees(tense):
        return b.add_agreeing(word, ref, "verb"), bad
    b.add(word)
    return None, bad


def add_pronoun(b: LineBuilder, case: str, ref: Ref) -> Agreement:
    """Add the pronoun of ``case`` that refers to ``ref``, linked to it."""
    return b.add_agreeing(pronoun(case, ref.number, ref.gender), ref, "pronoun")


def verb_from(rng: random.Random, bases: Sequence[str]) -> Verb:
    """A random verb of a class (a list of base forms)."""
    return VERBS[rng.choice(bases)]


_ANIMATE_OBJECT_VERBS = TRANSITIVE_ANY + TRANSITIVE_ANIMATE
_THING_OBJECT_VERBS = TRANSITIVE_ANY + TRANSITIVE_THING


def transitive_verb(rng: random.Random, object_animate: bool) -> Verb:
    """A transitive verb (animate subject) that accepts such an object."""
    return verb_from(rng, _ANIMATE_OBJECT_VERBS if object_animate else _THING_OBJECT_VERBS)


def _copula_predicate(
    ctx: GenerationContext, b: LineBuilder, ref: Ref, tense: str
) -> tuple[Agreement | None, str]:
    """is old / were very tired / are on the table."""
    rng = ctx.rng
    result = emit_verb(b, BE, ref, tense)
    if rng.random() < 0.6:
        if rng.random() < 0.25:
            b.add("very")
        b.add(*adjectives(rng, ref.animate, 1 if rng.random() < 0.7 else 2))
    else:
        b.add(rng.choice(LOCATION_PREPOSITIONS))
        b.add_np(noun_phrase(rng, rng.choice(ctx.others.things), rng.choice((SG, PL))))
    return result


def _have_predicate(
    ctx: GenerationContext, b: LineBuilder, ref: Ref, tense: str
) -> tuple[Agreement | None, str]:
    """has two keys."""
    result = emit_verb(b, HAVE, ref, tense)
    b.add_np(object_phrase(ctx.rng, ctx.others, ALL_GENDERS if ref.animate else (NEUTER,)))
    return result


def _intransitive_predicate(
    ctx: GenerationContext, b: LineBuilder, ref: Ref, tense: str
) -> tuple[Agreement | None, str]:
    """laughs loudly / fell in the garden."""
    rng = ctx.rng
    verbs = ANIMATE_INTRANSITIVE if ref.animate else THING_INTRANSITIVE
    result = emit_verb(b, verb_from(rng, verbs), ref, tense)
    roll = rng.random()
    if roll < 0.3:
        b.add(rng.choice(MANNER_ADVERBS if ref.animate else THING_ADVERBS))
    elif roll < 0.45:
        b.add(rng.choice(LOCATION_PREPOSITIONS))
        b.add_np(noun_phrase(rng, rng.choice(ctx.others.things), rng.choice((SG, PL))))
    return result


def _transitive_predicate(
    ctx: GenerationContext, b: LineBuilder, ref: Ref, tense: str
) -> tuple[Agreement | None, str]:
    """likes the guards / found a key."""
    object_animate = ctx.rng.random() < 0.5
    result = emit_verb(b, transitive_verb(ctx.rng, object_animate), ref, tense)
    genders = ANIMATE_GENDERS if object_animate else (NEUTER,)
    b.add_np(object_phrase(ctx.rng, ctx.others, genders))
    return result


def _possessive_predicate(
    ctx: GenerationContext, b: LineBuilder, ref: Ref, tense: str
) -> tuple[Agreement | None, str]:
    """lost his keys."""
    rng = ctx.rng
    result = emit_verb(b, verb_from(rng, TRANSITIVE_THING), ref, tense)
    add_pronoun(b, "poss", ref)
    number = rng.choice((SG, PL))
    noun = rng.choice(ctx.others.things)
    words = noun_phrase(rng, noun, number).words[1:]
    b.add_np(NounPhrase(noun, number, words, len(words) - 1))
    return result


_PREDICATES = {
    "copula": _copula_predicate,
    "have": _have_predicate,
    "intransitive": _intransitive_predicate,
    "transitive": _transitive_predicate,
    "possessive": _possessive_predicate,
}


_PREDICATE_KINDS: dict[tuple[bool, ...], tuple[list[str], list[float]]] = {}


def predicate(
    ctx: GenerationContext,
    b: LineBuilder,
    ref: Ref,
    tense: str,
    *,
    plain: bool = False,
    copula: bool = True,
    agree: bool = False,
) -> tuple[Agreement | None, str]:
    """A verb phrase for ``ref``; returns the head verb's agreement and its other form.

    ``plain`` avoids later pronouns (so one swapped word breaks exactly one agreement);
    ``agree`` forces a head verb that inflects; ``copula`` allows is/are/was/were.
    """
    only_copula = agree and tense == PAST
    key = (only_copula, ref.animate, not plain and ref.has_pronoun, copula)
    if key not in _PREDICATE_KINDS:
        kinds = {"copula": 1.0}
        if not only_copula:
            kinds = {"have": 1.0, "intransitive": 3.0}
            if ref.animate:
                kinds["transitive"] = 3.0
                if not plain and ref.has_pronoun:
                    kinds["possessive"] = 3.0
            if copula:
                kinds["copula"] = 3.0
        _PREDICATE_KINDS[key] = (list(kinds), list(itertools.accumulate(kinds.values())))
    kind = weighted_choice(ctx.rng, *_PREDICATE_KINDS[key])
    return _PREDICATES[kind](ctx, b, ref, tense)


def random_tense(ctx: GenerationContext) -> str:
    """Present three times in four, else past."""
    return PRESENT if ctx.rng.random() < 0.75 else PAST


def main_predicate(ctx: GenerationContext, b: LineBuilder, ref: Ref, *, copula: bool = True) -> None:
    """The verb phrase that number-agreement pairs test."""
    tense = PRESENT if ctx.pair and ctx.rng.random() < 0.8 else random_tense(ctx)
    if not copula and tense == PAST and ctx.pair:
        tense = PRESENT
    b.mark(*predicate(ctx, b, ref, tense, plain=ctx.pair, copula=copula, agree=ctx.pair))
