"""Adaptive softmax (Grave, Joulin, Cissé, Grangier & Jégou 2017, "Efficient softmax
approximation for GPUs"): a cheaper output layer for large vocabularies, with exact
log-probabilities.

The vocabulary, in frequency order (the word tokenizer's ids are: specials, then the most
frequent words first), is cut at ``c_1 < … < c_n < V`` into a *head* (the ``c_1`` most
frequent tokens plus one entry per cluster) and ``n`` tail *clusters*
``[c_k, c_k+1)``. For a hidden vector ``h``:

    log p(w | h) = log p_head(w | h)                         w < c_1
    log p(w | h) = log p_head(k | h) + log p_k(w | h)         c_k <= w < c_k+1

so the probabilities over the whole vocabulary sum to 1. Cluster ``k``'s softmax is taken
over a projection of ``h`` to ``d / 4^k`` units (the paper's capacity reduction for rare
words), and in training only the positions whose target lies in cluster ``k`` compute it:
a step's output cost is about ``V_head·d + Σ_k share_k·(V_k·d_k)`` instead of ``V·d``.

Written here rather than taken from ``nn.AdaptiveLogSoftmaxWithLoss`` because it must
support weight tying: with ``tied`` the head's word rows and every cluster's output rows
*are* the embedding's rows (passed in as ``embedding``), and the cluster projections keep
``d`` units so that they can be (Press & Wolf 2017 for the tying; the paper's own models
are untied).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.fast.output_linear import fast_linear
from lstmlm.model.normalized import NormalizedOutput, tied_matrix

DIV_VALUE = 4  # each cluster's projection has 1/4 the units of the previous one (the paper's)


class AdaptiveSoftmax(NormalizedOutput):
    """The head and the clusters; ``embedding`` (the tied rows) is passed to each call, not kept."""

    starts: Tensor  # a buffer

    def __init__(self, in_features: int, ntoken: int, cutoffs: tuple[int, ...], *, tied: bool) -> None:
        super().__init__()
        self.edges = (*cutoffs, ntoken)  # cluster k covers [edges[k], edges[k+1])
        self.shortlist = cutoffs[0]
        self.tied = tied
        self.register_buffer("starts", torch.tensor(cutoffs), persistent=False)  # each cluster's first id
        clusters = len(cutoffs)
        rows = clusters if tied else self.shortlist + clusters  # tied: the word rows are the embedding's
        self.head_weight = nn.Parameter(torch.empty(rows, in_features))
        self.head_bias = nn.Parameter(torch.zeros(self.shortlist + clusters))
        self.projections = nn.ModuleList()
        self.tail_weights = nn.ParameterList()
        self.tail_biases = nn.ParameterList()
        for k in range(clusters):
            size = self.edges[k + 1] - self.edges[k]
            units = in_features if tied else max(1, in_features // DIV_VALUE ** (k + 1))
            self.projections.append(nn.Linear(in_features, units, bias=False))
            if not tied:
                self.tail_weights.append(nn.Parameter(torch.empty(size, units)))
            self.tail_biases.append(nn.Parameter(torch.zeros(size)))
        for weight in (self.head_weight, *self.tail_weights):
            nn.init.uniform_(weight, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"cutoffs={self.edges[:-1]}, ntoken={self.edges[-1]}, tied={self.tied}"

    def log_prob(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        """Log-probabilities of every token, (..., d) -> (..., V) fp32; they sum to 1 in probability."""
        flat = x.reshape(-1, x.size(-1))
        head = F.log_softmax(self._head_logits(flat, embedding).float(), dim=-1)
        parts = [head[:, : self.shortlist]]
        for k in range(len(self.projections)):
            tail = F.log_softmax(self._tail_logits(k, flat, embedding).float(), dim=-1)
            parts.append(head[:, self.shortlist + k, None] + tail)
        return torch.cat(parts, dim=-1).view(*x.shape[:-1], -1)

    def nll(self, x: Tensor, targets: Tensor, embedding: Tensor | None = None) -> Tensor:
        """-log p(target) for each position, (..., d) and (...) -> (...) fp32; only the
        positions whose target is in cluster k compute cluster k's softmax."""
        flat, flat_targets = x.reshape(-1, x.size(-1)), targets.reshape(-1)
        cluster = torch.bucketize(flat_targets, self.starts, right=True)  # 0: the head's words
        head_index = torch.where(cluster == 0, flat_targets, self.shortlist + cluster - 1)
        head = F.log_softmax(self._head_logits(flat, embedding).float(), dim=-1)
        logp = head.gather(1, head_index.unsqueeze(1)).squeeze(1)
        for k in range(len(self.projections)):
            rows = (cluster == k + 1).nonzero().squeeze(1)  # none: still in the graph, zero gradients (DDP)
            tail = F.log_softmax(self._tail_logits(k, flat[rows], embedding).float(), dim=-1)
            inside = (flat_targets[rows] - self.edges[k]).unsqueeze(1)
            logp = logp.index_add(0, rows, tail.gather(1, inside).squeeze(1))
        return -logp.view(targets.shape)

    def _head_logits(self, x: Tensor, embedding: Tensor | None) -> Tensor:
        weight: Tensor = self.head_weight
        if self.tied:
            weight = torch.cat([_tied(embedding)[: self.shortlist], weight])
        return fast_linear(x, weight, self.head_bias)

    def _tail_logits(self, k: int, x: Tensor, embedding: Tensor | None) -> Tensor:
        start, end = self.edges[k], self.edges[k + 1]
        weight = _tied(embedding)[start:end] if self.tied else self.tail_weights[k]
        return fast_linear(self.projections[k](x), weight, self.tail_biases[k])


def _tied(embedding: Tensor | None) -> Tensor:
    return tied_matrix(embedding, "AdaptiveSoftmax")
