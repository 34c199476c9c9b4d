"""Per-token and per-word log-probabilities of lines of text: what ``lstmlm score`` prints.

Every line is scored as the model saw lines in training: ``<eos>`` before it (context) and
after it (scored, the line's end). Fresh, each line starts from the zero state; with
``context``, the lines form one text and the state is carried from line to line, so a
line's words are predicted from everything before them. A word made of several tokens
(BPE, characters, or a raw word that the run's pre-tokenizer splits, ``Robert.`` ->
``Robert .``) gets the sum of its tokens' log-probabilities; its surprisal in bits is
-log2 P(word | context) (the quantity of Hale 2001, Levy 2008; with LSTM LMs e.g.
van Schijndel & Linzen 2018, Wilcox et al. 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from lstmlm.data.direction import BACKWARD, oriented_line
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.evaluation.perplexity import scored_windows
from lstmlm.model.lm import LanguageModel
from lstmlm.scoring.pairs import token_logprobs

WINDOW = 256  # tokens per forward call when the state is carried over a long text
MERGE_LIMIT = 64  # words one WordScore may gather while a token boundary is looked for (_words)


def bits(logprob: float) -> float:
    """Surprisal in bits of an event with natural-log probability ``logprob``."""
    return -logprob / math.log(2)


@dataclass(frozen=True)
class TokenScore:
    """One token: its text, log P (natural log) given everything before it, and surprisal."""

    token: str
    logprob: float
    surprisal_bits: float


@dataclass(frozen=True)
class WordScore:
    """A whitespace-separated word of the input and the tokens it was read as."""

    word: str
    logprob: float
    surprisal_bits: float
    tokens: tuple[TokenScore, ...]


@dataclass(frozen=True)
class SentenceScore:
    """One line: total log P (its tokens and the closing ``<eos>``), per token, per word."""

    text: str
    logprob: float
    surprisal_bits: float
    tokens: tuple[TokenScore, ...]  # the line's tokens, then <eos>
    words: tuple[WordScore, ...]  # the line's words (no <eos>)

    def to_dict(self) -> dict:
        return asdict(self)


def line_stream(tokenizer: Tokenizer, lines: Sequence[str]) -> tuple[list[str], list[list[int]], list[int]]:
    """The non-blank ``lines`` (stripped), their token ids, and the one stream they make as a
    text: ``<eos>``, then each line's ids followed by ``<eos>`` (how ``eval`` reads a file)."""
    lines = [line.strip() for line in lines if line.strip()]
    encoded = [tokenizer.encode(line) for line in lines]
    return lines, encoded, [tokenizer.eos_id] + [t for ids in encoded for t in [*ids, tokenizer.eos_id]]


def score_lines(
    model: LanguageModel, tokenizer: Tokenizer, lines: Sequence[str], *, context: bool = False
) -> list[SentenceScore]:
    """Score each of ``lines`` (see the module docstring); blank lines are not scored.

    Linear in the text's length: the model reads at most ``WINDOW`` positions of a stream per
    call, and the words are found by encoding each once (``_words``). A backward model
    (``_backward_logprobs``) gives each token log P(token | the tokens to its right)."""
    lines, encoded, stream = line_stream(tokenizer, lines)
    if model.cfg.direction == BACKWARD:
        logprobs = _backward_logprobs(model, tokenizer.eos_id, encoded, context=context)
    elif context:
        logprobs = _per_line(_carried_logprobs(model, stream), encoded)
    else:
        logprobs = _fresh_logprobs(model, tokenizer.eos_id, encoded)
    pieces: dict[int, str] = {}
    return [
        _sentence(tokenizer, line, ids, lps, pieces)
        for line, ids, lps in zip(lines, encoded, logprobs, strict=True)
    ]


def _backward_logprobs(
    model: LanguageModel, eos_id: int, encoded: Sequence[list[int]], *, context: bool
) -> list[list[float]]:
    """A backward model's log-probs of each line, in reading order, its ``<eos>`` last.

    Each line is read right to left after an ``<eos>`` and closed by one, as the model read its
    training text (``data/direction.py``); with ``context`` the lines also run last to first,
    the state carried, so a line is predicted from the lines after it. The closing ``<eos>``
    scores the line's start given all of it, so a line's total is log P(line) as a forward
    model's is, and a word's tokens sum to log P(word | the text to its right)."""
    read = [oriented_line(ids, BACKWARD) for ids in encoded]
    if context:
        stream = [eos_id] + [t for ids in reversed(read) for t in [*ids, eos_id]]
        per_line = _per_line(_carried_logprobs(model, stream), read[::-1])[::-1]
    else:
        per_line = _fresh_logprobs(model, eos_id, read)
    return [lps[-2::-1] + lps[-1:] for lps in per_line]  # tokens back in reading order, <eos> last


def _fresh_logprobs(model: LanguageModel, eos_id: int, encoded: Sequence[list[int]]) -> list[list[float]]:
    """Each line from the zero state, ``<eos>`` before and after it. Lines that fit a window go
    in padded batches (``token_logprobs``); a longer one is read alone, window by window, so
    no batch is padded to a long line and no forward call holds all of it."""
    sequences = [[eos_id, *ids, eos_id] for ids in encoded]
    short = [i for i, sequence in enumerate(sequences) if len(sequence) <= WINDOW + 1]
    out = [_carried_logprobs(model, sequence) if len(sequence) > WINDOW + 1 else [] for sequence in sequences]
    for i, logprobs in zip(short, token_logprobs(model, [sequences[i] for i in short]), strict=True):
        out[i] = logprobs
    return out


def _carried_logprobs(model: LanguageModel, stream: list[int]) -> list[float]:
    """log P of every token of ``stream`` after the first, the state carried (``eval``'s windows)."""
    device = next(model.parameters()).device
    source = torch.tensor(stream, dtype=torch.long, device=device).unsqueeze(1)  # (T, 1)
    windows = scored_windows(model, source, WINDOW)
    return [-loss for window in windows for loss in window.token_loss.flatten().tolist()]


def _per_line(logprobs: list[float], encoded: Sequence[list[int]]) -> list[list[float]]:
    """The stream's log-probs cut into each line's (its tokens, then its ``<eos>``)."""
    out, start = [], 0
    for ids in encoded:
        out.append(logprobs[start : start + len(ids) + 1])
        start += len(ids) + 1
    return out


def _sentence(
    tokenizer: Tokenizer, line: str, ids: list[int], logprobs: list[float], pieces: dict[int, str]
) -> SentenceScore:
    """One line's scores; ``pieces`` remembers each token's text (decoded once per call)."""
    for t in ids:
        if t not in pieces:
            text = tokenizer.decode([t])
            pieces[t] = text.strip() or text
    shown = [pieces[t] for t in ids] + ["<eos>"]
    tokens = tuple(TokenScore(p, lp, bits(lp)) for p, lp in zip(shown, logprobs, strict=True))
    total = sum(logprobs)
    return SentenceScore(line, total, bits(total), tokens, _words(tokenizer, line, ids, tokens))


def _words(
    tokenizer: Tokenizer, line: str, ids: list[int], tokens: tuple[TokenScore, ...]
) -> tuple[WordScore, ...]:
    """Group tokens into the line's words. Where a word boundary is not a token boundary
    (the tokens of the words before it are not a prefix of the line's), the words on both
    sides are reported as one.

    Linear in the line: the text since the last boundary found (a word and the whitespace
    before it, `` cat``, read as inside the line) is encoded once and must continue the
    line's ids there. Where it does not, the next word joins it and the longer text is
    tried, up to ``MERGE_LIMIT`` words (then the rest of the line is one group). lstmlm's
    tokenizers never make a token across whitespace, so every word boundary is a token
    boundary for them unless the tokenizer and Python disagree on what is whitespace.
    """
    words = line.split()
    grouped: list[WordScore] = []
    # the group being built: words[first_word:], from line[start:] and tokens[first_token:]
    first_word = first_token = start = cut = 0
    searching = True
    for index, word in enumerate(words):
        cut = line.index(word, cut) + len(word)
        if index == len(words) - 1:
            through = len(ids)
        elif not searching or index + 1 - first_word > MERGE_LIMIT:
            searching = False  # the rest of the line is one group
            continue
        else:
            piece = tokenizer.encode(line[start:cut])
            through = first_token + len(piece)
            if ids[first_token:through] != piece:
                continue
        group = tokens[first_token:through]
        logprob = sum(t.logprob for t in group)
        grouped.append(WordScore(" ".join(words[first_word : index + 1]), logprob, bits(logprob), group))
        first_word, first_token, start = index + 1, through, cut
    return tuple(grouped)
