"""Sampling: the prompt is fed once, then one step per token with the state carried.

Temperature 0 is greedy (argmax). Top-k keeps the k most likely tokens; top-p (nucleus,
Holtzman et al. 2020) keeps the smallest set whose probability reaches p. Sampling uses
its own CPU ``torch.Generator``, so the same seed gives the same text on any device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from lstmlm.data.tokenizer import Tokenizer
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import State


def filter_logits(logits: Tensor, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Set logits outside the top-k / top-p set to -inf. ``logits``: (V,)."""
    if top_k > 0 and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the first to cross p
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return logits


def pick_next(
    logits: Tensor, temperature: float, top_k: int, top_p: float, generator: torch.Generator
) -> int:
    logits = logits.float().cpu()
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def prime(model: LanguageModel, ids: Sequence[int]) -> tuple[Tensor, State]:
    """Feed ``ids`` in one call; returns the last position's logits (V,) and the state."""
    device = next(model.parameters()).device
    model.eval()
    x = torch.tensor(list(ids), dtype=torch.long, device=device).unsqueeze(1)  # (T, 1)
    logits, state = model(x, model.init_state(1, device))
    return logits[-1, 0], state


@torch.no_grad()
def sample(
    model: LanguageModel,
    prompt_ids: Sequence[int],
    *,
    max_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield up to ``max_tokens`` sampled token ids continuing ``prompt_ids`` (non-empty)."""
    generator = generator or torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    logits, state = prime(model, prompt_ids)
    for _ in range(max_tokens):
        token = pick_next(logits, temperature, top_k, top_p, generator)
        yield token
        x = torch.tensor([[token]], dtype=torch.long, device=device)
        out, state = model(x, state)
        logits = out[0, 0]


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """``<eos>`` (the start-of-line context the model saw in training) followed by the prompt."""
    return [tokenizer.eos_id, *tokenizer.encode(prompt)]


class StreamDecoder:
    """Turns a growing list of ids into new text pieces (safe for multi-byte BPE tokens)."""

    def __init__(self, tokenizer: Tokenizer, prefix: Sequence[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = list(prefix)
        self.text = tokenizer.decode(self.ids)

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for more bytes
            return ""
        # decoding is not always prefix-stable (word joins): then emit the separator too
        stable = text.startswith(self.text)
        piece = text[len(self.text) :] if stable else " " + self.tokenizer.decode([token])
        self.text = text
        return piece
