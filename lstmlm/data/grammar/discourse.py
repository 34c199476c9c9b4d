"""Long-range discourses: a referent introduced, sentences about other things, then a pronoun.

    Mary smiled . The keys to the cabinet are old . The door opened . She laughed .

The pronoun must agree in gender (singular antecedent: she vs he) or number (plural
antecedent: they vs he/she) with a subject several sentences back. Every intervening
sentence is about things (inanimate subjects, PPs and objects), so no noun in between can
be the pronoun's antecedent and the swapped pronoun has none: the pair stays a minimal
pair at any distance. Intervening subjects are of the other gender (neuter) and, for
number pairs, of the other number (singular), so they are attractors in the usual sense.
"""

from __future__ import annotations

import random

from lstmlm.data.grammar.constructions import continuation, mark_pronoun, pronoun_subject
from lstmlm.data.grammar.lexicon import TRAIN_LEXICON
from lstmlm.data.grammar.phrases import ConstructionSpec, GenerationContext, add_pps, subject_phrase
from lstmlm.data.grammar.predicates import emit_verb, predicate, random_tense, verb_from
from lstmlm.data.grammar.structures import LineBuilder, Ref
from lstmlm.data.grammar.words import ANIMATE_INTRANSITIVE, NEUTER, PAST, PL, SG

CONSTRUCTION = "long_range"


def long_range_discourse(ctx: GenerationContext, between: int, agreement: str) -> LineBuilder:
    """An antecedent sentence, ``between`` sentences about things, then the pronoun sentence."""
    b, ref, bad_gender = pronoun_subject(ctx, ConstructionSpec(0, 0, agreement))
    emit_verb(b, verb_from(ctx.rng, ANIMATE_INTRANSITIVE), ref, PAST if ctx.pair else random_tense(ctx))
    b.add(".")
    for _ in range(between):
        _sentence_about_things(ctx, b, SG if agreement == "number" else ctx.rng.choice((SG, PL)))
    continuation(ctx, b, mark_pronoun(b, "subj", ref, bad_gender))
    b.add(".")
    return b


def _sentence_about_things(ctx: GenerationContext, b: LineBuilder, number: str) -> Ref:
    """The keys to the cabinet are old . (an inanimate subject, 0-2 PPs of things)"""
    subject = b.add_np(subject_phrase(ctx, number, (NEUTER,), names=False))
    pps = ctx.rng.choice((0, 0, 1, 2))
    add_pps(ctx, b, [(ctx.rng.choice((SG, PL)), (NEUTER,)) for _ in range(pps)], subject)
    predicate(ctx, b, subject, random_tense(ctx), plain=True)
    b.add(".")
    return subject


def long_range_lines(n: int, seed: int, max_between: int = 28, gap_decay: float = 1.0) -> list[str]:
    """``n`` training discourses (not pairs): 1 to ``max_between`` sentences between the
    antecedent and its pronoun, k sentences with weight 1/k^gap_decay (mean 7.3 sentences
    at decay 1, 2.4 at decay 2)."""
    rng = random.Random(f"{seed}:{CONSTRUCTION}:train")
    ctx = GenerationContext(rng, TRAIN_LEXICON, TRAIN_LEXICON, pair=False)
    gaps = range(1, max_between + 1)
    weights = [k**-gap_decay for k in gaps]
    return [
        long_range_discourse(ctx, rng.choices(gaps, weights)[0], rng.choice(("gender", "number")))
        .build(CONSTRUCTION)
        .text
        for _ in range(n)
    ]
