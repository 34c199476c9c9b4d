"""Accuracy of scored minimal pairs, by group, with Wilson 95% intervals (Wilson 1927).

``--by distance`` groups distances (tokens between controller and target) into bins.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstmlm.scoring.pairs import PairScore, SuitePair


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (Wilson 1927)."""
    if total == 0:
        return (0.0, 1.0)
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class Accuracy:
    group: dict[str, Any]
    count: int
    sentence_correct: int
    prefix_count: int
    prefix_correct: int
    unk_tokens: int = 0
    sentence_interval: tuple[float, float] = field(init=False)
    prefix_interval: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.sentence_interval = wilson_interval(self.sentence_correct, self.count)
        self.prefix_interval = wilson_interval(self.prefix_correct, self.prefix_count)

    @property
    def sentence_accuracy(self) -> float:
        return self.sentence_correct / self.count if self.count else math.nan

    @property
    def prefix_accuracy(self) -> float | None:
        return self.prefix_correct / self.prefix_count if self.prefix_count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.group,
            "count": self.count,
            "sentence_accuracy": self.sentence_accuracy,
            "sentence_ci95": list(self.sentence_interval),
            "prefix_count": self.prefix_count,
            "prefix_accuracy": self.prefix_accuracy,
            "prefix_ci95": list(self.prefix_interval) if self.prefix_count else None,
            "unk_tokens": self.unk_tokens,
        }


#: ``--by distance`` groups distances (tokens between controller and target) into these bins
DISTANCE_BINS = (0, 10, 35, 70, 140)


def distance_bin(distance: int) -> str:
    """``"0-9"``, ``"10-34"``, ``"35-69"``, ``"70-139"`` or ``"140+"``."""
    lower = max(b for b in DISTANCE_BINS if b <= distance)
    upper = next((b for b in DISTANCE_BINS if b > distance), None)
    return f"{lower}+" if upper is None else f"{lower}-{upper - 1}"


def _group_value(pair: SuitePair, key: str) -> Any:
    value = pair.fields.get(key, "-")
    return distance_bin(value) if key == "distance" and isinstance(value, int) else value


def accuracy_by(scores: Iterable[PairScore], keys: Sequence[str]) -> list[Accuracy]:
    """Accuracy per combination of ``keys`` (missing fields group as "-", distances as
    ``distance_bin``), sorted."""
    groups: dict[tuple, list[PairScore]] = defaultdict(list)
    for score in scores:
        groups[tuple(_group_value(score.pair, k) for k in keys)].append(score)
    return [
        accuracy_of(dict(zip(keys, key, strict=True)), groups[key]) for key in sorted(groups, key=_sort_key)
    ]


def accuracy_of(group: dict[str, Any], scores: Sequence[PairScore]) -> Accuracy:
    """Accuracy of ``scores`` under both rules, labelled ``group``."""
    prefix = [s.prefix_correct for s in scores if s.prefix_correct is not None]
    return Accuracy(
        group,
        len(scores),
        sum(s.sentence_correct for s in scores),
        len(prefix),
        sum(prefix),
        sum(s.unk_tokens for s in scores),
    )


def _sort_key(key: tuple) -> tuple:
    """Numbers in order, then distance bins by their lower end, then other labels."""
    return tuple(
        (0, v, "")
        if isinstance(v, int | float)
        else (1, int(str(v).rstrip("+").split("-")[0]), str(v))
        if str(v)[:1].isdigit()
        else (2, 0, str(v))
        for v in key
    )
