"""Noun phrases, prepositional-phrase chains and the random draws behind them."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from lstmlm.data.grammar.lexicon import Lexicon, Noun
from lstmlm.data.grammar.structures import LineBuilder, NounPhrase, Ref
from lstmlm.data.grammar.words import (
    ALL_GENDERS,
    ANIMATE_ADJECTIVES,
    ANIMATE_GENDERS,
    COMMON,
    FEM,
    GENERAL_ADJECTIVES,
    LOCATION_PREPOSITIONS,
    MASC,
    MODIFIER_PREPOSITIONS,
    NEUTER,
    PL,
    QUANTIFIERS,
    SG,
    THING_ADJECTIVES,
    THING_PREPOSITIONS,
)

T = TypeVar("T")


def weighted_choice(rng: random.Random, items: Sequence[T], cum_weights: Sequence[float]) -> T:
    """One item drawn by cumulative weights (what ``rng.choices(...)[0]`` does, faster)."""
    return items[bisect.bisect(cum_weights, rng.random() * cum_weights[-1])]


@dataclass(frozen=True)
class GenerationContext:
    """Randomness and noun pools of one generation run."""

    rng: random.Random
    subjects: Lexicon
    others: Lexicon
    pair: bool


@dataclass(frozen=True)
class ConstructionSpec:
    """What a construction should contain: attractors, fillers, agreement type."""

    attractors: int
    extra: int
    agreement: str = "number"


def other_number(number: str) -> str:
    """The number that is not ``number``."""
    return PL if number == SG else SG


SINGULAR_ANTECEDENT_SHARE = 0.75
_POOL_WEIGHTS = {NEUTER: 4.0, COMMON: 3.0, MASC: 2.0, FEM: 2.0}
_NAME_WEIGHT = 1.5
_POOL_CACHE: dict[tuple, tuple[list[tuple[Noun, ...]], list[float]]] = {}


def _noun_pools(
    lex: Lexicon, number: str, genders: Sequence[str], names: bool
) -> tuple[list[tuple[Noun, ...]], list[float]]:
    """Noun pools for a request and their cumulative weights.

    Cached by ``id(lex)``: the lexicons are module constants.
    """
    key = (id(lex), number, tuple(genders), names)
    if key not in _POOL_CACHE:
        by_gender = {NEUTER: lex.things, COMMON: lex.commons, MASC: lex.males, FEM: lex.females}
        name_pools = {MASC: lex.male_names, FEM: lex.female_names}
        pools, weights = [], []
        for gender in ALL_GENDERS:
            if gender not in genders:
                continue
            pools.append(by_gender[gender])
            weights.append(_POOL_WEIGHTS[gender])
            if names and number == SG and gender in name_pools:
                pools.append(name_pools[gender])
                weights.append(_NAME_WEIGHT)
        _POOL_CACHE[key] = (pools, list(itertools.accumulate(weights)))
    return _POOL_CACHE[key]


def pick_noun(
    rng: random.Random, lex: Lexicon, number: str, genders: Sequence[str], names: bool = True
) -> Noun:
    """A random noun of one of ``genders`` that has a ``number`` form."""
    pools, cum_weights = _noun_pools(lex, number, genders, names)
    return rng.choice(weighted_choice(rng, pools, cum_weights))


def _adjective(rng: random.Random, animate: bool) -> str:
    specific = ANIMATE_ADJECTIVES if animate else THING_ADJECTIVES
    return rng.choice(GENERAL_ADJECTIVES + specific if rng.random() < 0.3 else specific)


def adjectives(rng: random.Random, animate: bool, count: int) -> list[str]:
    """``count`` distinct adjectives, coordinated: old / old and tired / big , old and tired."""
    words: list[str] = []
    while len(words) < count:
        adj = _adjective(rng, animate)
        if adj not in words:
            words.append(adj)
    if count == 1:
        return words
    out: list[str] = []
    for adj in words[:-2]:
        out += [adj, ","]
    return out + [words[-2], "and", words[-1]]


def noun_phrase(
    rng: random.Random, noun: Noun, number: str, adj_p: float = 0.15, det: str = "the"
) -> NounPhrase:
    """``the [adjectives] noun`` (or a bare name)."""
    if noun.is_name:
        return NounPhrase(noun, number, (noun.singular,), 0)
    words: list[str] = []
    if rng.random() < adj_p:
        words = adjectives(rng, noun.gender != NEUTER, 1 if rng.random() < 0.75 else 2)
    if det in ("a", "an"):
        det = "an" if (words[0] if words else noun.singular)[0] in "aeiou" else "a"
    words = [det, *words, noun.form(number)]
    return NounPhrase(noun, number, tuple(words), len(words) - 1)


def object_phrase(rng: random.Random, lex: Lexicon, genders: Sequence[str]) -> NounPhrase:
    """An object noun phrase with a varied determiner."""
    number = rng.choice((SG, PL))
    noun = pick_noun(rng, lex, number, genders)
    if noun.is_name:
        return noun_phrase(rng, noun, SG)
    roll = rng.random()
    if number == SG:
        det = "a" if roll < 0.35 else "the"
    else:
        det = rng.choice(QUANTIFIERS) if roll < 0.35 else "the"
    return noun_phrase(rng, noun, number, det=det)


def subject_phrase(
    ctx: GenerationContext,
    number: str | None = None,
    genders: Sequence[str] = ALL_GENDERS,
    adj_p: float = 0.2,
    names: bool = True,
) -> NounPhrase:
    """A subject noun phrase from the controller pool."""
    number = number or ctx.rng.choice((SG, PL))
    noun = pick_noun(ctx.rng, ctx.subjects, number, genders, names)
    return noun_phrase(ctx.rng, noun, number, adj_p=adj_p)


def antecedent_phrase(ctx: GenerationContext, genders: Sequence[str] = ANIMATE_GENDERS) -> NounPhrase:
    """A subject that a pronoun can refer to (no singular common-gender noun).

    Singular three times in four: gender is carried only by singular antecedents, and each
    gendered noun and name needs enough he/she events for a small model to learn it.
    """
    number = SG if ctx.rng.random() < SINGULAR_ANTECEDENT_SHARE else PL
    if number == SG:
        genders = tuple(g for g in genders if g != COMMON)
    return subject_phrase(ctx, number, genders)


def intervener_specs(
    ctx: GenerationContext, ctrl: Ref, spec: ConstructionSpec, bad_gender: str | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    """(number, allowed genders) of each intervening noun; attractors at random slots."""
    total = spec.attractors + spec.extra
    slots = set(ctx.rng.sample(range(total), spec.attractors))
    out: list[tuple[str, tuple[str, ...]]] = []
    for i in range(total):
        attractor = i in slots
        if spec.agreement == "gender":
            other = FEM if ctrl.gender == MASC else MASC
            out.append((SG, (other,)) if attractor else (ctx.rng.choice((SG, PL)), (ctrl.gender,)))
        elif bad_gender is not None:
            out.append((SG, (bad_gender,)) if attractor else (PL, ALL_GENDERS))
        else:
            number = other_number(ctrl.number) if attractor else ctrl.number
            out.append((number, ALL_GENDERS))
    return out


def free_specs(ctx: GenerationContext, count: int) -> list[tuple[str, tuple[str, ...]]]:
    """Unconstrained interveners (training pronoun sentences)."""
    return [(ctx.rng.choice((SG, PL)), ALL_GENDERS) for _ in range(count)]


_ANY_OBJECT_PREPOSITIONS = MODIFIER_PREPOSITIONS + THING_PREPOSITIONS * 2
_PERSON_LOCATIONS = ("near", "behind", "beside", "with")


def _preposition(rng: random.Random, animate: bool) -> str:
    """A noun-modifying preposition: near the king; to the door only between things."""
    return rng.choice(MODIFIER_PREPOSITIONS if animate else _ANY_OBJECT_PREPOSITIONS)


def location_preposition(rng: random.Random, object_animate: bool) -> str:
    """A predicative location preposition: on the table, near the king."""
    return rng.choice(_PERSON_LOCATIONS if object_animate else LOCATION_PREPOSITIONS)


def add_pps(
    ctx: GenerationContext, b: LineBuilder, specs: Sequence[tuple[str, tuple[str, ...]]], head: Ref
) -> None:
    """A chain of PPs, each attached to the previous noun: to the cabinets near the door."""
    animate = head.animate
    for number, genders in specs:
        noun = pick_noun(ctx.rng, ctx.others, number, genders)
        b.add(_preposition(ctx.rng, animate or noun.gender != NEUTER))
        b.add_np(noun_phrase(ctx.rng, noun, number, adj_p=0.1))
        animate = noun.gender != NEUTER
