"""The AWD-LSTM regularisers besides locked dropout (``dropout.StreamDropout(locked=True)``).

Merity, Keskar & Socher (2017), "Regularizing and Optimizing LSTM Language Models":

* embedding dropout (``EmbeddingDropout``, after Gal & Ghahramani 2016): whole words of
  the vocabulary are dropped for a step, so a dropped word is zero at every position of
  the window; the kept rows are scaled by 1/(1-p);
* weight drop (``WeightDrop``): DropConnect (Wan et al. 2013) on the hidden-to-hidden
  matrix W_hh of every layer, one mask per training forward, so the fused cuDNN/oneDNN
  kernels still run; evaluation uses the raw weights;
* activation regularisation AR, α · mean((m ⊙ h)²) over the dropped last-layer output,
  and temporal activation regularisation TAR, β · mean((h_t − h_{t−1})²) over the
  undropped one (``activation_penalty``); added to the training loss only.

Masks come from the step's ``masks_for_step`` generators (``dropout.py``), one site per
call in call order, so they depend on (seed, step, site) and never on the process
layout: the word and weight masks are shared by all streams, hence the same draw on
every process. Outside a training step they come from torch's global generator.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmlm.model.dropout import MaskSite, keep_mask


class EmbeddingDropout(MaskSite):
    """Drop whole rows of the embedding matrix with probability ``p``, while training.

    ``forward(tokens, vectors)`` takes the looked-up ``vectors = embedding(tokens)``
    (T, B, E) and returns them with the rows of dropped words zeroed and the others
    scaled by 1/(1-p): the lookup of the masked matrix, without forming it.
    """

    def __init__(self, p: float, ntoken: int) -> None:
        super().__init__()
        self.p, self.ntoken = p, ntoken

    def extra_repr(self) -> str:
        return f"p={self.p}, ntoken={self.ntoken}"

    def forward(self, tokens: Tensor, vectors: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return vectors
        scale = keep_mask((self.ntoken,), self.p, tokens.device).to(vectors.dtype) / (1.0 - self.p)
        return vectors * scale[tokens].unsqueeze(-1)


class WeightDrop(MaskSite):
    """DropConnect with probability ``p`` on a recurrent weight, while training.

    ``forward(weight)`` returns ``weight * mask / (1-p)`` (a new tensor: the gradient
    reaches the parameter through it), or ``weight`` itself in eval mode or at p = 0.
    The recurrent stacks call it once per layer and forward, before the layer runs.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    @property
    def active(self) -> bool:
        return self.training and self.p > 0.0

    def forward(self, weight: Tensor) -> Tensor:
        if not self.active:
            return weight
        keep = keep_mask(tuple(weight.shape), self.p, weight.device)
        return weight * (keep.to(weight.dtype) / (1.0 - self.p))


def activation_penalty(hidden: Tensor, dropped: Tensor, alpha: float, beta: float) -> Tensor:
    """AR + TAR of the last layer's output (T, B, H), as an fp32 scalar (0 when both are off).

    AR = alpha · mean(dropped²) over the dropped output (what the decoder sees);
    TAR = beta · mean((h_t − h_{t−1})²) over the undropped output, within the window.
    """
    total = torch.zeros((), device=hidden.device)
    if alpha:
        total = total + alpha * dropped.float().pow(2).mean()
    if beta and hidden.size(0) > 1:
        h = hidden.float()
        total = total + beta * (h[1:] - h[:-1]).pow(2).mean()
    return total
