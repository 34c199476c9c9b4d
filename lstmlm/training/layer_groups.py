"""ULMFiT's layer-wise pieces (Howard & Ruder 2018, sec. 3.2-3.3): the model as parts, their
learning rates (discriminative fine-tuning) and which of them train at each step (``--freeze``,
gradual unfreezing).

The parts, bottom to top (``config.fields.model_parts``)::

    embedding    encoder.weight
    rnn.0        rnn.layers.0.* (fused stacks) or rnn.cells.0.* (equation cells, xLSTM blocks)
    ...
    rnn.{L-1}
    decoder      decoder.* (the full softmax's weight and bias, the adaptive softmax's, or the
                 mixture of softmaxes': prior, context projections, untied weight, bias)

With tied weights the embedding and the decoder's weight are one tensor. It is the
embedding's: it trains at the embedding's lr, and it is frozen while either part is (a frozen
decoder must not change its output weights, a frozen embedding its input vectors), so under
gradual unfreezing it starts training with the embedding, the last part to thaw; the
decoder's own parameters (bias, adaptive clusters, the mixture's prior and projections) thaw first.

Discriminative lr (eq. 2, η^{l-1} = η^l / F, F = ``--layer-lr-decay``): the decoder trains at
the step's lr, the part below it at lr / F, ..., the embedding at lr / F^(L+1). Each part is
one optimizer parameter group with its ``lr_scale``; the loop sets ``lr = step lr × lr_scale``.
With F = 1 there is one group of every parameter in ``model.parameters()`` order, the
layout of every checkpoint written before these options.

Gradual unfreezing: at step s (counted from 0) the top ``1 + s // N`` parts not named by
``--freeze`` train (N = ``--unfreeze-every``), the decoder first. What trains is a function
of the step alone, so a resumed run freezes what the uninterrupted one did. A frozen
parameter has ``requires_grad`` off: it gets no gradient (``train_step`` sets every
gradient to None first), so SGD's and AdamW's weight decay, clipping's norm and NT-ASGD's
average (the mean of a constant) leave it bit-identical.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lstmlm.config import RunConfig, TrainConfig
from lstmlm.config.fields import model_parts
from lstmlm.errors import LstmlmError


def part_of(name: str) -> str:
    """The part (``embedding``, ``rnn.i``, ``decoder``) of the parameter called ``name``."""
    if name.startswith("encoder."):
        return "embedding"
    if name.startswith("decoder."):
        return "decoder"
    pieces = name.split(".")
    if len(pieces) > 3 and pieces[0] == "rnn" and pieces[1] in ("layers", "cells") and pieces[2].isdigit():
        return f"rnn.{pieces[2]}"
    raise ValueError(f"parameter {name!r} belongs to no part of the model")


def parameters_by_part(model: nn.Module, nlayers: int) -> dict[str, list[nn.Parameter]]:
    """Each part's parameters, bottom to top; a tied matrix once, under ``embedding``
    (``named_parameters`` names a shared tensor once, by its first owner, the encoder)."""
    parts: dict[str, list[nn.Parameter]] = {part: [] for part in model_parts(nlayers)}
    for name, parameter in model.named_parameters():
        parts[part_of(name)].append(parameter)
    return parts


def lr_scales(nlayers: int, decay: float) -> dict[str, float]:
    """Each part's share of the step's lr: 1 for the decoder, / ``decay`` for each part below."""
    parts = model_parts(nlayers)
    return {part: decay ** -(len(parts) - 1 - i) for i, part in enumerate(parts)}


def param_groups(model: nn.Module, config: RunConfig) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one per part with ``--layer-lr-decay``, else one of all."""
    decay, nlayers = config.train.layer_lr_decay, config.model.nlayers
    if decay == 1.0:
        return [{"params": list(model.parameters()), "lr_scale": 1.0, "part": "all"}]
    scales = lr_scales(nlayers, decay)
    return [
        {"params": params, "lr_scale": scales[part], "part": part}
        for part, params in parameters_by_part(model, nlayers).items()
        if params
    ]


class Freezing:
    """Which parameters train at a step: ``--freeze`` always holds its parts, and with
    ``--unfreeze-every N`` the others thaw top first, one more every N steps."""

    def __init__(self, model: nn.Module, config: RunConfig) -> None:
        tc = config.train
        self.model, self.every = model, tc.unfreeze_every
        self.frozen = set(tc.frozen_parts())
        self.tied = config.model.tied
        self.thawing = [p for p in reversed(model_parts(config.model.nlayers)) if p not in self.frozen]

    @staticmethod
    def wanted(config: RunConfig) -> bool:
        """Whether the run freezes anything at any step."""
        return bool(config.train.frozen_parts() or config.train.unfreeze_every)

    def trainable_parts(self, step: int) -> set[str]:
        """The parts that train at ``step`` (0: the run's first)."""
        if not self.every:
            return set(self.thawing)
        return set(self.thawing[: 1 + step // self.every])

    def apply(self, step: int) -> None:
        """Set ``requires_grad`` of every parameter for ``step``."""
        trainable = self.trainable_parts(step)
        for name, parameter in self.model.named_parameters():
            part = part_of(name)
            holds = [part, "decoder"] if part == "embedding" and self.tied else [part]
            parameter.requires_grad_(all(p in trainable for p in holds))


def check_distributed(train_config: TrainConfig, distributed: bool) -> None:
    """Gradual unfreezing changes what trains mid-run, which DDP (fixed at wrapping) cannot follow."""
    if distributed and train_config.unfreeze_every:
        raise LstmlmError(
            "--unfreeze-every does not run under torchrun: DistributedDataParallel fixes the "
            "parameters it reduces when it wraps the model (--freeze does run)"
        )
