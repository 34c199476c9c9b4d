"""Mixture of softmaxes (Yang, Dai, Salakhutdinov & Cohen 2018, "Breaking the Softmax
Bottleneck: A High-Rank RNN Language Model", ICLR): K softmaxes over the vocabulary, mixed
by a prior that depends on the context.

A single softmax over ``h Eᵀ`` can only express a log-probability matrix (contexts x words)
of rank at most d + 1, the *softmax bottleneck* (the paper's section 2). The mixture lifts
that bound. For the last layer's output ``h`` (d units), with K experts:

    π_k(h)      = softmax_k(W_π h)                          the prior over experts (eq. 3; W_π: K x d)
    h_k         = tanh(P_k h + b_k)                          expert k's context (e units, eq. 3)
    log p(w|h)  = logsumexp_k( log π_k + log_softmax(h_k Eᵀ + b)_w )      (eq. 2, in log space)

E (V x e) is the output embedding: with ``tied`` the input embedding itself (Press & Wolf
2017; passed into each call as ``embedding``, as the adaptive softmax takes it), so tying
asks e = emsize, not d = nhid: the projections map d -> emsize. Untied: its own V x e matrix
``weight``. The prior has no bias and the contexts have one, as in the paper's code.

Every expert's softmax is normalized over the whole vocabulary, so a step costs about K
decoders (K·V·e multiply-adds per position instead of V·d) and K (positions x V) score
matrices. The experts are taken one at a time, each folded into the running sum with
``torch.logaddexp`` (the loss: each expert's cross-entropy, then a logsumexp over K), so no
K x positions x V tensor is built where no gradient needs one; on this machine that was
also the faster layout (docs/training.md, "Mixture of softmaxes"). Log-softmaxes in fp32, as
the adaptive softmax's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.fast.output_linear import fast_linear
from lstmlm.model.normalized import NormalizedOutput, tied_matrix


class MixtureOfSoftmaxes(NormalizedOutput):
    """The prior and the K context projections; ``embedding`` (the tied E) is passed to each call."""

    def __init__(self, in_features: int, ntoken: int, units: int, experts: int, *, tied: bool) -> None:
        super().__init__()
        self.experts, self.units, self.tied = experts, units, tied
        self.prior = nn.Linear(in_features, experts, bias=False)  # W_π
        self.latent = nn.Linear(in_features, experts * units)  # the P_k and b_k, stacked
        if not tied:
            self.weight = nn.Parameter(torch.empty(ntoken, units))  # E, untied: one row per token
            nn.init.uniform_(self.weight, -0.1, 0.1)
        self.bias = nn.Parameter(torch.zeros(ntoken))  # one row per token (``--vocab extend``)

    def extra_repr(self) -> str:
        return f"experts={self.experts}, units={self.units}, ntoken={self.bias.numel()}, tied={self.tied}"

    def log_prob(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        """Log-probabilities of every token, (..., d) -> (..., V) fp32; they sum to 1 in probability."""
        flat = x.reshape(-1, x.size(-1))
        log_prior, contexts = self._experts(flat)
        weight = self._output_weight(embedding)
        total: Tensor | None = None
        for k in range(self.experts):
            scores = fast_linear(contexts[k], weight, self.bias).float()
            part = log_prior[:, k, None] + F.log_softmax(scores, dim=-1)  # log π_k + log p_k(w)
            total = part if total is None else torch.logaddexp(total, part)
        assert total is not None  # experts >= 1
        return total.view(*x.shape[:-1], -1)

    def nll(self, x: Tensor, targets: Tensor, embedding: Tensor | None = None) -> Tensor:
        """-log p(target) for each position, (..., d) and (...) -> (...) fp32, without the mixed
        (positions x V) distribution: each expert's cross-entropy, then a logsumexp over K."""
        flat, flat_targets = x.reshape(-1, x.size(-1)), targets.reshape(-1)
        log_prior, contexts = self._experts(flat)
        weight = self._output_weight(embedding)
        per_expert = [
            -F.cross_entropy(
                fast_linear(contexts[k], weight, self.bias).float(), flat_targets, reduction="none"
            )
            for k in range(self.experts)
        ]  # each (N,): log p_k(target)
        logp = torch.logsumexp(log_prior + torch.stack(per_expert, dim=1), dim=1)
        return -logp.view(targets.shape)

    def _experts(self, flat: Tensor) -> tuple[Tensor, Tensor]:
        """log π (N, K) fp32 and the contexts h_k (K, N, e), each expert's rows contiguous."""
        log_prior = F.log_softmax(self.prior(flat).float(), dim=-1)
        contexts = torch.tanh(self.latent(flat)).view(-1, self.experts, self.units)
        return log_prior, contexts.transpose(0, 1).contiguous()

    def _output_weight(self, embedding: Tensor | None) -> Tensor:
        return tied_matrix(embedding, "MixtureOfSoftmaxes") if self.tied else self.weight
