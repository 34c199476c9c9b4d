"""Sampling: the prompt is fed once, then one step per token with the state carried.

Temperature 0 is greedy (argmax). Top-k keeps the k most likely tokens; top-p (nucleus,
Holtzman et al. 2020) keeps the smallest set whose probability reaches p. Sampling uses
its own CPU ``torch.Generator``, so the same seed gives the same text on any device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from lstmlm.data.direction import require_forward
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.model.fast.fused_step import FusedStep
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
    """Feed ``ids`` in one call; returns the last position's logits (V,) and the state.

    A backward run predicts the token before, not the next: refused in one line."""
    require_forward(model.cfg.direction, "generating and next-token probabilities")
    device = next(model.parameters()).device
    model.eval()
    x = torch.tensor(list(ids), dtype=torch.long, device=device).unsqueeze(1)  # (T, 1)
    logits, state = model(x, model.init_state(1, device))
    return logits[-1, 0], state


@torch.inference_mode()
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
    logits, state = prime(model, prompt_ids)
    next_logits = token_steps(model, state)
    for _ in range(max_tokens):
        token = pick_next(logits, temperature, top_k, top_p, generator)
        yield token
        logits = next_logits(token)


def token_steps(model: LanguageModel, state: State) -> Callable[[int], Tensor]:
    """``next_logits(token) -> (V,)``, carrying the state from ``state`` on: through
    ``FusedStep`` where it can run the model, else through the model's ``forward``."""
    fused = FusedStep.of(model)
    if fused is not None:
        states = fused.layer_states(state)

        def fused_step(token: int) -> Tensor:
            nonlocal states
            logits, states = fused.step(token, states)
            return logits

        return fused_step
    device = next(model.parameters()).device

    def model_step(token: int) -> Tensor:
        nonlocal state
        out, state = model(torch.tensor([[token]], dtype=torch.long, device=device), state)
        return out[0, 0]

    return model_step


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """``<eos>`` (the start-of-line context the model saw in training) followed by the prompt."""
    return [tokenizer.eos_id, *tokenizer.encode(prompt)]


class StreamDecoder:
    """Turns a growing list of ids into new text pieces (safe for multi-byte BPE tokens).

    ``decode`` works line by line (``<eos>`` is ``"\\n"``), so only the line being written
    is decoded again, and for word and char tokenizers not even that: their line is its
    tokens' strings joined (``Tokenizer.piece_separator``), extended one token at a time.
    """

    def __init__(self, tokenizer: Tokenizer, prefix: Sequence[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self._head = ""  # the text of the ids up to the last <eos>, included
        self._line: list[int] = []  # the ids after it, and their text
        self._line_text = ""
        for token in prefix:
            self._extend(token)
        self.text = self._decoded()

    def _extend(self, token: int) -> None:
        self.ids.append(token)
        if token == self.tokenizer.eos_id:
            self._head += self._line_text + "\n"
            self._line, self._line_text = [], ""
            return
        separator = self.tokenizer.piece_separator
        if separator is None:
            self._line.append(token)
            self._line_text = self.tokenizer.decode(self._line)
            return
        piece = self.tokenizer.decode([token])
        self._line_text = self._line_text + separator + piece if self._line else piece
        self._line.append(token)

    def _decoded(self) -> str:
        """``tokenizer.decode(self.ids)``."""
        return self._head + self._line_text

    def push(self, token: int) -> str:
        self._extend(token)
        text = self._decoded()
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for more bytes
            return ""
        # decoding is not always prefix-stable (word joins): then emit the separator too
        stable = text.startswith(self.text)
        piece = text[len(self.text) :] if stable else " " + self.tokenizer.decode([token])
        self.text = text
        return piece
