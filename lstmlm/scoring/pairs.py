"""Scoring minimal pairs: does the model prefer the grammatical sentence?

Two rules, each per pair:

* **sentence** (BLiMP, Warstadt et al. 2020): the good sentence's total log-probability,
  as a whole line (``<eos>`` context before, ``<eos>`` after), beats the bad one's.
* **prefix** (Linzen et al. 2016): where the two sentences differ in exactly one word,
  that word's log-probability given the shared prefix is higher for the good form.
  With subword tokenizers the word's tokens are summed.

Suites are JSON Lines in the BLiMP format: ``sentence_good``, ``sentence_bad`` and any
grouping fields (``construction``, ``attractors``, ``distance``, ``UID``, ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lstmlm.data.direction import FORWARD, oriented_line
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic
from lstmlm.model.lm import LanguageModel

DEFAULT_SUITE = Path(__file__).resolve().parents[2] / "data" / "default" / "agreement_suite.jsonl"
NAMED_SUITES = {"default": "agreement_suite.jsonl", "long-range": "long_range_suite.jsonl"}  # --suite NAME


@dataclass
class SuitePair:
    """A minimal pair as read from a suite file: the two sentences, the grouping fields and
    the line it came from (the grammar's :class:`~lstmlm.data.grammar.suites.PairStructure`
    writes such records)."""

    good: str
    bad: str
    fields: dict[str, Any]
    line: int


@dataclass
class PairScore:
    """Log-probabilities of one pair under both rules."""

    pair: SuitePair
    good_logprob: float
    bad_logprob: float
    prefix_good: float | None  # log P(good word | prefix); None when the rule does not apply
    prefix_bad: float | None
    unk_tokens: int

    @property
    def sentence_correct(self) -> bool:
        return self.good_logprob > self.bad_logprob

    @property
    def prefix_correct(self) -> bool | None:
        if self.prefix_good is None or self.prefix_bad is None:
            return None
        return self.prefix_good > self.prefix_bad

    def to_dict(self) -> dict[str, Any]:
        """One line of ``agreement --pairs``: the pair, its fields, both scores and decisions."""
        return {
            "line": self.pair.line,
            "sentence_good": self.pair.good,
            "sentence_bad": self.pair.bad,
            **self.pair.fields,
            "good_logprob": self.good_logprob,
            "bad_logprob": self.bad_logprob,
            "sentence_correct": self.sentence_correct,
            "prefix_good_logprob": self.prefix_good,
            "prefix_bad_logprob": self.prefix_bad,
            "prefix_correct": self.prefix_correct,
            "unk_tokens": self.unk_tokens,
        }


def write_pair_scores(scores: Sequence[PairScore], path: Path) -> None:
    """Every pair's ``to_dict`` as one JSONL file, written atomically."""
    lines = "".join(json.dumps(score.to_dict(), ensure_ascii=False) + "\n" for score in scores)
    write_atomic(path, lines.encode("utf-8"))


# ---------------------------------------------------------------- suites


def read_suite(path: Path) -> list[SuitePair]:
    """Read a BLiMP-style JSONL suite; every problem names its line."""
    if not path.is_file():
        raise LstmlmError(f"suite file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a leading BOM is not JSON
    except UnicodeDecodeError:
        raise LstmlmError(f"{path}: not UTF-8 text") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise LstmlmError(f"{path}:{number}: not valid JSON ({e.msg})") from None
        pairs.append(pair_from_record(record, f"{path}:{number}", number))
    if not pairs:
        raise LstmlmError(f"{path}: the suite is empty")
    return pairs


def pair_from_record(record: Any, where: str, line: int) -> SuitePair:
    """A ``SuitePair`` from one BLiMP-format record (a JSON line, a dataset row)."""
    if not isinstance(record, dict):
        raise LstmlmError(f"{where}: expected a JSON object")
    for key in ("sentence_good", "sentence_bad"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise LstmlmError(f"{where}: missing or empty {key!r}")
    fields = dict(record)
    good, bad = fields.pop("sentence_good"), fields.pop("sentence_bad")
    if good.split() == bad.split():
        raise LstmlmError(f"{where}: sentence_good and sentence_bad are the same sentence")
    return SuitePair(good, bad, fields, line)


#: what ``agreement`` groups by without ``--by``: the first of these whose fields the pairs have
#: (lstmlm's suites; BLiMP's files), else nothing (one row of all pairs)
DEFAULT_GROUPINGS = (("construction", "attractors"), ("linguistics_term", "UID"))


def by_fields(by: str | None) -> list[str] | None:
    """``--by`` as field names: None when it was not given, [] for ``--by ""`` (all pairs as one row)."""
    if by is None or not by.strip():
        return None if by is None else []
    keys = [key.strip() for key in by.split(",")]
    if not all(keys):
        raise LstmlmError(
            f'--by: an empty field name in {by!r} (name fields with commas, or --by "" for all pairs)'
        )
    return keys


def group_fields(pairs: Sequence[SuitePair], keys: list[str] | None, path: Path | str) -> list[str]:
    """The fields to group by: those typed (each must occur in some pair), else the default grouping."""
    if keys is not None:
        check_fields(pairs, keys, path)
        return keys
    present = {key for pair in pairs for key in pair.fields}
    for grouping in DEFAULT_GROUPINGS:
        found = [key for key in grouping if key in present]
        if found:
            return found
    return []


def check_fields(pairs: Sequence[SuitePair], keys: Sequence[str], path: Path | str) -> None:
    """Every ``--by`` field must occur in some pair; else list the fields the pairs have."""
    present = sorted({key for pair in pairs for key in pair.fields})
    missing = [key for key in keys if key not in present]
    if missing:
        raise LstmlmError(
            f"--by: no pair in {path} has the field(s) {', '.join(missing)} "
            f"(the pairs have: {', '.join(present) or 'no grouping fields'})"
        )


def resolve_suite(name: str) -> Path:
    """``default`` and ``long-range`` are the grammar's suites shipped in ``data/default``
    (regenerated into the cache if absent)."""
    if name not in NAMED_SUITES:
        return Path(name)
    shipped = DEFAULT_SUITE.parent / NAMED_SUITES[name]
    if shipped.exists():
        return shipped
    from lstmlm.data.grammar import suites

    cache = Path.home() / ".cache" / "lstmlm" / shipped.name
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        pairs = suites.default_suites()[shipped.stem]
        suites.write_jsonl(pairs, cache)
    return cache


# ---------------------------------------------------------------- log-probabilities


@torch.no_grad()
def token_logprobs(
    model: LanguageModel, sequences: Sequence[Sequence[int]], batch_size: int = 64
) -> list[list[float]]:
    """log P(token t | tokens < t) for t >= 1 of each sequence (the first token is context).

    Sequences are right-padded into batches; a recurrent model never looks ahead, so the
    padding does not change any real position.
    """
    model.eval()
    device = next(model.parameters()).device
    results: list[list[float]] = []
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        length = max(len(s) for s in chunk)
        ids = torch.zeros(length, len(chunk), dtype=torch.long)
        for column, seq in enumerate(chunk):
            ids[: len(seq), column] = torch.tensor(list(seq), dtype=torch.long)
        ids = ids.to(device)
        logits, _ = model(ids[:-1], model.init_state(len(chunk), device))  # (T-1, B, V)
        logp = F.log_softmax(logits.float(), dim=-1).gather(2, ids[1:].unsqueeze(-1)).squeeze(-1)
        logp = logp.cpu()
        results.extend(logp[: len(seq) - 1, column].tolist() for column, seq in enumerate(chunk))
    return results


def line_ids(tokenizer: Tokenizer, sentence: str, direction: str = FORWARD) -> list[int]:
    """A sentence as a whole line: ``<eos>`` before (context) and after (scored); a backward
    model reads its tokens right to left (``oriented_line``)."""
    return [tokenizer.eos_id, *oriented_line(tokenizer.encode(sentence), direction), tokenizer.eos_id]


def differing_word(good: str, bad: str) -> int | None:
    """Index of the one word where ``good`` and ``bad`` differ, or None."""
    a, b = good.split(), bad.split()
    if len(a) != len(b):
        return None
    diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return diffs[0] if len(diffs) == 1 else None


def word_span(tokenizer: Tokenizer, words: list[str], index: int) -> tuple[int, int] | None:
    """Token positions [start, end) of ``words[index]`` within ``line_ids`` of the words."""
    before = tokenizer.encode(" ".join(words[:index]))
    through = tokenizer.encode(" ".join(words[: index + 1]))
    whole = tokenizer.encode(" ".join(words))
    if through[: len(before)] != before or whole[: len(through)] != through:
        return None  # tokenization is not stable across the word boundary
    return 1 + len(before), 1 + len(through)  # +1 for the leading <eos>


def score_pairs(
    model: LanguageModel, tokenizer: Tokenizer, pairs: Sequence[SuitePair], direction: str = FORWARD
) -> list[PairScore]:
    """Both rules for every pair, and the ``<unk>`` tokens the pair's two lines contain.

    A ``backward`` model scores each sentence right to left: its log-probability is that of
    the whole sentence all the same (the chain rule read the other way), so the sentence rule
    holds; the prefix rule (the word given the words before it) has no value for it (None)."""
    sequences = []
    for pair in pairs:
        sequences += [line_ids(tokenizer, pair.good, direction), line_ids(tokenizer, pair.bad, direction)]
    logprobs = token_logprobs(model, sequences)
    scores = []
    for i, pair in enumerate(pairs):
        good_lp, bad_lp = logprobs[2 * i], logprobs[2 * i + 1]
        prefix_good = prefix_bad = None
        index = differing_word(pair.good, pair.bad) if direction == FORWARD else None
        if index is not None:
            spans = (
                word_span(tokenizer, pair.good.split(), index),
                word_span(tokenizer, pair.bad.split(), index),
            )
            if spans[0] and spans[1]:
                # logprobs[k] scores token k+1 of the line
                prefix_good = sum(good_lp[spans[0][0] - 1 : spans[0][1] - 1])
                prefix_bad = sum(bad_lp[spans[1][0] - 1 : spans[1][1] - 1])
        unk = tokenizer.unk_id
        unk_count = sum(t == unk for t in sequences[2 * i] + sequences[2 * i + 1]) if unk is not None else 0
        scores.append(PairScore(pair, sum(good_lp), sum(bad_lp), prefix_good, prefix_bad, unk_count))
    return scores


# ---------------------------------------------------------------- the demo


@dataclass
class DemoRow:
    prompt: str
    what: str
    correct: str
    wrong: str
    p_correct: float
    p_wrong: float
    continuation: str

    @property
    def ok(self) -> bool:
        return self.p_correct > self.p_wrong


@torch.no_grad()
def next_word_probability(model: LanguageModel, tokenizer: Tokenizer, prompt: str, word: str) -> float:
    """P(``word`` comes next after ``prompt``) at the start of a line (all its tokens)."""
    context = [tokenizer.eos_id, *tokenizer.encode(prompt)]
    full = [tokenizer.eos_id, *tokenizer.encode(f"{prompt} {word}".strip())]
    if full[: len(context)] != context:
        context = full[: len(full) - len(tokenizer.encode(word))]
    logprobs = token_logprobs(model, [full])[0]
    return math.exp(sum(logprobs[len(context) - 1 :]))


def missing_demo_words(tokenizer: Tokenizer, prompts: Sequence[dict[str, str]]) -> list[str]:
    """Words of the demo prompts and their two forms that ``tokenizer`` reads as ``<unk>``."""
    texts = [item[key] for item in prompts for key in ("prompt", "correct", "wrong")]
    words = dict.fromkeys(word for text in texts for word in text.split())
    return [word for word in words if tokenizer.unk_id in tokenizer.encode(word)]


def demo_rows(
    model: LanguageModel,
    tokenizer: Tokenizer,
    prompts: Sequence[dict[str, str]],
    *,
    seed: int = 0,
    max_tokens: int = 15,
    temperature: float = 0.7,
) -> list[DemoRow]:
    """For each prompt: P(correct form), P(wrong form) and a sampled continuation (to ``<eos>``)."""
    from lstmlm.generate import prompt_ids, sample

    generator = torch.Generator().manual_seed(seed)
    rows = []
    for item in prompts:
        prompt = item["prompt"]
        tokens = []
        for token in sample(
            model,
            prompt_ids(tokenizer, prompt),
            max_tokens=max_tokens,
            temperature=temperature,
            generator=generator,
        ):
            if token == tokenizer.eos_id:
                break
            tokens.append(token)
        rows.append(
            DemoRow(
                prompt=prompt,
                what=item.get("what", ""),
                correct=item["correct"],
                wrong=item["wrong"],
                p_correct=next_word_probability(model, tokenizer, prompt, item["correct"]),
                p_wrong=next_word_probability(model, tokenizer, prompt, item["wrong"]),
                continuation=tokenizer.decode(tokens).strip(),
            )
        )
    return rows
