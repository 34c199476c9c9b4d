"""Perplexity over a whole split with the hidden state carried across windows.

perplexity = exp(token-weighted mean cross-entropy); bits per character (``char``
tokenizer) and bits per byte (``bpe``) rescale the same total loss by the text length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlm.data.tokens import get_window, num_windows
from lstmlm.model.lm import LanguageModel


@torch.no_grad()
def evaluate_loss(model: LanguageModel, source: Tensor, bptt: int) -> float:
    """Mean next-token cross-entropy (nats) over batchified ``source`` (T, B)."""
    model.eval()
    device = next(model.parameters()).device
    source = source.to(device)
    hidden = model.init_state(source.size(1), device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for index in range(num_windows(source, bptt)):
        x, y = get_window(source, index * bptt, bptt)
        logits, hidden = model(x, hidden)
        total += F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").double()
        count += y.numel()
    return float(total) / max(count, 1)


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
    result = Evaluation(split, loss, math.exp(min(loss, 700.0)), tokens_scored)
    share = tokens_scored / max(tokens_total, 1)
    bits = loss * tokens_scored / math.log(2)
    if tokenizer_kind == "char":
        result.bits_per_char = bits / max(num_chars * share, 1)
    if tokenizer_kind == "bpe":
        result.bits_per_byte = bits / max(num_bytes * share, 1)
    return result
