"""Sentence structures: words kept with their features, so tests can check agreement and
attractors from the structures rather than from strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from lstmlm.data.grammar.lexicon import Noun
from lstmlm.data.grammar.words import COMMON, NEUTER, PL


class NounToken(NamedTuple):
    """A noun (or name) head in a sentence."""

    index: int  # type: ignore[assignment]  # a field that shadows tuple.index, as NamedTuple allows
    number: str
    gender: str


class Agreement(NamedTuple):
    """The word at ``target`` agrees with the controller (a noun head or pronoun)."""

    controller: int
    target: int
    kind: str  # "verb" (number) or "pronoun" (number and gender)


@dataclass(frozen=True)
class Sentence:
    """One line of text with its noun heads and agreement links."""

    tokens: tuple[str, ...]
    nouns: tuple[NounToken, ...]
    agreements: tuple[Agreement, ...]
    construction: str

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


class Ref(NamedTuple):
    """Something later words can agree with: a noun head or a pronoun."""

    index: int  # type: ignore[assignment]  # a field that shadows tuple.index, as NamedTuple allows
    number: str
    gender: str

    @property
    def animate(self) -> bool:
        return self.gender != NEUTER

    @property
    def has_pronoun(self) -> bool:
        return self.number == PL or self.gender != COMMON


class NounPhrase(NamedTuple):
    """Words of a noun phrase; ``head`` is the offset of the noun within ``words``."""

    noun: Noun
    number: str
    words: tuple[str, ...]
    head: int

    @property
    def gender(self) -> str:
        return self.noun.gender


def capitalise(word: str) -> str:
    """``word`` with its first letter upper-cased."""
    return word[:1].upper() + word[1:]


def count_attractors(sentence: Sentence, agreement: Agreement, feature: str) -> int:
    """Nouns strictly between controller and target whose ``feature`` differs."""
    controller = next(n for n in sentence.nouns if n.index == agreement.controller)
    return sum(
        1
        for n in sentence.nouns
        if agreement.controller < n.index < agreement.target
        and getattr(n, feature) != getattr(controller, feature)
    )


@dataclass
class LineBuilder:
    """Collects tokens, noun heads and agreement links of one line."""

    tokens: list[str] = field(default_factory=list)
    nouns: list[NounToken] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    target: Agreement | None = None
    bad: str | None = None

    def add(self, *words: str) -> None:
        self.tokens.extend(words)

    def add_np(self, np: NounPhrase) -> Ref:
        start = len(self.tokens)
        self.tokens.extend(np.words)
        ref = Ref(start + np.head, np.number, np.gender)
        self.nouns.append(NounToken(ref.index, ref.number, ref.gender))
        return ref

    def add_agreeing(self, word: str, controller: Ref, kind: str) -> Agreement:
        agreement = Agreement(controller.index, len(self.tokens), kind)
        self.tokens.append(word)
        self.agreements.append(agreement)
        return agreement

    def mark(self, agreement: Agreement | None, bad: str | None) -> None:
        """Remember the agreement a minimal pair would test (the first one marked)."""
        if self.target is None and agreement is not None:
            self.target, self.bad = agreement, bad

    def build(self, construction: str) -> Sentence:
        """Freeze the line; sentence-initial words (and a marked bad word there) get a capital."""
        tokens = [
            capitalise(w) if i == 0 or self.tokens[i - 1] == "." else w for i, w in enumerate(self.tokens)
        ]
        if self.target is not None and self.bad is not None and tokens[self.target.target][0].isupper():
            self.bad = capitalise(self.bad)
        return Sentence(tuple(tokens), tuple(self.nouns), tuple(self.agreements), construction)
