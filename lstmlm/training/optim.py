"""Optimizers: SGD, AdamW, and NT-ASGD's switch to averaged weights.

NT-ASGD (Merity, Keskar & Socher 2017, sec. 3) trains with plain SGD until the
validation loss stops improving "non-monotonically": at an evaluation, when the loss is
worse than the best of all evaluations but the last ``nonmono``. From then on it keeps
the running average of the weights after every update (averaged SGD, Polyak & Juditsky
1992) and evaluates, keeps as best and finally tests the averaged weights; training
itself continues on the raw ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lstmlm.config import RunConfig
from lstmlm.training.layer_groups import param_groups


def make_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """``--optimizer``: SGD (also NT-ASGD's, before and after its switch) or AdamW.

    Its parameter groups are ``layer_groups.param_groups``'s: one per part of the model with
    ``--layer-lr-decay``, each with the ``lr_scale`` the loop multiplies the step's lr by.
    """
    tc = config.train
    groups = param_groups(model, config)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.SGD(groups, lr=tc.lr, weight_decay=tc.weight_decay)


def nonmonotone_trigger(valid_losses: Sequence[float], nonmono: int) -> bool:
    """Whether the latest loss is worse than the best one before the last ``nonmono`` evaluations."""
    return len(valid_losses) > nonmono and valid_losses[-1] > min(valid_losses[:-nonmono])


class WeightAverage:
    """The running mean of a model's parameters over the updates since the switch."""

    def __init__(self, model: nn.Module) -> None:
        self.params = list(model.parameters())
        self.mean = [p.detach().clone() for p in self.params]
        self.count = 1

    def update(self) -> None:
        """Fold the parameters after an update into the mean: mean += (p - mean) / n."""
        self.count += 1
        with torch.no_grad():
            for mean, p in zip(self.mean, self.params, strict=True):
                mean.lerp_(p, 1.0 / self.count)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Within: the model holds the averaged weights (to evaluate, to keep as best); then its own."""
        raw = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, mean in zip(self.params, self.mean, strict=True):
                p.copy_(mean)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, raw, strict=True):
                    p.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": [m.cpu() for m in self.mean], "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        means: list[Tensor] = state["mean"]
        if len(means) != len(self.mean) or any(
            a.shape != b.shape for a, b in zip(means, self.mean, strict=True)
        ):
            raise ValueError("the averaged weights do not fit the model")
        for mine, saved in zip(self.mean, means, strict=True):
            mine.copy_(saved)
        self.count = int(state["count"])
