"""Dynamic evaluation (Krause, Kahembwe, Murray & Renals 2018): adapt the weights to the text
being scored, one segment at a time.

The split is read as one stream in segments s_1, s_2, … of ``segment`` tokens, the state
carried. Each segment is scored with the current weights θ first, then θ takes one step on
that segment's mean loss L(s_i), so the next segment is predicted by a model that has
seen every segment before it (and never the one it is scoring):

    sgd:  θ ← θ − η ∇L(s_i) + λ (θ₀ − θ)
    rms:  θ ← θ − η ∇L(s_i) / (MS + ε) + λ·r ⊙ (θ₀ − θ)

θ₀ are the trained weights. In the RMS variant MS = sqrt(Σ_b (∇L_b)²) over the training
split's batches b (the released code's sum, not mean) and the decay rates
r = MS / Σ_params mean(MS), capped at 1/λ, pull the weights that training moved most
back the hardest. The run's model is copied: its weights, in memory and on disk, stay.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from lstmlm.data.tokens import get_window, num_windows
from lstmlm.evaluation.perplexity import ScoredWindow
from lstmlm.evaluation.settings import DynamicSettings
from lstmlm.model.lm import LanguageModel, detach_state

STATS_TOKENS = 2_000_000  # the gradient statistics read at most this much of the training split


@dataclass
class Adaptation:
    model: LanguageModel  # the copy that is adapted
    params: list[Tensor]
    start: list[Tensor]  # θ₀
    scale: list[Tensor] | None  # rms: 1 / (MS + ε)
    decay: list[Tensor | float]  # λ·r (rms) or λ (sgd)


def dynamic_windows(
    model: LanguageModel, source: Tensor, settings: DynamicSettings, train_source: Tensor | None = None
) -> Iterator[ScoredWindow]:
    """Score ``source`` (T, 1) segment by segment, adapting a copy of ``model`` after each.

    ``train_source`` (T, B) gives the RMS variant its gradient statistics. Yields each
    segment's scores, computed before the update that segment causes. A segment is scored
    (and its state carried) by an inference pass, the computation static evaluation does,
    then run again with autograd for the step: on some CPUs oneDNN's training and inference
    kernels round differently, and step size 0 must give static evaluation exactly.
    """
    adapt = _prepare(model, settings, train_source)
    hidden = adapt.model.init_state(source.size(1), source.device)
    for index in range(num_windows(source, settings.segment)):
        x, y = get_window(source, index * settings.segment, settings.segment)
        with torch.no_grad():  # not across the yield: the caller's grad mode is its own
            features, new_hidden = adapt.model.features(x, hidden)
            scored = ScoredWindow(features, adapt.model.token_loss(features, y), y)
        yield scored
        with without_cudnn():  # nor the cuDNN switch: scoring uses what static evaluation uses
            loss, _ = adapt.model(x, hidden, targets=y)
            _update(adapt, torch.autograd.grad(loss.mean(), adapt.params), settings.step_size)
        hidden = new_hidden


def without_cudnn() -> contextlib.AbstractContextManager[None]:
    """cuDNN off (its RNN backward needs train mode; adaptation runs in eval mode), its other
    settings (deterministic, benchmark, TF32) as the caller left them."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(
        enabled=False,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=cudnn.allow_tf32,
    )


def _prepare(model: LanguageModel, settings: DynamicSettings, train_source: Tensor | None) -> Adaptation:
    adapted = copy.deepcopy(model).eval()  # no dropout while adapting, as in the paper
    params: list[Tensor] = list(adapted.parameters())
    start = [p.detach().clone() for p in params]
    if settings.method == "sgd":
        return Adaptation(adapted, params, start, None, [settings.decay] * len(params))
    if train_source is None:
        raise ValueError("the rms variant needs the training split's gradient statistics")
    ms = gradient_rms(adapted, train_source, settings.segment)
    total = sum(m.mean() for m in ms)
    decay: list[Tensor | float] = [
        settings.decay * (m / total).clamp(max=1.0 / settings.decay) if settings.decay > 0 else 0.0
        for m in ms
    ]
    return Adaptation(adapted, params, start, [1.0 / (m + settings.epsilon) for m in ms], decay)


def gradient_rms(model: LanguageModel, source: Tensor, segment: int) -> list[Tensor]:
    """sqrt(Σ over the windows of ``source`` of each parameter's squared gradient), dropout off."""
    params = list(model.parameters())
    sums = [torch.zeros_like(p) for p in params]
    hidden = model.init_state(source.size(1), source.device)
    windows = min(num_windows(source, segment), max(1, STATS_TOKENS // (segment * source.size(1))))
    with without_cudnn():
        for index in range(windows):
            x, y = get_window(source, index * segment, segment)
            token_loss, hidden = model(x, hidden, targets=y)
            for total, grad in zip(sums, torch.autograd.grad(token_loss.mean(), params), strict=True):
                total.addcmul_(grad, grad)
            hidden = detach_state(hidden)
    return [total.sqrt_() for total in sums]


@torch.no_grad()
def _update(adapt: Adaptation, grads: tuple[Tensor, ...], lr: float) -> None:
    """θ ← θ + decay·(θ₀ − θ) − η·step: a lerp toward θ₀, then the step (two passes per tensor)."""
    for i, (param, grad) in enumerate(zip(adapt.params, grads, strict=True)):
        decay = adapt.decay[i]
        if not isinstance(decay, float) or decay > 0:
            param.lerp_(adapt.start[i], decay)
        if adapt.scale is None:
            param.add_(grad, alpha=-lr)
        else:
            param.addcmul_(grad, adapt.scale[i], value=-lr)
