"""Minimal-pair suites: pairs that break one agreement, by (construction, attractors) condition.

A condition is one cell of the suites' design table: a construction and an exact number of
attractors. Records are BLiMP-style JSON objects, written as JSON Lines.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lstmlm.data.grammar.constructions import CONSTRUCTIONS, Construction
from lstmlm.data.grammar.discourse import CONSTRUCTION, long_range_discourse
from lstmlm.data.grammar.lexicon import HELDOUT_LEXICON, TRAIN_LEXICON
from lstmlm.data.grammar.phrases import ConstructionSpec, GenerationContext
from lstmlm.data.grammar.structures import Agreement, LineBuilder, Sentence, count_attractors


@dataclass(frozen=True)
class PairStructure:
    """A grammatical sentence and the single-word swap that breaks one agreement."""

    good: Sentence
    target: Agreement
    bad_word: str
    agreement: str  # "number" or "gender"
    attractors: int

    @property
    def construction(self) -> str:
        return self.good.construction

    @property
    def bad_tokens(self) -> tuple[str, ...]:
        tokens = list(self.good.tokens)
        tokens[self.target.target] = self.bad_word
        return tuple(tokens)

    @property
    def distance(self) -> int:
        return self.target.target - self.target.controller - 1

    def to_dict(self, pair_id: int) -> dict:
        """BLiMP-style JSON record."""
        term = "subject_verb_agreement" if self.target.kind == "verb" else "anaphor_agreement"
        return {
            "sentence_good": self.good.text,
            "sentence_bad": " ".join(self.bad_tokens),
            "construction": self.construction,
            "attractors": self.attractors,
            "distance": self.distance,
            "agreement": self.agreement,
            "field": "syntax",
            "linguistics_term": term,
            "UID": self.construction,
            "pairID": str(pair_id),
        }


#: Default agreement suites (written to data/default/ by scripts/make_default_corpus.py).
SUITE_PAIRS_PER_CONDITION = 40
HELDOUT_SUITE_PAIRS_PER_CONDITION = 20
SUITE_SEED = 0
HELDOUT_SUITE_SEED = 1


def generate_condition(
    construction: str, attractors: int, n: int, seed: int, *, heldout: bool = False
) -> list[PairStructure]:
    """``n`` distinct minimal pairs of one construction with exactly ``attractors`` attractors.

    Distance grows with the attractors and with random non-attractor PPs and adjectives;
    each pair reports it. Any attractor count works for ``pp``, ``subj_rel``, ``obj_rel``
    and the pronoun constructions (the suites use 0-4).
    """
    name, k = construction, attractors
    chosen = _construction_for(name, k)
    rng = random.Random(f"{seed}:{name}:{k}")
    subjects = HELDOUT_LEXICON if heldout else TRAIN_LEXICON
    ctx = GenerationContext(rng, subjects, TRAIN_LEXICON, pair=True)
    pairs: list[PairStructure] = []
    seen: set[str] = set()
    for _ in range(100 * n):
        if len(pairs) == n:
            break
        agreement = chosen.agreements[len(pairs) % len(chosen.agreements)]
        extra = rng.choice((0, 1, 2) if k == 0 else (0, 0, 1))
        pair = _checked_pair(chosen.build(ctx, ConstructionSpec(k, extra, agreement)), name, agreement, k)
        if pair.good.text not in seen:
            seen.add(pair.good.text)
            pairs.append(pair)
    if len(pairs) < n:
        raise ValueError(f"could not make {n} distinct {name} pairs with {k} attractors")
    return pairs


def _construction_for(name: str, attractors: int) -> Construction:
    """The construction of a condition; refuses unknown names and impossible attractors."""
    if name not in CONSTRUCTIONS:
        raise ValueError(f"unknown construction {name!r}; choose from {', '.join(CONSTRUCTIONS)}")
    counts = CONSTRUCTIONS[name].attractor_counts
    if attractors not in counts and max(counts) == 0:
        raise ValueError(f"{name} has no attractors")
    return CONSTRUCTIONS[name]


def _checked_pair(builder: LineBuilder, name: str, agreement: str, attractors: int) -> PairStructure:
    """The pair a builder marked, checked to have exactly ``attractors`` attractors."""
    sentence = builder.build(name)
    if builder.target is None or builder.bad is None:
        raise AssertionError(f"{name}: no agreement marked in {sentence.text!r}")
    found = count_attractors(sentence, builder.target, "gender" if agreement == "gender" else "number")
    if found != attractors:
        raise AssertionError(f"{name}: {found} attractors instead of {attractors} in {sentence.text!r}")
    return PairStructure(sentence, builder.target, builder.bad, agreement, attractors)


def generate_pair_structures(
    n_per_condition: int, seed: int, *, heldout: bool = False
) -> list[PairStructure]:
    """Minimal pairs with their structures, ``n_per_condition`` per (construction, attractors)."""
    return [
        pair
        for name, construction in CONSTRUCTIONS.items()
        for k in construction.attractor_counts
        for pair in generate_condition(name, k, n_per_condition, seed, heldout=heldout)
    ]


def generate_pairs(n_per_condition: int, seed: int, *, heldout: bool = False) -> list[dict]:
    """BLiMP-style minimal pairs; good and bad differ in exactly one word.

    Each condition (construction, attractors) has its own derived seed. Keys: sentence_good,
    sentence_bad, construction, attractors, distance, agreement, field, linguistics_term,
    UID and pairID.
    """
    pairs = generate_pair_structures(n_per_condition, seed, heldout=heldout)
    return [pair.to_dict(i) for i, pair in enumerate(pairs)]


def jsonl_text(pairs: Iterable[dict]) -> str:
    """JSON Lines text, one pair per line, keys in generation order."""
    return "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)


def write_jsonl(pairs: list[dict], path: str | Path) -> None:
    """Write pairs as JSON Lines (UTF-8, ``\\n`` line ends)."""
    Path(path).write_text(jsonl_text(pairs), encoding="utf-8", newline="\n")


def default_suites() -> dict[str, list[dict]]:
    """The committed suites: ``agreement_suite``, ``agreement_suite_heldout``, ``long_range_suite``."""
    return {
        "agreement_suite": generate_pairs(SUITE_PAIRS_PER_CONDITION, SUITE_SEED),
        "agreement_suite_heldout": generate_pairs(
            HELDOUT_SUITE_PAIRS_PER_CONDITION, HELDOUT_SUITE_SEED, heldout=True
        ),
        "long_range_suite": generate_long_range_pairs(LONG_RANGE_PAIRS_PER_CONDITION, SUITE_SEED),
    }


#: Intervening sentences in the long-range suite (``--suite long-range``).
LONG_RANGE_BETWEEN = (1, 2, 4, 8, 16, 28)
LONG_RANGE_PAIRS_PER_CONDITION = 20


def generate_long_range_pairs(n_per_condition: int, seed: int) -> list[dict]:
    """Long-range pronoun pairs (``discourse.py``): ``n_per_condition`` for each number of
    intervening sentences and each agreement (gender, number). Records as ``generate_pairs``',
    construction ``long_range``, plus ``sentences_between``."""
    records: list[dict] = []
    for between in LONG_RANGE_BETWEEN:
        for agreement in ("gender", "number"):
            rng = random.Random(f"{seed}:{CONSTRUCTION}:{between}:{agreement}")
            ctx = GenerationContext(rng, TRAIN_LEXICON, TRAIN_LEXICON, pair=True)
            seen: set[str] = set()
            for _ in range(100 * n_per_condition):
                if len(seen) == n_per_condition:
                    break
                builder = long_range_discourse(ctx, between, agreement)
                pair = _long_range_pair(builder, agreement)
                if pair.good.text not in seen:
                    seen.add(pair.good.text)
                    records.append({**pair.to_dict(len(records)), "sentences_between": between})
    return records


def _long_range_pair(builder: LineBuilder, agreement: str) -> PairStructure:
    sentence = builder.build(CONSTRUCTION)
    assert builder.target is not None and builder.bad is not None, sentence.text
    attractors = count_attractors(sentence, builder.target, agreement)
    return PairStructure(sentence, builder.target, builder.bad, agreement, attractors)
