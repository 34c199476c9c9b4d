"""Perplexity over a whole split with the hidden state carried across windows.

perplexity = exp(token-weighted mean cross-entropy); bits per character (``char``
tokenizer) and bits per byte (``bpe``) rescale the same total loss by the text length.

A split is read as the run's ``eval_batch_size`` streams (``evaluate_split``); a text the
user gives is scored whole, as one stream after an ``<eos>`` (``evaluate_text``: every
token of it is scored, as ``score --context`` scores it).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lstmlm.config import RunConfig
from lstmlm.data.tokens import EncodedSplit, batchify, check_length, get_window, num_windows
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import State
from lstmlm.runtime import distributed
from lstmlm.runtime.precision import Precision


@torch.no_grad()
def evaluate_loss(
    model: LanguageModel,
    source: Tensor,
    bptt: int,
    *,
    precision: Precision | None = None,
    forward: Callable[..., tuple[Tensor, State]] | None = None,
) -> float:
    """Mean next-token cross-entropy (nats) over batchified ``source`` (T, B).

    ``forward`` (default: ``model``) may be a compiled ``model``; ``precision`` autocasts it,
    the loss itself is always fp32. Under torchrun each rank scores its share of the B
    streams and the sums are added up over the ranks: every rank gets the whole split's loss.
    """
    model.eval()
    forward = model if forward is None else forward
    device = next(model.parameters()).device
    source = distributed.my_streams(source).to(device)
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss, tokens
    if source.size(1):
        hidden = model.init_state(source.size(1), device)
        for index in range(num_windows(source, bptt)):
            x, y = get_window(source, index * bptt, bptt)
            with precision.autocast() if precision else contextlib.nullcontext():
                token_loss, hidden = forward(x, hidden, targets=y)
            sums[0] += token_loss.sum(dtype=torch.float64)
            sums[1] += y.numel()
    total, count = distributed.sum_over_ranks(sums).tolist()
    return total / max(count, 1)


@dataclass
class ScoredWindow:
    """One window's output-layer inputs (T, B, d), per-position loss (T, B) and targets (T, B)."""

    features: Tensor
    token_loss: Tensor
    targets: Tensor


@torch.no_grad()
def scored_windows(model: LanguageModel, source: Tensor, bptt: int) -> Iterator[ScoredWindow]:
    """``source`` (T, B) window by window, state carried: what the cache needs beside the loss.

    The same computation as ``evaluate_loss`` (``forward(x, h, targets=y)`` is ``features``
    then ``token_loss``), so the losses summed are the same numbers.
    """
    model.eval()
    hidden = model.init_state(source.size(1), source.device)
    for index in range(num_windows(source, bptt)):
        x, y = get_window(source, index * bptt, bptt)
        features, hidden = model.features(x, hidden)
        yield ScoredWindow(features, model.token_loss(features, y), y)


@dataclass
class Evaluation:
    split: str
    loss: float  # nats per token
    perplexity: float
    tokens: int
    bits_per_char: float | None = None
    bits_per_byte: float | None = None

    def to_dict(self) -> dict[str, float | int | str | None]:
        return self.__dict__.copy()


def perplexity(loss: float) -> float:
    """exp(mean loss in nats), capped so that a diverged loss gives a huge number, not an overflow."""
    return math.exp(min(loss, 700.0))


def summarize(
    split: str,
    loss: float,
    tokens_scored: int,
    tokens_total: int,
    num_chars: int,
    num_bytes: int,
    tokenizer_kind: str,
) -> Evaluation:
    """Perplexity, plus bits per char/byte over the share of the text that was scored."""
    result = Evaluation(split, loss, perplexity(loss), tokens_scored)
    share = tokens_scored / max(tokens_total, 1)
    bits = loss * tokens_scored / math.log(2)
    if tokenizer_kind == "char":
        result.bits_per_char = bits / max(num_chars * share, 1)
    if tokenizer_kind == "bpe":
        result.bits_per_byte = bits / max(num_bytes * share, 1)
    return result


def evaluate_split(
    model: LanguageModel,
    split: EncodedSplit,
    config: RunConfig,
    name: str,
    tokenizer_kind: str,
) -> Evaluation:
    """Perplexity (and bits per char/byte) of ``model`` over a whole encoded split."""
    source = eval_streams(split, config, name)
    loss = evaluate_loss(model, source, config.train.bptt)
    scored = (source.size(0) - 1) * source.size(1)
    return summarize(name, loss, scored, len(split.ids), split.num_chars, split.num_bytes, tokenizer_kind)


def text_stream(text: EncodedSplit, eos_id: int) -> Tensor:
    """A text scored whole as one stream (T, 1): ``<eos>``, then its ids (each line followed by
    ``<eos>``), so every token of it is a target, the first read after an ``<eos>`` as in training."""
    ids = torch.from_numpy(np.asarray(text.ids, dtype=np.int64))
    return torch.cat([torch.tensor([eos_id], dtype=torch.int64), ids]).unsqueeze(1)


def evaluate_text(
    model: LanguageModel, text: EncodedSplit, bptt: int, eos_id: int, tokenizer_kind: str, name: str
) -> Evaluation:
    """Perplexity (and bits per char/byte) of ``model`` over a whole text as one stream (``text_stream``)."""
    loss = evaluate_loss(model, text_stream(text, eos_id), bptt)
    tokens = len(text.ids)
    return summarize(name, loss, tokens, tokens, text.num_chars, text.num_bytes, tokenizer_kind)


def eval_streams(split: EncodedSplit, config: RunConfig, name: str) -> torch.Tensor:
    """``split`` as the run's ``eval_batch_size`` streams (T, B), a clear error if too short."""
    batch = config.train.eval_batch_size
    check_length(len(split.ids), batch, name)
    return batchify(split.ids, batch)
