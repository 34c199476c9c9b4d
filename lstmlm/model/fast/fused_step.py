"""One token through a fused stack and the output layer, for sampling: batch 1, eval mode.

``nn.LSTM`` on one time step of one stream pays for a whole sequence call (on CPU a
oneDNN RNN primitive, its weights reordered each call: 5-12 ms a 650-unit layer here);
PyTorch's cell functions (``torch.lstm_cell``, ``gru_cell``, ``rnn_tanh_cell``,
``rnn_relu_cell``) compute the same step as two matrix-vector products and one fused
pointwise kernel (0.2 ms). ``FusedStep`` calls them with the layers' own parameters,
prepared once: on CPU each matrix is read through a transposed contiguous copy, the
layout in which MKL's one-row product streams the weight fastest (the 13,777 x 650
decoder: 1.2 ms instead of 2.3). The sums are taken in another order than the model's
``forward``, so logits agree to about 1e-6, not bit for bit (a test compares the sampled
tokens). Embedding dropout, dropout and weight drop do nothing in eval mode, so the step
skips them; what ``FusedStep.of`` cannot run this way (equation cells, training mode,
autocast, non-fp32 weights) is left to the model's ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlm.model.lm import LanguageModel
from lstmlm.model.normalized import NormalizedOutput
from lstmlm.model.recurrent import FusedStack, State

if TYPE_CHECKING:
    from lstmlm.model.recurrent import FusedLayerWeights

CELL_FUNCTIONS: dict[str, Callable[..., Tensor | tuple[Tensor, Tensor]]] = {
    "lstm": torch.lstm_cell,
    "gru": torch.gru_cell,
    "rnn-tanh": torch.rnn_tanh_cell,
    "rnn-relu": torch.rnn_relu_cell,
}
LayerState = tuple[Tensor, ...]  # (h,) or (h, c), each (1, that layer's size)


def _prepared(weight: Tensor) -> Tensor:
    """``weight`` (out, in) as a view of an (in, out) contiguous copy on CPU (see the module docstring)."""
    return weight.detach().t().contiguous().t() if weight.device.type == "cpu" else weight.detach()


class FusedStep:
    """``step(token, state) -> (logits (V,), state)``: the model's forward for one token of one stream."""

    def __init__(self, model: LanguageModel) -> None:
        stack = model.rnn
        assert isinstance(stack, FusedStack)  # ``of`` lets only a fused stack through
        self.kind = stack.kind
        self.cell = CELL_FUNCTIONS[stack.kind]
        self.sizes = stack.sizes
        self.nhid = stack.nhid
        self.embedding = model.encoder.weight.detach()  # (V, emsize)
        self.layers = [
            (
                _prepared(rnn.weight_ih_l0),
                _prepared(rnn.weight_hh_l0),
                rnn.bias_ih_l0.detach(),
                rnn.bias_hh_l0.detach(),
            )
            for rnn in cast("Iterable[FusedLayerWeights]", stack.layers)
        ]
        self.model = model
        decoder = model.decoder
        self.full_softmax = not isinstance(decoder, NormalizedOutput)  # adaptive, mos: the model's own
        if not isinstance(decoder, NormalizedOutput):  # self.full_softmax, narrowing the type
            self.decoder_weight = _prepared(decoder.weight)
            self.decoder_bias = None if decoder.bias is None else decoder.bias.detach()

    @classmethod
    def of(cls, model: LanguageModel) -> FusedStep | None:
        """A ``FusedStep`` for ``model``, or None where it must run its own ``forward``."""
        rnn = getattr(model, "rnn", None)
        if not isinstance(rnn, FusedStack) or rnn.kind not in CELL_FUNCTIONS or model.training:
            return None
        device = model.encoder.weight.device.type
        if torch.is_autocast_enabled(device) or any(p.dtype != torch.float32 for p in model.parameters()):
            return None
        return cls(model)

    def layer_states(self, state: State) -> list[LayerState]:
        """The model's state (each (nlayers, 1, nhid)) as one state per layer."""
        return [tuple(s[layer, :, :size] for s in state) for layer, size in enumerate(self.sizes)]

    def model_state(self, states: list[LayerState]) -> State:
        """Per-layer states back in the model's convention (narrower layers zero-padded)."""
        per_layer = [tuple(F.pad(s, (0, self.nhid - s.size(-1))) for s in layer) for layer in states]
        return tuple(torch.stack(parts) for parts in zip(*per_layer, strict=True))

    def step(self, token: int, states: list[LayerState]) -> tuple[Tensor, list[LayerState]]:
        """Logits (V,) after ``token``, and the new per-layer states."""
        x = self.embedding[token : token + 1]  # (1, emsize), a view
        new_states: list[LayerState] = []
        for weights, state in zip(self.layers, states, strict=True):
            if self.kind == "lstm":
                h, c = self.cell(x, state, *weights)
                new_states.append((h, c))
            else:
                h = cast(Tensor, self.cell(x, state[0], *weights))  # GRU and RNN cells return h alone
                new_states.append((h,))
            x = h
        if self.full_softmax:
            logits = F.linear(x, self.decoder_weight, self.decoder_bias)
        else:
            logits = self.model.logits(x)
        return logits[0], new_states
