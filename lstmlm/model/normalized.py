"""``NormalizedOutput``: the output layers that return log-probabilities themselves.

The full softmax is a ``nn.Linear`` whose scores the consumers log-softmax; an output layer
that normalizes inside (the adaptive softmax, ``adaptive.py``; the mixture of softmaxes,
``mixture.py``) subclasses this, so ``LanguageModel.logits``, the batch-1 sampling step and
the exported step model ask one question: does the output layer return log-probabilities?
(A log-softmax of log-probabilities gives them back, so every consumer that log-softmaxes
the logits reads either kind.)
"""

from __future__ import annotations

from torch import Tensor, nn


class NormalizedOutput(nn.Module):
    """An output layer with exact log-probabilities; ``embedding`` is the tied matrix or None."""

    def log_prob(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        """Log-probabilities of every token, (..., d) -> (..., V) fp32, summing to 1 in probability."""
        raise NotImplementedError

    def nll(self, x: Tensor, targets: Tensor, embedding: Tensor | None = None) -> Tensor:
        """-log p(target) for each position, (..., d) and (...) -> (...) fp32."""
        raise NotImplementedError


def tied_matrix(embedding: Tensor | None, layer: str) -> Tensor:
    """The embedding a tied output layer was passed; a missing one is a programming error."""
    if embedding is None:
        raise ValueError(f"a tied {layer} needs the embedding matrix")
    return embedding
