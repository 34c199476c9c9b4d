"""The recurrent stack: ``nlayers`` cells unrolled over time, dropout between layers.

``lstm``, ``gru``, ``rnn-tanh`` and ``rnn-relu`` use PyTorch's fused modules (cuDNN /
oneDNN kernels). The equation cells (``cells.py``, ``xlstm.py``, ``min_cells.py``) run
through ``CellStack``.

State convention for every stack: a tuple of tensors shaped (nlayers, B, ·): ``(h, c)``
for LSTM-type cells, ``(h,)`` for GRU, vanilla RNNs and the min cells, (h, c, n, m) for
``slstm``, and the flattened matrix memory, normalizer, stabilizer and convolution inputs
for ``mlstm`` (widths other than H; its layers are all one size). H is the widest layer's
size; with ``--layer-sizes`` a narrower layer uses the first units of its row and leaves
the rest at zero, so every caller can keep carrying one tensor per state. ``init_state``
gives the zero state; a ``forward`` given ``None`` starts from it.

AWD-LSTM (Merity et al. 2017) inside the stack: dropout between layers may be locked
(``StreamDropout(locked=True)``), and weight drop (``regularize.WeightDrop``) masks each
layer's W_hh for a training forward. The fused layers then run through ``_fused_call``
with the dropped matrix in place of their parameter: the parameters, and so the
``state_dict`` keys, stay those of the plain layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn

from lstmlm.config import CUSTOM_CELLS, FUSED_CELLS, ModelConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.cell_base import CellBase, Gates
from lstmlm.model.cells import (
    CoupledLSTMCell,
    DepthGatedLSTMCell,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    VanillaRNNCell,
)
from lstmlm.model.dropout import StreamDropout
from lstmlm.model.min_cells import MinGRUCell, MinLSTMCell
from lstmlm.model.mogrifier import MogrifierLSTMCell
from lstmlm.model.regularize import WeightDrop
from lstmlm.model.xlstm import MLSTMBlock, SLSTMBlock
from lstmlm.runtime.precision import recurrence_in_fp32

State = tuple[Tensor, ...]

if TYPE_CHECKING:

    class FusedLayerWeights(Protocol):
        """A ``FusedStack`` layer's weights, which ``nn.RNNBase`` sets by name (typed Tensor | Module)."""

        weight_ih_l0: Tensor
        weight_hh_l0: Tensor
        bias_ih_l0: Tensor
        bias_hh_l0: Tensor


class FusedStack(nn.Module):
    """``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` layers behind the common ``(x, state) -> (y, state)`` API.

    One fused module per layer, with ``StreamDropout`` between them (a multi-layer
    ``nn.LSTM`` would draw its inter-layer masks from the process's own generator).
    Checkpoints written with one multi-layer module (``rnn.weight_ih_l1``, ...) still load.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.cell
        self.sizes = cfg.hidden_sizes
        inputs = (cfg.emsize, *self.sizes[:-1])
        self.layers = nn.ModuleList(
            fused_layer(cfg.cell, n_in, n_out) for n_in, n_out in zip(inputs, self.sizes, strict=True)
        )
        if cfg.cell == "lstm":
            for lstm in self.layers:
                assert isinstance(lstm, nn.LSTM)  # fused_layer("lstm", ...)
                set_lstm_forget_bias(lstm, cfg.forget_bias)
        self.drop = StreamDropout(cfg.hidden_dropout, locked=cfg.locked_dropout)
        self.weight_drop = WeightDrop(cfg.weight_drop)
        self.nlayers, self.nhid = cfg.nlayers, max(self.sizes)  # nhid: the state's width
        self.state_size = 2 if cfg.cell == "lstm" else 1
        self._register_load_state_dict_pre_hook(_split_multilayer_names)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        zeros = torch.zeros(self.nlayers, batch_size, self.nhid, device=device)
        return tuple(zeros.clone() for _ in range(self.state_size))

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        # x: (T, B, emsize) -> y: (T, B, nhid); state tensors (nlayers, B, nhid); None: zeros
        state = given_state(self, x, state)
        device = x.device.type
        if recurrence_in_fp32(self.kind, device):
            with torch.autocast(device, enabled=False):
                return self._run(x.float(), tuple(s.float() for s in state))
        return self._run(x, state)

    def _run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        final: list[State] = []
        for layer, rnn in enumerate(cast("Iterable[nn.RNNBase]", self.layers)):  # made by fused_layer
            if layer > 0:
                x = self.drop(x)
            layer_state = _narrow(tuple(s[layer : layer + 1] for s in state), self.sizes[layer])
            if self.weight_drop.active:
                x, new_state = _fused_call(rnn, x, layer_state, self.weight_drop(rnn.weight_hh_l0))
            elif self.state_size == 2:
                x, new_state = rnn(x, layer_state)
            else:
                x, h = rnn(x, layer_state[0])
                new_state = (h,)
            final.append(_widen(tuple(new_state), self.nhid))
        return x, tuple(torch.cat(parts) for parts in zip(*final, strict=True))


def _narrow(state: State, size: int) -> State:
    """A layer's part of the carried state: its first ``size`` units."""
    return state if state[0].size(-1) == size else tuple(s[..., :size].contiguous() for s in state)


def _widen(state: State, width: int) -> State:
    """A layer's state zero-padded to the stack's ``width`` (the widest layer)."""
    size = state[0].size(-1)
    return state if size == width else tuple(F.pad(s, (0, width - size)) for s in state)


def _fused_call(rnn: nn.RNNBase, x: Tensor, state: State, weight_hh: Tensor) -> tuple[Tensor, State]:
    """One fused layer ``rnn`` on ``x`` with ``weight_hh`` in place of its W_hh (weight drop).

    The very kernel ``rnn.forward`` calls (cuDNN on CUDA: which then copies the weights
    into one buffer per call, as for any weights not flattened), given the weight list
    with the dropped matrix; the module and its parameters are left untouched.
    """
    named = cast("FusedLayerWeights", rnn)
    weights = [named.weight_ih_l0, weight_hh, named.bias_ih_l0, named.bias_hh_l0]
    args = (True, 1, 0.0, True, False, False)  # bias, layers, dropout, train, bidirectional, batch_first
    if isinstance(rnn, nn.LSTM):
        y, h, c = _VF.lstm(x, state, weights, *args)
        return y, (h, c)
    if isinstance(rnn, nn.GRU):
        y, h = _VF.gru(x, state[0], weights, *args)
    elif rnn.nonlinearity == "tanh":
        y, h = _VF.rnn_tanh(x, state[0], weights, *args)
    else:
        y, h = _VF.rnn_relu(x, state[0], weights, *args)
    return y, (h,)


def fused_layer(cell: str, inputs: int, hidden: int) -> nn.RNNBase:
    """One layer of the fused ``cell`` (lstm, gru, rnn-tanh, rnn-relu)."""
    if cell == "lstm":
        return nn.LSTM(inputs, hidden)
    if cell == "gru":
        return nn.GRU(inputs, hidden)
    return nn.RNN(inputs, hidden, nonlinearity=cell.removeprefix("rnn-"))


def _split_multilayer_names(state_dict: dict[str, Tensor], prefix: str, *args: object) -> None:
    """Rename a multi-layer module's ``rnn.weight_ih_l1`` to ``layers.1.weight_ih_l0`` (older runs)."""
    old = prefix + "rnn."
    for key in [k for k in state_dict if k.startswith(old)]:
        name, _, layer = key[len(old) :].rpartition("_l")
        state_dict[f"{prefix}layers.{layer}.{name}_l0"] = state_dict.pop(key)


def set_lstm_forget_bias(lstm: nn.LSTM, value: float) -> None:
    """Make every layer's forget-gate bias sum to ``value`` (gate order i, f, g, o)."""
    n = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            getattr(lstm, f"bias_ih_l{layer}")[n : 2 * n].fill_(value)
            getattr(lstm, f"bias_hh_l{layer}")[n : 2 * n].zero_()


class CellStack(nn.Module):
    """``nlayers`` equation cells (``cell_base.CellBase``), with dropout between layers.

    Layer by layer, the input projection of the whole sequence is one GEMM
    (``project_input``) and the recurrence runs in the cell's ``scan`` (a hand-written
    backward, a parallel form, or the loop over ``step``). A depth-gated layer also gets
    the cells (T, B, H) of the layer below, without dropout. No dropout after the last
    layer: ``LanguageModel`` applies it.
    """

    def __init__(
        self,
        cells: Sequence[CellBase],
        dropout: float = 0.0,
        *,
        locked: bool = False,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.cells = nn.ModuleList(cells)
        self.drop = StreamDropout(dropout, locked=locked)
        self.weight_drop = WeightDrop(weight_drop)
        self.sizes = tuple(cell.hidden_size for cell in cells)
        self.nlayers, self.nhid = len(self.cells), max(self.sizes)  # nhid: the widest layer
        self.uniform = len(set(self.sizes)) == 1  # else: narrower layers' state padded to nhid
        self.state_size = self.cells[0].state_size

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> CellStack:
        """The stack of ``cfg.cell`` (one of ``config.CUSTOM_CELLS``) that ``cfg`` describes."""
        if cfg.cell not in CUSTOM_CELLS:
            raise LstmlmError(f"cell {cfg.cell!r} has no equation cell; use FusedStack")
        sizes = cfg.hidden_sizes
        inputs = (cfg.emsize, *sizes[:-1])
        cells = [
            make_cell(cfg.cell, inputs[layer], sizes[layer], layer=layer, cfg=cfg)
            for layer in range(cfg.nlayers)
        ]
        return cls(cells, cfg.hidden_dropout, locked=cfg.locked_dropout, weight_drop=cfg.weight_drop)

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        cells = cast("Iterable[CellBase]", self.cells)  # ModuleList is not generic: it holds CellBase
        per_layer = [self._widen(cell.init_state(batch_size, device)) for cell in cells]
        return tuple(torch.stack(parts) for parts in zip(*per_layer, strict=True))

    def _narrow(self, state: State, layer: int) -> State:
        return state if self.uniform else _narrow(state, self.sizes[layer])

    def _widen(self, state: State) -> State:
        return state if self.uniform else _widen(state, self.nhid)

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        # x: (T, B, emsize) -> y: (T, B, nhid); state tensors (nlayers, B, ·), · = nhid for most cells
        state = given_state(self, x, state)
        device = x.device.type
        if torch.is_autocast_enabled(device):  # the hand-written backward is fp32: run in fp32
            with torch.autocast(device, enabled=False):
                y, state, _ = self._run(x.float(), tuple(s.float() for s in state), trace=False)
            return y, state
        y, state, _ = self._run(x, state, trace=False)
        return y, state

    def trace(
        self, x: Tensor, state: State | None, unit_masks: Sequence[Tensor | None] | None = None
    ) -> tuple[Tensor, State, list[Gates]]:
        """``forward`` through the cells' readable ``step``, one step at a time, keeping the
        gates and the hidden state: one dict per layer of name -> (T, B, that layer's size).
        Slow; for inspection and tests, so without weight drop. ``unit_masks[layer]`` (size,)
        ablates units (see ``scan_steps``)."""
        return self._run(x, given_state(self, x, state), trace=True, unit_masks=unit_masks)

    def _run(
        self, x: Tensor, state: State, *, trace: bool, unit_masks: Sequence[Tensor | None] | None = None
    ) -> tuple[Tensor, State, list[Gates]]:
        final: list[State] = []
        traces: list[Gates] = []
        lower_cells = None  # (T, B, H) cells of the layer below, for depth gates
        for layer, cell in enumerate(cast("Iterable[CellBase]", self.cells)):  # as in init_state
            if layer > 0:
                x = self.drop(x)
            layer_state = self._narrow(tuple(s[layer] for s in state), layer)  # each (B, size)
            if trace:
                mask = unit_masks[layer] if unit_masks is not None else None
                x, layer_state, gates = cell.scan_steps(x, layer_state, lower_cells, mask)
                lower_cells = gates.get("cell")
                traces.append({**gates, "hidden": x})
            elif self.weight_drop.active:
                weight_hh = self.weight_drop(cell.weight_hh)
                x, layer_state, lower_cells = cell.scan(x, layer_state, lower_cells, weight_hh=weight_hh)
            else:
                x, layer_state, lower_cells = cell.scan(x, layer_state, lower_cells)
            final.append(self._widen(layer_state))
        new_state = tuple(torch.stack(parts) for parts in zip(*final, strict=True))
        return x, new_state, traces


def given_state(stack: FusedStack | CellStack, x: Tensor, state: State | None) -> State:
    """``state``, or for ``None`` the zero state ``stack.init_state`` gives x's batch on x's device."""
    return stack.init_state(x.size(1), x.device) if state is None else state


def equation_stack(stack: nn.Module) -> CellStack:
    """The ``CellStack`` of equation cells computing what ``stack`` computes.

    A ``CellStack`` is returned as is; a ``FusedStack`` gets ``lstm-eq``/``gru-eq``/
    vanilla RNN cells holding copies of its weights (the same layout), so its gates can
    be recorded by the very code the custom cells train with. In eval mode.
    """
    if isinstance(stack, CellStack):
        return stack.eval()
    if not isinstance(stack, FusedStack):
        raise TypeError(f"not a recurrent stack: {type(stack).__name__}")
    cells: list[CellBase] = []
    for rnn in stack.layers:
        if isinstance(rnn, nn.LSTM):
            cells.append(LSTMCell(rnn.input_size, rnn.hidden_size))
        elif isinstance(rnn, nn.GRU):
            cells.append(GRUCell(rnn.input_size, rnn.hidden_size))
        else:
            assert isinstance(rnn, nn.RNN)  # fused_layer("rnn-tanh" or "rnn-relu", ...)
            cells.append(VanillaRNNCell(rnn.input_size, rnn.hidden_size, rnn.nonlinearity))
    equations = CellStack(cells)
    equations.to(next(stack.parameters()).device)
    with torch.no_grad():
        for eq_cell, rnn in zip(equations.cells, stack.layers, strict=True):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(eq_cell, name).copy_(getattr(rnn, f"{name}_l0"))
    return equations.eval()


def build_recurrent(cfg: ModelConfig) -> FusedStack | CellStack:
    """The stack for ``cfg.cell``: fused for the PyTorch cells, ``CellStack`` for the others."""
    if cfg.cell in FUSED_CELLS:
        return FusedStack(cfg)
    return CellStack.from_config(cfg)


def make_cell(
    name: str, input_size: int, hidden_size: int, *, layer: int = 0, cfg: ModelConfig | None = None
) -> CellBase:
    """The cell called ``name`` (one of ``config.CUSTOM_CELLS``) for layer ``layer`` of a stack,
    with the cell options of ``cfg`` (forget bias, heads, mogrifier rounds; default: the defaults)."""
    cfg = cfg or ModelConfig()
    if name == "lstm-eq":
        return LSTMCell(input_size, hidden_size, cfg.forget_bias)
    if name == "peephole":
        return PeepholeLSTMCell(input_size, hidden_size, cfg.forget_bias)
    if name == "coupled":
        return CoupledLSTMCell(input_size, hidden_size, cfg.forget_bias)
    if name == "gru-eq":
        return GRUCell(input_size, hidden_size)
    if name == "depth-gated":
        return DepthGatedLSTMCell(input_size, hidden_size, cfg.forget_bias, has_lower=layer > 0)
    if name == "mogrifier":
        return MogrifierLSTMCell(
            input_size, hidden_size, cfg.forget_bias, rounds=cfg.mogrify_rounds, rank=cfg.mogrify_rank
        )
    if name == "slstm":
        return SLSTMBlock(input_size, hidden_size, cfg.heads)
    if name == "mlstm":
        return MLSTMBlock(input_size, hidden_size, cfg.heads)
    if name == "minlstm":
        return MinLSTMCell(input_size, hidden_size)
    if name == "mingru":
        return MinGRUCell(input_size, hidden_size)
    raise ValueError(f"unknown cell {name!r}")
