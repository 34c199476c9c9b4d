"""Contextual embeddings: the hidden states a trained run gives each token and word of a text.

``embed`` (``Model.embed``) reads each text as one line, after an ``<eos>`` as in training,
and returns, per text, its tokens (strings), the hidden states (T, H) of one layer, one row
per token, and a vector per whitespace word. A forward run's state at token t has read the
text up to and including t; a backward run (``--direction backward``) reads right to left,
so its state at token t has read t and everything after it (the rows are in reading order
all the same). A word's vector is taken where the state has read all of the word and one
side of its context, as flair's contextual string embeddings do (Akbik, Blythe & Vollgraf
2018, "Contextual String Embeddings for Sequence Labeling"): forward, the state after the
word's last token; backward, the state after its first token (read right to left: before
the word, in reading order). ``Embedder`` concatenates a forward and a backward run's word
vectors, [forward; backward], as flair's stacked embedding does.

Word tokenizers give one token a word (two where the run's pre-tokenizer splits ``dog.``);
char and bpe tokens are grouped into the whitespace words, a word's leading whitespace
tokens (char) left out of it. Where a word's end is not a token boundary, it joins the next
word (as ``score`` groups words). Each word boundary is found by encoding the text up to
it, so a text's words cost O(words x length): made for sentences and paragraphs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from lstmlm.data.direction import BACKWARD, FORWARD, oriented_line
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.errors import BadArgument
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import FusedStack
from lstmlm.runs.load import Run


@dataclass(frozen=True, eq=False)  # tensors have no truth value: compare the fields yourself
class Embedding:
    """One text's tokens, its layer's hidden states, and its words' vectors."""

    text: str
    direction: str  # forward or backward: which side of a token its state has read
    layer: int  # the layer, 0 = the first (a negative index given is resolved)
    tokens: tuple[str, ...]  # each token's text, in reading order
    states: Tensor  # (T, H): row t, the state after reading token t (see the module docstring)
    words: tuple[str, ...]  # the whitespace words (a group where a word end is not a token end)
    spans: tuple[tuple[int, int], ...]  # each word's tokens [start, end)
    word_vectors: Tensor  # (W, H): forward, states[end - 1]; backward, states[start]


def check_layer(layer: object, nlayers: int) -> int:
    """``layer`` as an index 0..nlayers-1 (negative ones count from the top, -1 the last)."""
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise BadArgument(f"layer must be an integer (got {layer!r})")
    if not -nlayers <= layer < nlayers:
        raise BadArgument(
            f"layer must be in -{nlayers}..{nlayers - 1} for this {nlayers}-layer model (got {layer})"
        )
    return layer % nlayers


def check_texts(texts: object) -> list[str]:
    """``texts``: a str or a non-empty list of str, each one line with a word."""
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, str | Iterable):
        raise BadArgument(f"texts must be a str or a non-empty list of str (got a {type(texts).__name__})")
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise BadArgument("texts is empty: give at least one text to embed")
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise BadArgument(f"texts[{index}] must be a str (got a {type(text).__name__})")
        if not text.strip():
            raise BadArgument(f"texts[{index}] is empty: nothing to embed")
        if "\n" in text.strip() or "\r" in text.strip():
            raise BadArgument(f"texts[{index}] has a line break: embed reads each text as one line")
    return [text.strip() for text in items]


@torch.no_grad()
def layer_states(model: LanguageModel, ids: Sequence[int], layer: int) -> Tensor:
    """The hidden states (T, H) of ``layer`` as ``model`` reads ``ids`` (T,) from the zero state."""
    model.eval()
    device = next(model.parameters()).device
    tokens = torch.tensor(list(ids), dtype=torch.long, device=device).unsqueeze(1)  # (T, 1)
    if layer == model.cfg.nlayers - 1:
        features, _ = model.features(tokens, None)  # in eval mode the dropout is the identity
        return features[:, 0].float()
    stack = model.rnn
    x = model.drop_input(model.drop_words(tokens, model.encoder(tokens)))  # as model._recurrent
    if isinstance(stack, FusedStack):  # the layer's own output, through a hook on its nn.LSTM/GRU
        captured: list[Tensor] = []
        hook = stack.layers[layer].register_forward_hook(lambda _m, _i, out: captured.append(out[0]))
        try:
            stack(x, None)
        finally:
            hook.remove()
        return captured[0][:, 0].float()
    _, _, traces = stack.trace(x, None)  # the equation cells, step by step, keep each layer's output
    return traces[layer]["hidden"][:, 0].float()


def word_spans(tokenizer: Tokenizer, text: str, ids: Sequence[int]) -> list[tuple[str, int, int]]:
    """Each whitespace word of ``text`` (one line) with its tokens [start, end) in ``ids``."""
    words = text.split()
    spans: list[tuple[str, int, int]] = []
    first_word = start = cut = 0
    for index, word in enumerate(words):
        cut = text.index(word, cut) + len(word)
        if index == len(words) - 1:
            through = len(ids)
        else:
            prefix = tokenizer.encode(text[:cut])
            if list(ids[: len(prefix)]) != prefix:
                continue  # not a token boundary: the word joins the next one
            through = len(prefix)
        first = start
        while first < through - 1 and not tokenizer.decode([ids[first]]).strip():
            first += 1  # a char tokenizer's space before the word is not part of it
        if through > first:
            spans.append((" ".join(words[first_word : index + 1]), first, through))
        first_word, start = index + 1, through
    return spans


def embed(
    model: LanguageModel, tokenizer: Tokenizer, texts: Sequence[str], layer: int = -1
) -> list[Embedding]:
    """Each text's ``Embedding`` (see the module docstring); ``layer``: -1, the last."""
    layer = check_layer(layer, model.cfg.nlayers)
    direction = model.cfg.direction
    out = []
    for index, text in enumerate(check_texts(texts)):
        ids = tokenizer.encode(text)
        if not ids:
            raise BadArgument(f"texts[{index}] has no tokens: nothing to embed")
        read = oriented_line(ids, direction)
        states = layer_states(model, [tokenizer.eos_id, *read], layer)[1:]  # after each token read
        if direction == BACKWARD:
            states = states.flip(0)  # back in reading order
        spans = word_spans(tokenizer, text, ids)
        rows = [end - 1 if direction == FORWARD else start for _, start, end in spans]
        pieces = tuple((piece.strip() or piece) for piece in (tokenizer.decode([t]) for t in ids))
        out.append(
            Embedding(
                text, direction, layer, pieces, states,
                tuple(word for word, _, _ in spans), tuple((s, e) for _, s, e in spans), states[rows],
            )
        )  # fmt: skip
    return out


class Embeds(Protocol):
    """What ``Embedder`` needs of a model: ``lstmlm.Model`` has it."""

    run: Run

    @property
    def tokenizer(self) -> Tokenizer: ...

    def embed(self, texts: str | Sequence[str], layer: int = -1) -> list[Embedding]: ...


@dataclass(frozen=True, eq=False)
class WordEmbeddings:
    """One text's words and their vectors (W, H_forward + H_backward): [forward; backward]."""

    text: str
    words: tuple[str, ...]
    vectors: Tensor


class Embedder:
    """flair's contextual string embeddings from a forward and a backward run: each word's
    forward vector (after its last token) beside its backward one (before its first).

        embedder = Embedder(lstmlm.load("runs/fwd"), lstmlm.load("runs/bwd"))
        embedder.embed(["The keys are old ."])[0].vectors   # (5, H_fwd + H_bwd)
    """

    def __init__(self, forward: Embeds, backward: Embeds, layer: int = -1) -> None:
        for model, direction in ((forward, FORWARD), (backward, BACKWARD)):
            if model.run.config.model.direction != direction:
                raise BadArgument(
                    f"Embedder's {direction} run must read {direction} (--direction {direction})"
                )
        if forward.tokenizer.to_json() != backward.tokenizer.to_json():
            raise BadArgument("the forward and backward runs have different tokenizers: train both on one")
        for model in (forward, backward):
            check_layer(layer, model.run.config.model.nlayers)
        self.forward, self.backward, self.layer = forward, backward, layer

    def embed(self, texts: str | Sequence[str]) -> list[WordEmbeddings]:
        """Each text's words and their [forward; backward] vectors."""
        ahead, behind = self.forward.embed(texts, self.layer), self.backward.embed(texts, self.layer)
        return [
            WordEmbeddings(a.text, a.words, torch.cat([a.word_vectors, b.word_vectors], dim=1))
            for a, b in zip(ahead, behind, strict=True)
        ]
