"""The continuous cache (Grave, Joulin & Usunier 2017, "Improving Neural Language Models with
a Continuous Cache"): recent hidden states vote for the words that followed them.

Each stream keeps its last ``window`` pairs (h_i, x_i+1): the output layer's input at
position i and the token that came next. At position t, with hidden state h_t,

    p_cache(w | h_t) = Σ_{i in window, x_i+1 = w} exp(θ h_tᵀ h_i) / Σ_{i in window} exp(θ h_tᵀ h_i)
    p(w | h_t)       = (1 − λ) p_model(w | h_t) + λ p_cache(w | h_t)

The pair of position t itself (whose next token is the one being predicted) enters the
window only after t is scored. The mixture is taken in log space, so λ = 0 gives the
model's log-probabilities bit for bit; a position with an empty window keeps p_model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from lstmlm.evaluation.perplexity import ScoredWindow
from lstmlm.evaluation.settings import LAMBDAS, THETAS, CacheSettings


class NeuralCache:
    """The windows of B streams, fed one BPTT window at a time.

    The pairs live in a ring buffer of ``window`` + T slots per stream, written in place:
    nothing grows or is copied per window, and one bmm scores a window against every slot
    (slots outside a position's window, or empty, are masked by their absolute positions).
    """

    def __init__(self, window: int, theta: float) -> None:
        self.window, self.theta = window, theta
        self.keys: Tensor | None = None  # (B, C, d): the slots' hidden states
        self.values = torch.empty(0, dtype=torch.long)  # (B, C): the token that followed each
        self.positions = torch.empty(0, dtype=torch.long)  # (C,): each slot's position, -1 if empty
        self.seen = 0  # positions written so far, per stream

    def attend(self, features: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For window (T, B, d) and its targets (T, B): each position's weights over the slots
        (B, T, C), the slots' next tokens (B, C), and whether a position had any pair (T,).
        The window is written first: its own earlier positions count, its later ones are masked."""
        queries = features.transpose(0, 1).float()
        steps = queries.size(1)
        self._write(queries, targets.transpose(0, 1))
        now = self.seen + torch.arange(steps, device=queries.device).unsqueeze(1)  # (T, 1)
        visible = (self.positions >= 0) & (self.positions < now) & (self.positions >= now - self.window)
        scores = torch.bmm(queries, self.keys.transpose(1, 2)) * self.theta  # type: ignore[union-attr]  # _write filled keys
        weights = torch.softmax(scores.masked_fill(~visible, -math.inf), dim=-1)
        has_pairs = visible.any(dim=-1)
        weights = weights.masked_fill(~has_pairs.view(1, -1, 1), 0.0)
        self.seen += steps
        return weights, self.values, has_pairs

    def _write(self, queries: Tensor, tokens: Tensor) -> None:
        batch, steps, dim = queries.shape
        if self.keys is None or self.keys.size(1) < self.window + steps:
            self._grow(batch, self.window + steps, dim, queries.device)
        new = self.seen + torch.arange(steps, device=queries.device)
        slots = new % self.positions.numel()
        self.keys[:, slots] = queries  # type: ignore[index]  # set by now (the check above)
        self.values[:, slots] = tokens
        self.positions[slots] = new

    def _grow(self, batch: int, capacity: int, dim: int, device: torch.device) -> None:
        keys = torch.zeros(batch, capacity, dim, device=device)
        values = torch.zeros(batch, capacity, dtype=torch.long, device=device)
        positions = torch.full((capacity,), -1, dtype=torch.long, device=device)
        if self.keys is not None:  # move the kept pairs to their slots in the larger ring
            kept = self.positions >= 0
            slots = self.positions[kept] % capacity
            keys[:, slots], values[:, slots] = self.keys[:, kept], self.values[:, kept]
            positions[slots] = self.positions[kept]
        self.keys, self.values, self.positions = keys, values, positions

    def log_p_cache(self, features: Tensor, targets: Tensor) -> Tensor:
        """log p_cache(target) at each position (T, B): -inf where the window lacks the word,
        NaN where the window is empty (the first position of a stream)."""
        weights, values, has_pairs = self.attend(features, targets)
        match = values.unsqueeze(1) == targets.transpose(0, 1).unsqueeze(2)  # (B, T, C)
        p = (weights * match).sum(dim=-1).transpose(0, 1)
        return p.log().masked_fill(~has_pairs.unsqueeze(1), math.nan)

    def distribution(self, features: Tensor, targets: Tensor, ntoken: int) -> Tensor:
        """p_cache over the whole vocabulary (T, B, V); rows of positions with no pair are 0."""
        weights, values, _ = self.attend(features, targets)
        index = values.unsqueeze(1).expand_as(weights)
        p = torch.zeros(*weights.shape[:2], ntoken, device=weights.device).scatter_add_(2, index, weights)
        return p.transpose(0, 1)


def mix(model_logp: Tensor, cache_logp: Tensor, lam: float) -> Tensor:
    """log((1 − λ) p_model + λ p_cache), elementwise, 0 <= λ < 1; p_model alone where
    p_cache is undefined (NaN: an empty window)."""
    cache_part = cache_logp + math.log(lam) if lam > 0 else torch.full_like(cache_logp, -math.inf)
    mixed = torch.logaddexp(model_logp + math.log1p(-lam), cache_part)
    return torch.where(cache_logp.isnan(), model_logp, mixed)


@dataclass
class CacheScores:
    """Summed losses (nats) over the windows scored: the model's alone and mixed with the cache."""

    model: float = 0.0
    cached: float = 0.0
    tokens: int = 0


class CacheScorer:
    """Adds up the model's and the cache-mixed loss, window after window."""

    def __init__(self, settings: CacheSettings) -> None:
        self.cache = NeuralCache(settings.window, settings.theta)
        self.lam = settings.lam
        self.scores = CacheScores()

    def add(self, w: ScoredWindow) -> None:
        mixed = mix(-w.token_loss, self.cache.log_p_cache(w.features, w.targets), self.lam)
        self.scores.model += float(w.token_loss.sum(dtype=torch.float64))
        self.scores.cached -= float(mixed.sum(dtype=torch.float64))
        self.scores.tokens += w.targets.numel()


def score_with_cache(windows: Iterable[ScoredWindow], settings: CacheSettings) -> CacheScores:
    """The model's and the cache-mixed loss over ``windows``, in one pass."""
    scorer = CacheScorer(settings)
    for w in windows:
        scorer.add(w)
    return scorer.scores


def tune(windows: list[ScoredWindow], window: int) -> tuple[CacheSettings, float]:
    """The (θ, λ) of ``THETAS`` × ``LAMBDAS`` with the lowest mean loss over ``windows``, and
    that loss. One cache pass per θ; λ only reweights it."""
    best: tuple[float, CacheSettings] | None = None
    tokens = sum(w.targets.numel() for w in windows)
    for theta in THETAS:
        cache = NeuralCache(window, theta)
        pairs = [(-w.token_loss, cache.log_p_cache(w.features, w.targets)) for w in windows]
        for lam in LAMBDAS:
            total = sum(float(mix(logp, clogp, lam).sum(dtype=torch.float64)) for logp, clogp in pairs)
            if best is None or -total / tokens < best[0]:
                best = (-total / tokens, CacheSettings(window=window, theta=theta, lam=lam))
    assert best is not None
    return best[1], best[0]
