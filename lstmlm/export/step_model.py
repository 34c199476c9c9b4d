"""The exported computation: one time step of a ``LanguageModel`` through its equation cells.

``StepModel`` is what both export formats write: token ids (B,) and the state, one plain
tensor per state part, in; the next-token scores (B, V) and the new state out. It runs
every layer's readable ``step`` (``cell_base.CellBase``), not the training path's fused,
parallel or hand-differentiated ``scan``: those hold custom autograd functions, oneDNN
packing and TorchScript loops that neither format can write, while ``step`` is plain
tensor algebra. The fused ``nn.LSTM``/``nn.GRU``/``nn.RNN`` stacks run as their equation
cells with copies of the same weights (``recurrent.equation_stack``).

The state keeps the run's own layout (``recurrent.py``): part k of the state is one
tensor (nlayers, B, width_k), a narrower layer of ``--layer-sizes`` using the first units
of its row, the rest zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.cell_base import CellBase
from lstmlm.model.lm import LanguageModel
from lstmlm.model.normalized import NormalizedOutput
from lstmlm.model.recurrent import equation_stack

# What each part of the carried state holds, by cell (recurrent.py's state convention).
STATE_NAMES = {
    "lstm": ("h", "c"),
    "lstm-eq": ("h", "c"),
    "peephole": ("h", "c"),
    "coupled": ("h", "c"),
    "depth-gated": ("h", "c"),
    "mogrifier": ("h", "c"),
    "slstm": ("h", "c", "n", "m"),
    "mlstm": ("memory", "normalizer", "stabilizer", "conv_window"),
}


def state_names(cell: str) -> tuple[str, ...]:
    """The names of the state parts of ``cell``: ``("h", "c")`` for an LSTM, ``("h",)`` for a GRU."""
    return STATE_NAMES.get(cell, ("h",))


class StepModel(nn.Module):
    """``forward(tokens (B,) int64, *state) -> (logits (B, V), *new state)``, eval only.

    The logits are ``LanguageModel.logits``: scores for the full softmax, log-probabilities
    for the adaptive one and the mixture of softmaxes. Parameters are the model's own (shared,
    not copied), except a fused stack's, copied into equation cells.
    """

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.encoder, self.decoder, self.tied = model.encoder, model.decoder, model.cfg.tied
        self.init_state = model.init_state
        stack = equation_stack(model.rnn)
        self.cells = stack.cells
        self.sizes = stack.sizes
        self.nhid = stack.nhid
        self.uniform = stack.uniform  # else: narrower layers' state padded to nhid

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        x = self.encoder(tokens)  # (B, emsize)
        new_parts: list[tuple[Tensor, ...]] = []
        lower_cell = None  # the cell of the layer below, for depth gates
        for layer, cell in enumerate(cast("Iterable[CellBase]", self.cells)):  # a CellStack's cells
            layer_state = tuple(self._narrow(s[layer], layer) for s in state)  # each (B, ·)
            x, layer_state, gates = cell.step(cell.project_input(x), layer_state, lower_cell)
            lower_cell = gates.get("cell")
            new_parts.append(tuple(self._widen(s) for s in layer_state))
        return (self.logits(x), *(torch.stack(parts) for parts in zip(*new_parts, strict=True)))

    def logits(self, features: Tensor) -> Tensor:
        """``LanguageModel.logits`` through ``F.linear``."""
        if isinstance(self.decoder, NormalizedOutput):
            with plain_linear():
                return self.decoder.log_prob(features, self.encoder.weight if self.tied else None)
        return F.linear(features, self.decoder.weight, self.decoder.bias)

    def _narrow(self, s: Tensor, layer: int) -> Tensor:
        return s if self.uniform else s[..., : self.sizes[layer]]

    def _widen(self, s: Tensor) -> Tensor:
        return s if self.uniform else F.pad(s, (0, self.nhid - s.size(-1)))

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        """Token ids and the zero state of ``batch_size`` streams, for tracing."""
        tokens = torch.zeros(batch_size, dtype=torch.long)
        return (tokens, *self.init_state(batch_size))


@contextmanager
def plain_linear() -> Iterator[None]:
    """Run the output layer as ``F.linear`` (``output_linear`` uses oneDNN's private op, which
    neither TorchScript files nor ONNX can hold)."""
    with warnings.catch_warnings():  # torch warns about Intel-GPU TF32 whenever the flags change
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield
