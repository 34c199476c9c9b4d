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
from lstmlm.data.grammar.discourse import long_range_lines
from lstmlm.data.grammar.lexicon import HELDOUT_LEXICON, TRAIN_LEXICON
from lstmlm.data.grammar.phrases import ConstructionSpec, GenerationContext, weighted_choice
from lstmlm.data.grammar.structures import Sentence

#: Default corpus sizes in lines: (agreement sentences, long-range discourses) per split.
#: A sentence line is one sentence or a two-sentence discourse; a long-range discourse
#: (``discourse.py``) carries a referent across 1-28 sentences to its pronoun, k sentences
#: with weight 1/k^2 (``DISCOURSE_GAP_DECAY``): many short gaps, a few long ones.
SPLIT_SIZES = {"train": (37_000, 2_500), "valid": (1_900, 100), "test": (1_900, 100)}
DISCOURSE_GAP_DECAY = 2.0
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


def default_corpus(seed: int = 0, extra_discourses: int = 0) -> dict[str, list[str]]:
    """The default train/valid/test corpus, each split from its own derived seed.

    Sizes (``SPLIT_SIZES``): 39,500 train lines (about 2.8 MB, 510k words), 37,000 of them
    agreement sentences and 2,500 long-range discourses spread evenly among them; valid and
    test have 1,900 + 100 lines each. The split seeds are ``1000 * seed + 1/2/3``. No
    held-out item appears in any split. ``extra_discourses`` adds that many more discourses
    to train (and a twentieth of it to valid and test), with long gaps as common as
    ``long_range_lines``' default (1/k), for experiments on memory.
    """
    corpus = {}
    for split, (sentences, discourses) in SPLIT_SIZES.items():
        split_seed = 1000 * seed + SPLIT_SEED_OFFSETS[split]
        lines = generate_sentences(sentences, split_seed)
        lines = spread(lines, long_range_lines(discourses, split_seed, gap_decay=DISCOURSE_GAP_DECAY))
        extra = extra_discourses if split == "train" else extra_discourses // 20
        corpus[split] = spread(lines, long_range_lines(extra, split_seed + 100))
    return corpus


def spread(lines: list[str], inserts: list[str]) -> list[str]:
    """``lines`` with ``inserts`` placed at even intervals among them (order kept in both)."""
    out: list[str] = []
    step = len(lines) / (len(inserts) + 1)
    start = 0
    for k, insert in enumerate(inserts, start=1):
        end = round(k * step)
        out += lines[start:end]
        out.append(insert)
        start = end
    return out + lines[start:]


def corpus_text(lines: Iterable[str]) -> str:
    """One line per sentence, newline-terminated."""
    return "".join(line + "\n" for line in lines)
