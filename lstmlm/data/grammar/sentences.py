"""Training sentences: the seeded mix of constructions behind the default corpus."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

from lstmlm.data.grammar.constructions import (
    CONSTRUCTIONS,
    TRAIN_ATTRACTOR_WEIGHTS,
    TRAINING_ONLY,
    Construction,
)
from lstmlm.data.grammar.lexicon import HELDOUT_LEXICON, TRAIN_LEXICON
from lstmlm.data.grammar.phrases import ConstructionSpec, GenerationContext, weighted_choice
from lstmlm.data.grammar.structures import Sentence

#: Default corpus sizes in lines (one sentence or two-sentence discourse per line).
TRAIN_SENTENCES = 40_000
VALID_SENTENCES = 2_000
TEST_SENTENCES = 2_000
SPLIT_SEED_OFFSETS = {"train": 1, "valid": 2, "test": 3}


def _training_table() -> dict[str, Construction]:
    """Every construction of the training corpus, in a fixed order."""
    return {**CONSTRUCTIONS, **TRAINING_ONLY}


def generate_structures(n: int, seed: int, *, heldout: bool = False) -> list[Sentence]:
    """``n`` training-style lines with their features (see :func:`generate_sentences`)."""
    rng = random.Random(seed)
    ctx = GenerationContext(rng, HELDOUT_LEXICON if heldout else TRAIN_LEXICON, TRAIN_LEXICON, pair=False)
    table = _training_table()
    names = list(table)
    cum_weights = list(itertools.accumulate(c.training_weight for c in table.values()))
    counts = range(len(TRAIN_ATTRACTOR_WEIGHTS))
    cum_attractors = list(itertools.accumulate(TRAIN_ATTRACTOR_WEIGHTS))
    out = []
    for _ in range(n):
        name = weighted_choice(rng, names, cum_weights)
        attractors = weighted_choice(rng, counts, cum_attractors)
        spec = ConstructionSpec(attractors, 1 if rng.random() < 0.3 else 0)
        out.append(table[name].build(ctx, spec).build(name))
    return out


def generate_sentences(n: int, seed: int, *, heldout: bool = False) -> list[str]:
    """``n`` grammatical lines, a seeded mix of all constructions.

    Weighted towards agreement: PPs and relative clauses with 0-4 attractors (mostly
    0-2), pronouns, reflexives, two-sentence discourses and coordination. With
    ``heldout=False`` no held-out noun or name appears anywhere; with ``heldout=True``
    every main-clause subject is a held-out item.
    """
    return [s.text for s in generate_structures(n, seed, heldout=heldout)]


def default_corpus(seed: int = 0) -> dict[str, list[str]]:
    """The default train/valid/test corpus, each split from its own derived seed.

    Sizes: 40,000 train lines (about 2.65 MB, 480k words) and 2,000 lines each for valid
    and test (about 130 KB each); the split seeds are ``1000 * seed + 1/2/3``. No held-out
    item appears in any split.
    """
    sizes = {"train": TRAIN_SENTENCES, "valid": VALID_SENTENCES, "test": TEST_SENTENCES}
    return {
        split: generate_sentences(size, 1000 * seed + SPLIT_SEED_OFFSETS[split])
        for split, size in sizes.items()
    }


def corpus_text(lines: Iterable[str]) -> str:
    """One line per sentence, newline-terminated."""
    return "".join(line + "\n" for line in lines)
