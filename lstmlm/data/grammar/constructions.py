"""Constructions: the sentence types of the grammar and the table that weights them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lstmlm.data.grammar.lexicon import BE, pronoun
from lstmlm.data.grammar.phrases import (
    ConstructionSpec,
    GenerationContext,
    add_pps,
    adjectives,
    antecedent_phrase,
    free_specs,
    intervener_specs,
    location_preposition,
    noun_phrase,
    pick_noun,
    subject_phrase,
)
from lstmlm.data.grammar.predicates import (
    add_pronoun,
    emit_verb,
    main_predicate,
    predicate,
    random_tense,
    transitive_verb,
    verb_from,
)
from lstmlm.data.grammar.structures import LineBuilder, Ref
from lstmlm.data.grammar.words import (
    ANIMATE_GENDERS,
    ANIMATE_INTRANSITIVE,
    CLAUSE_VERBS,
    CONNECTORS,
    FEM,
    FREQUENCY_ADVERBS,
    MANNER_ADVERBS,
    MASC,
    NEUTER,
    PAST,
    PL,
    REFLEXIVE_VERBS,
    SENTENCE_ADVERBS,
    SG,
    TRANSITIVE_ANIMATE,
)

# Training pronoun lines whose subject is followed by an emphatic reflexive ("The queen
# herself said that she ..."): the one place where gender shows right after its noun, as
# number does in "The dog sleeps". Without it gender is learned only through a pronoun
# 2-10 words later, after a plateau whose length varied from 900 to over 6,000 steps.
EMPHATIC_SHARE = 0.2
# Training pronoun lines with a gendered subject whose interveners are gender attractors
# (singular nouns of the other gender, as in the suite's gender pairs); the rest are free.
# Without them "the nearest gendered noun" was good enough in training (data/README.md).
GENDER_ATTRACTOR_SHARE = 0.3

ConstructionBuilder = Callable[[GenerationContext, ConstructionSpec], LineBuilder]


@dataclass(frozen=True)
class Construction:
    """A sentence type: its builder, what its minimal pairs test and its training weight."""

    build: ConstructionBuilder
    agreements: tuple[str, ...]  # agreement types its pairs test, in turn: "number", "gender"
    attractor_counts: tuple[int, ...]  # the attractor counts of its conditions in the suites
    training_weight: float  # relative frequency in the training corpus


def _simple(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The dog sleeps ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx))
    main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _adverb(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The dogs probably often sleep ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx))
    if ctx.rng.random() < 0.35:
        b.add(ctx.rng.choice(SENTENCE_ADVERBS))
    b.add(ctx.rng.choice(FREQUENCY_ADVERBS))
    main_predicate(ctx, b, ref, copula=False)
    b.add(".")
    return b


def _adjectives_construction(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The dogs , old and tired , sleep ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx, adj_p=0.05))
    b.add(",", *adjectives(ctx.rng, ref.animate, ctx.rng.choice((2, 2, 3))), ",")
    main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _at_least_one(spec: ConstructionSpec) -> ConstructionSpec:
    """The same spec with at least one intervening noun."""
    return ConstructionSpec(spec.attractors, max(spec.extra, 1 - min(spec.attractors, 1)), spec.agreement)


def _pp(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The key to the cabinets near the door is old ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx))
    spec = _at_least_one(spec)
    add_pps(ctx, b, intervener_specs(ctx, ref, spec), ref)
    main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _subj_rel(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The author that likes the guards laughs . / The key that is on the tables is old ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx, names=False))
    spec = _at_least_one(spec)
    specs = intervener_specs(ctx, ref, spec)
    b.add("that")
    tense = random_tense(ctx)
    number, genders = specs[0]
    noun = pick_noun(ctx.rng, ctx.others, number, genders)
    if ref.animate and ctx.rng.random() < 0.8:
        emit_verb(b, transitive_verb(ctx.rng, noun.gender != NEUTER), ref, tense)
    else:
        emit_verb(b, BE, ref, tense)
        b.add(location_preposition(ctx.rng, noun.gender != NEUTER))
    rel_object = b.add_np(noun_phrase(ctx.rng, noun, number, adj_p=0.1))
    add_pps(ctx, b, specs[1:], rel_object)
    main_predicate(ctx, b, ref)
    b.add(".")
    return b


def _obj_rel(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The author that the guards like laughs ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx, names=False))
    spec = _at_least_one(spec)
    specs = intervener_specs(ctx, ref, spec)
    b.add("that")
    number, genders = specs[0]
    genders = tuple(g for g in genders if g != NEUTER)
    noun = pick_noun(ctx.rng, ctx.others, number, genders)
    rel_subject = b.add_np(noun_phrase(ctx.rng, noun, number, adj_p=0.1))
    add_pps(ctx, b, specs[1:], rel_subject)
    emit_verb(b, transitive_verb(ctx.rng, ref.animate), rel_subject, random_tense(ctx))
    main_predicate(ctx, b, ref)
    b.add(".")
    return b


def pronoun_subject(ctx: GenerationContext, spec: ConstructionSpec) -> tuple[LineBuilder, Ref, str | None]:
    """Subject plus PPs for pronoun constructions; returns the bad pronoun gender."""
    b = LineBuilder()
    if not ctx.pair:
        ref = b.add_np(antecedent_phrase(ctx))
        if ctx.rng.random() < EMPHATIC_SHARE:  # The queen herself ...: gender next to its noun
            add_pronoun(b, "refl", ref)
        if ref.gender in (MASC, FEM) and ctx.rng.random() < GENDER_ATTRACTOR_SHARE:
            specs = intervener_specs(ctx, ref, ConstructionSpec(spec.attractors, spec.extra, "gender"))
        else:
            specs = free_specs(ctx, spec.attractors + spec.extra)
        add_pps(ctx, b, specs, ref)
        return b, ref, None
    if spec.agreement == "gender":
        ref = b.add_np(subject_phrase(ctx, SG, (MASC, FEM)))
        bad_gender = FEM if ref.gender == MASC else MASC
    else:
        ref = b.add_np(subject_phrase(ctx, PL, ANIMATE_GENDERS))
        bad_gender = ref.gender if ref.gender in (MASC, FEM) else ctx.rng.choice((MASC, FEM))
    specs = intervener_specs(ctx, ref, spec, bad_gender if spec.agreement == "number" else None)
    add_pps(ctx, b, specs, ref)
    return b, ref, bad_gender


def mark_pronoun(b: LineBuilder, case: str, ref: Ref, bad_gender: str | None) -> Ref:
    """Add a pronoun for ``ref``, mark it for pairs; returns the pronoun as a referent."""
    agreement = add_pronoun(b, case, ref)
    if bad_gender is not None:
        b.mark(agreement, pronoun(case, SG, bad_gender))
    return Ref(agreement.target, ref.number, ref.gender)


def continuation(ctx: GenerationContext, b: LineBuilder, ref: Ref) -> None:
    """What follows a subject pronoun: number-neutral in pairs."""
    if ctx.pair:
        predicate(ctx, b, ref, PAST, plain=True, copula=False)
    else:
        predicate(ctx, b, ref, random_tense(ctx))


def _pronoun_construction(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The queen said that she laughed . / The queen said that the boys like her ."""
    b, ref, bad_gender = pronoun_subject(ctx, spec)
    roll = ctx.rng.random()
    if ctx.pair or roll < 0.6:
        emit_verb(b, verb_from(ctx.rng, CLAUSE_VERBS), ref, PAST if ctx.pair else random_tense(ctx))
        b.add("that")
        continuation(ctx, b, mark_pronoun(b, "subj", ref, bad_gender))
    elif roll < 0.8:
        emit_verb(b, verb_from(ctx.rng, CLAUSE_VERBS), ref, random_tense(ctx))
        b.add("that")
        number = ctx.rng.choice((SG, PL))
        noun = pick_noun(ctx.rng, ctx.others, number, ANIMATE_GENDERS)
        other = b.add_np(noun_phrase(ctx.rng, noun, number))
        emit_verb(b, verb_from(ctx.rng, TRANSITIVE_ANIMATE), other, random_tense(ctx))
        add_pronoun(b, "obj", ref)
    else:
        emit_verb(b, verb_from(ctx.rng, ANIMATE_INTRANSITIVE), ref, random_tense(ctx))
        b.add(ctx.rng.choice(CONNECTORS))
        continuation(ctx, b, mark_pronoun(b, "subj", ref, None))
    b.add(".")
    return b


def _reflexive(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The boys near the girl hurt themselves ."""
    b, ref, bad_gender = pronoun_subject(ctx, spec)
    emit_verb(b, verb_from(ctx.rng, REFLEXIVE_VERBS), ref, PAST if ctx.pair else random_tense(ctx))
    mark_pronoun(b, "refl", ref, bad_gender)
    if ctx.rng.random() < 0.2:
        b.add(ctx.rng.choice(MANNER_ADVERBS))
    b.add(".")
    return b


def _across_sentence(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """Mary smiled . She laughed ."""
    if not ctx.pair and ctx.rng.random() < 0.25:
        b = LineBuilder()
        ref = b.add_np(subject_phrase(ctx, genders=(NEUTER,)))
        add_pps(ctx, b, free_specs(ctx, spec.attractors + spec.extra), ref)
        predicate(ctx, b, ref, random_tense(ctx))
        b.add(".")
        continuation(ctx, b, mark_pronoun(b, "subj", ref, None))
        b.add(".")
        return b
    b, ref, bad_gender = pronoun_subject(ctx, spec)
    if ctx.pair:
        emit_verb(b, verb_from(ctx.rng, ANIMATE_INTRANSITIVE), ref, PAST)
        if ctx.rng.random() < 0.3:
            b.add(ctx.rng.choice(MANNER_ADVERBS))
    else:
        predicate(ctx, b, ref, random_tense(ctx))
    b.add(".")
    continuation(ctx, b, mark_pronoun(b, "subj", ref, bad_gender))
    b.add(".")
    return b


def _coordination(ctx: GenerationContext, spec: ConstructionSpec) -> LineBuilder:
    """The boys laugh and like the keys . / The key is old , but the doors are new ."""
    b = LineBuilder()
    ref = b.add_np(subject_phrase(ctx))
    tense = random_tense(ctx)
    if ctx.rng.random() < 0.5:
        add_pps(ctx, b, intervener_specs(ctx, ref, spec), ref)
        predicate(ctx, b, ref, tense)
        b.add("and")
        predicate(ctx, b, ref, tense)
    else:
        predicate(ctx, b, ref, tense)
        b.add(",", ctx.rng.choice(("and", "but")))
        second = b.add_np(subject_phrase(ctx))
        predicate(ctx, b, second, tense)
    b.add(".")
    return b


_NUMBER, _GENDER_AND_NUMBER = ("number",), ("gender", "number")
_NO_ATTRACTORS, _UP_TO_FOUR = (0,), (0, 1, 2, 3, 4)

#: The constructions that the minimal-pair suites test, by name.
CONSTRUCTIONS: dict[str, Construction] = {
    "simple": Construction(_simple, _NUMBER, _NO_ATTRACTORS, 8),
    "adverb": Construction(_adverb, _NUMBER, _NO_ATTRACTORS, 7),
    "adjectives": Construction(_adjectives_construction, _NUMBER, _NO_ATTRACTORS, 5),
    "pp": Construction(_pp, _NUMBER, _UP_TO_FOUR, 17),
    "subj_rel": Construction(_subj_rel, _NUMBER, _UP_TO_FOUR, 12),
    "obj_rel": Construction(_obj_rel, _NUMBER, _UP_TO_FOUR, 12),
    "pronoun": Construction(_pronoun_construction, _GENDER_AND_NUMBER, _UP_TO_FOUR, 40),
    "reflexive": Construction(_reflexive, _GENDER_AND_NUMBER, _UP_TO_FOUR, 36),
    "pronoun_across_sentence": Construction(_across_sentence, _GENDER_AND_NUMBER, _UP_TO_FOUR, 30),
}
#: Constructions of the training corpus only (no minimal pairs).
TRAINING_ONLY: dict[str, Construction] = {"coordination": Construction(_coordination, (), (), 10)}
#: Training weights of 0, 1, 2, 3 and 4 attractors.
TRAIN_ATTRACTOR_WEIGHTS = (40, 25, 17, 11, 7)
