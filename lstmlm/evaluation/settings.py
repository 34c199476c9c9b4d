"""The settings of the evaluation-time methods ``eval --dynamic`` and ``eval --cache``, without torch.

Defaults are the papers' (and their released code's):

- dynamic evaluation, Krause, Kahembwe, Murray & Renals 2018, "Dynamic Evaluation of Neural
  Sequence Models": the RMS variant with decay to the trained weights, step size
  η = 0.002, decay λ = 0.02, ε = 0.001, segments of 5 tokens, one stream; the gradient
  statistics from the training split in batches of 100 streams (their ``dynamiceval.py``).
- the continuous cache, Grave, Joulin & Usunier 2017, "Improving Neural Language Models
  with a Continuous Cache": a window of the last 2,000 hidden states (the paper's WikiText
  size); θ = 0.66 and λ = 0.13, AWD-LSTM's values tuned on WikiText-2 (Merity et al. 2017,
  ``pointer.py``). ``--cache-tune`` searches ``THETAS`` × ``LAMBDAS`` on the valid split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lstmlm.config.fields import option
from lstmlm.errors import LstmlmError

DYNAMIC_METHODS = ("rms", "sgd")
DEFAULT_DYNAMIC_LR = {"rms": 0.002, "sgd": 0.3}  # sgd: the best of 0.01-1 on WikiText-2 (docs/evaluation.md)
MAX_CACHE_WINDOW = 10**6  # hidden states kept per stream: 1,000x the papers' window is plenty
THETAS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
LAMBDAS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class DynamicSettings:
    """``eval --dynamic``: each field with a help text is a ``--dynamic-NAME`` flag."""

    method: str = option(
        "rms",
        "rms: steps scaled by the training gradients' RMS, decaying to the trained weights; "
        "sgd: plain steps.",
        choices=DYNAMIC_METHODS,
    )
    lr: float | None = option(  # None: DEFAULT_DYNAMIC_LR[method]
        None,
        "Step size eta (0: static).",
        shown=", ".join(f"{k} {v:g}" for k, v in DEFAULT_DYNAMIC_LR.items()),
    )
    decay: float = option(0.02, "Decay lambda toward the trained weights, per segment.")
    epsilon: float = 0.001
    segment: int = option(5, "Tokens per update.")
    stats_batch: int = 100

    def __post_init__(self) -> None:
        if self.method not in DYNAMIC_METHODS:
            raise LstmlmError(
                f"--dynamic-method must be one of {', '.join(DYNAMIC_METHODS)} (got {self.method!r})"
            )
        _at_least("dynamic-lr", self.step_size, 0.0)
        _at_least("dynamic-decay", self.decay, 0.0)
        if self.segment < 1:
            raise LstmlmError(f"--dynamic-segment must be >= 1 (got {self.segment})")

    @property
    def step_size(self) -> float:
        return DEFAULT_DYNAMIC_LR[self.method] if self.lr is None else self.lr


@dataclass(frozen=True)
class CacheSettings:
    """``eval --cache``: each field with a help text is a ``--cache-NAME`` flag."""

    window: int = option(2000, "Hidden states kept per stream.")
    theta: float = option(0.66, "Sharpness theta of the match.")
    lam: float = option(0.13, "Weight lambda of the cache, in [0, 1).", flag="lambda")

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_CACHE_WINDOW:
            raise LstmlmError(
                f"--cache-window must be between 1 and {MAX_CACHE_WINDOW:,} (got {self.window})"
            )
        _at_least("cache-theta", self.theta, 0.0)
        if not 0.0 <= self.lam < 1.0:
            raise LstmlmError(f"--cache-lambda must be in [0, 1) (got {self.lam})")


def _at_least(name: str, value: float, low: float) -> None:
    if not math.isfinite(value) or value < low:
        raise LstmlmError(f"--{name} must be a finite number >= {low:g} (got {value})")
