"""Which way a model reads its text: ``ModelConfig.direction``, applied to token ids.

A backward language model (flair's, Akbik, Blythe & Vollgraf 2018, "Contextual String
Embeddings for Sequence Labeling") reads right to left: it predicts each token from the
tokens to its right. lstmlm trains and scores one by reversing the token ids of a split
after tokenization and before batchify (``oriented``), so batchify, the BPTT windows and
the carried state are those of a forward model and the state runs backwards through the
text. Every line still ends with ``<eos>``: the ids are reversed save the final ``<eos>``,
which stays last::

    forward   a b <eos> c d <eos>
    backward  d c <eos> b a <eos>

so a backward stream is exactly the forward stream of the text with its lines in reverse
order and each line's tokens reversed (the equality the tests check bit for bit), and a
line read backwards starts after an ``<eos>`` as a forward line does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from lstmlm.data.tokens import EncodedSplit
from lstmlm.errors import LstmlmError

FORWARD, BACKWARD = "forward", "backward"


def oriented(ids: np.ndarray, direction: str, eos_id: int) -> np.ndarray:
    """``ids`` (N,) in the order a ``direction`` model reads them (see the module docstring);
    forward ids are returned as they are, backward ones as a new array of the same dtype."""
    if direction == FORWARD or not len(ids):
        return ids
    if int(ids[-1]) == eos_id:
        return np.concatenate([np.asarray(ids[-2::-1]), np.asarray(ids[-1:])])
    return np.ascontiguousarray(ids[::-1])


def oriented_split(split: EncodedSplit, direction: str, eos_id: int) -> EncodedSplit:
    """``split`` with its ids ``oriented``; its text's size (chars, bytes) is the same."""
    if direction == FORWARD:
        return split
    return replace(split, ids=oriented(split.ids, direction, eos_id))


def oriented_line(ids: Sequence[int], direction: str) -> list[int]:
    """One line's ids (no ``<eos>``) in the order a ``direction`` model reads them."""
    return list(ids) if direction == FORWARD else list(reversed(ids))


def require_forward(direction: str, what: str) -> None:
    """A one-line error where ``what`` needs a model that reads left to right."""
    if direction != FORWARD:
        raise LstmlmError(
            f"{what}: this run reads backward (--direction backward): it predicts the token before, "
            "not the next one; use a forward run"
        )
