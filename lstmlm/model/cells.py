"""The seed's recurrent cells written as their equations (the interface: ``cell_base.CellBase``).

Each splits its work the way fast RNN kernels do: ``project_input(x)`` is ``W_x x + b``
for every gate at once, one GEMM for a whole (T, B, E) sequence; ``step`` is one time
step written as the paper's equations; ``scan`` runs all T steps, and the LSTM-type cells
and the GRU hand it to ``scan.py``, which keeps only the activations and has a
hand-written backward pass (the tests hold it equal to the loop over ``step``, values and
gradients). The cells since the seed are in ``xlstm.py``, ``min_cells.py`` and ``mogrifier.py``;
``recurrent.make_cell`` picks one by name.

Weights use PyTorch's layout and gate order so they can be copied from ``nn.LSTM``
(rows i, f, g, o) and ``nn.GRU`` (rows r, z, n). In the docstrings ``W[h₋₁, x]`` is the
paper's concatenated matrix, i.e. ``W_h h₋₁ + W_x x``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.cell_base import CellBase, Gates, State
from lstmlm.model.fast.scan import GRUWeights, LSTMWeights, gru_scan, lstm_scan


class RecurrentCell(CellBase):
    """Base class: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` as in PyTorch."""

    state_size: int = 2  # (h, c); GRU: (h,)

    def __init__(
        self, input_size: int, hidden_size: int, gate_order: str, hh_gates: str | None = None
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.gate_order = gate_order  # rows of weight_ih, e.g. "ifgo"
        self.hh_gates = gate_order if hh_gates is None else hh_gates  # rows of weight_hh
        h = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(len(gate_order) * h, input_size))
        self.weight_hh = nn.Parameter(torch.empty(len(self.hh_gates) * h, h))
        self.bias_ih = nn.Parameter(torch.empty(len(gate_order) * h))
        self.bias_hh = nn.Parameter(torch.empty(len(self.hh_gates) * h))

    def reset_parameters(self, forget_bias: float | None = None) -> None:
        """``nn.LSTM``'s init, U(−1/√H, 1/√H); the diagonal ``w_*`` vectors start at 0.

        ``forget_bias`` (Jozefowicz et al. 2015) becomes the forget gate's total bias,
        as ``recurrent.set_lstm_forget_bias`` does for ``nn.LSTM``.
        """
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("w_"):
                    p.zero_()
                else:
                    p.uniform_(-bound, bound)
            if forget_bias is not None and "f" in self.gate_order:
                rows = self.gate_slice("f")
                self.bias_ih[rows].fill_(forget_bias)
                self.bias_hh[rows].zero_()

    def gate_slice(self, gate: str) -> slice:
        """The rows of ``weight_ih`` (and ``weight_hh``) that belong to ``gate``."""
        k = self.gate_order.index(gate)
        return slice(k * self.hidden_size, (k + 1) * self.hidden_size)

    def input_bias(self) -> Tensor:
        """b of the hoisted ``W_x x + b``: b_x + b_h where the gate has a W_h h₋₁ term."""
        n = self.bias_hh.numel()  # those gates come first
        return torch.cat([self.bias_ih[:n] + self.bias_hh, self.bias_ih[n:]])

    def project_input(self, x: Tensor) -> Tensor:
        """``W_x x + b`` for every gate: (..., E) -> (..., len(gate_order) * H)."""
        return F.linear(x, self.weight_ih, self.input_bias())


class _LSTMTypeCell(RecurrentCell):
    """Shared fast path for the LSTM-type cells: ``scan.lstm_scan``."""

    def scan(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        *,
        weight_hh: Tensor | None = None,
    ) -> tuple[Tensor, State, Tensor | None]:
        h0, c0 = state
        lower = lower_cells if self.uses_lower_cell else None
        weights = self.scan_weights(weight_hh)
        ys, cells = lstm_scan(x, h0, c0, weights, lower, coupled=self.gate_order == "fgo")
        return ys, (ys[-1], cells[-1]), cells

    def scan_weights(self, weight_hh: Tensor | None = None) -> LSTMWeights:
        """The parameters for ``lstm_scan``; the diagonal ones this cell lacks are None.
        ``weight_hh`` replaces W_hh (weight drop)."""
        return LSTMWeights(
            weight_ih=self.weight_ih,
            bias=self.input_bias(),
            weight_hh=self.weight_hh if weight_hh is None else weight_hh,
            w_ci=getattr(self, "w_ci", None),
            w_cf=getattr(self, "w_cf", None),
            w_co=getattr(self, "w_co", None),
            w_cd=getattr(self, "w_cd", None),
            w_ld=getattr(self, "w_ld", None),
        )


class LSTMCell(_LSTMTypeCell):
    """``lstm-eq``: the LSTM with a forget gate (Hochreiter & Schmidhuber 1997; Gers et al. 2000).

        f = σ(W_f[h₋₁, x] + b_f)        i = σ(W_i[h₋₁, x] + b_i)
        C̃ = tanh(W_C[h₋₁, x] + b_C)     C = f ⊙ C₋₁ + i ⊙ C̃
        o = σ(W_o[h₋₁, x] + b_o)        h = o ⊙ tanh(C)

    The same parameters and function as one layer of ``nn.LSTM``.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__(input_size, hidden_size, "ifgo")
        self.reset_parameters(forget_bias)

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        h_prev, c_prev = state
        return lstm_equations(x_proj + h_prev @ self.weight_hh.T, c_prev)


def lstm_equations(pre: Tensor, c_prev: Tensor) -> tuple[Tensor, State, Gates]:
    """The LSTM step from its gates' pre-activations ``W[h₋₁, x] + b`` (rows i, f, g, o)."""
    pre_i, pre_f, pre_g, pre_o = pre.chunk(4, dim=-1)
    forget_gate = torch.sigmoid(pre_f)
    input_gate = torch.sigmoid(pre_i)
    candidate = torch.tanh(pre_g)
    cell = forget_gate * c_prev + input_gate * candidate
    output_gate = torch.sigmoid(pre_o)
    h = output_gate * torch.tanh(cell)
    gates = dict(
        forget_gate=forget_gate,
        input_gate=input_gate,
        candidate=candidate,
        cell=cell,
        output_gate=output_gate,
    )
    return h, (h, cell), gates


class PeepholeLSTMCell(_LSTMTypeCell):
    """``peephole``: the gates look at the cell (Gers & Schmidhuber 2000, "Recurrent nets
    that time and count"), through diagonal weights ``w_ci``, ``w_cf``, ``w_co`` (start at 0):

        f = σ(W_f[h₋₁, x] + w_cf ⊙ C₋₁ + b_f)    i = σ(W_i[h₋₁, x] + w_ci ⊙ C₋₁ + b_i)
        C̃ = tanh(W_C[h₋₁, x] + b_C)             C = f ⊙ C₋₁ + i ⊙ C̃
        o = σ(W_o[h₋₁, x] + w_co ⊙ C + b_o)      h = o ⊙ tanh(C)

    The output gate sees the new cell C, the input and forget gates the old one.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__(input_size, hidden_size, "ifgo")
        self.w_ci = nn.Parameter(torch.empty(hidden_size))
        self.w_cf = nn.Parameter(torch.empty(hidden_size))
        self.w_co = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters(forget_bias)

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        h_prev, c_prev = state
        pre_i, pre_f, pre_g, pre_o = (x_proj + h_prev @ self.weight_hh.T).chunk(4, dim=-1)
        forget_gate = torch.sigmoid(pre_f + self.w_cf * c_prev)
        input_gate = torch.sigmoid(pre_i + self.w_ci * c_prev)
        candidate = torch.tanh(pre_g)
        cell = forget_gate * c_prev + input_gate * candidate
        output_gate = torch.sigmoid(pre_o + self.w_co * cell)
        h = output_gate * torch.tanh(cell)
        gates = dict(
            forget_gate=forget_gate,
            input_gate=input_gate,
            candidate=candidate,
            cell=cell,
            output_gate=output_gate,
        )
        return h, (h, cell), gates


class CoupledLSTMCell(_LSTMTypeCell):
    """``coupled``: coupled input and forget gates, CIFG (Greff et al. 2017, "LSTM: A Search
    Space Odyssey"). The cell writes exactly as much as it forgets:

        f = σ(W_f[h₋₁, x] + b_f)        i = 1 − f
        C̃ = tanh(W_C[h₋₁, x] + b_C)     C = f ⊙ C₋₁ + i ⊙ C̃
        o = σ(W_o[h₋₁, x] + b_o)        h = o ⊙ tanh(C)

    No input-gate parameters: the rows are (f, g, o), 3H instead of 4H.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__(input_size, hidden_size, "fgo")
        self.reset_parameters(forget_bias)

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        h_prev, c_prev = state
        pre_f, pre_g, pre_o = (x_proj + h_prev @ self.weight_hh.T).chunk(3, dim=-1)
        forget_gate = torch.sigmoid(pre_f)
        input_gate = 1.0 - forget_gate
        candidate = torch.tanh(pre_g)
        cell = forget_gate * c_prev + input_gate * candidate
        output_gate = torch.sigmoid(pre_o)
        h = output_gate * torch.tanh(cell)
        gates = dict(
            forget_gate=forget_gate,
            input_gate=input_gate,
            candidate=candidate,
            cell=cell,
            output_gate=output_gate,
        )
        return h, (h, cell), gates


class DepthGatedLSTMCell(_LSTMTypeCell):
    """``depth-gated``: an LSTM whose cell also receives the cell of the layer below through
    a depth gate (Yao, Cohn, Vylomova, Duh & Dyer 2015, "Depth-Gated LSTM",
    arXiv:1508.03790, eqs. 5-6). For a layer whose input x is the lower layer's h:

        f = σ(W_f[h₋₁, x] + b_f)        i = σ(W_i[h₋₁, x] + b_i)
        C̃ = tanh(W_C[h₋₁, x] + b_C)
        d = σ(W_xd x + w_cd ⊙ C₋₁ + w_ld ⊙ C_lower + b_d)
        C = f ⊙ C₋₁ + i ⊙ C̃ + d ⊙ C_lower
        o = σ(W_o[h₋₁, x] + b_o)        h = o ⊙ tanh(C)

    ``C_lower`` is the lower layer's cell at the same time step; the depth gate sees the
    input, this layer's previous cell and the lower cell, not h₋₁. The first layer has no
    lower cell, hence no depth gate and no d parameters: it is ``lstm-eq``. The paper's
    i, f, o gates also have peephole terms; here they are ``lstm-eq``'s, so a closed depth
    gate gives back a plain stacked LSTM.

    Rows of ``weight_ih``/``bias_ih`` are (i, f, g, o, d); ``weight_hh`` has no d rows,
    and ``bias_ih``'s d rows are b_d.
    """

    def __init__(
        self, input_size: int, hidden_size: int, forget_bias: float = 1.0, *, has_lower: bool
    ) -> None:
        super().__init__(input_size, hidden_size, "ifgod" if has_lower else "ifgo", "ifgo")
        self.uses_lower_cell = has_lower
        if has_lower:
            self.w_cd = nn.Parameter(torch.empty(hidden_size))
            self.w_ld = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters(forget_bias)

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        h_prev, c_prev = state
        hidden = self.hidden_size
        pre = x_proj[..., : 4 * hidden] + h_prev @ self.weight_hh.T
        pre_i, pre_f, pre_g, pre_o = pre.chunk(4, dim=-1)
        forget_gate = torch.sigmoid(pre_f)
        input_gate = torch.sigmoid(pre_i)
        candidate = torch.tanh(pre_g)
        cell = forget_gate * c_prev + input_gate * candidate
        gates = dict(forget_gate=forget_gate, input_gate=input_gate, candidate=candidate)
        if self.uses_lower_cell:
            if lower_cell is None:
                raise ValueError("a depth-gated layer above the first needs the lower cell")
            pre_d = x_proj[..., 4 * hidden :]
            depth_gate = torch.sigmoid(pre_d + self.w_cd * c_prev + self.w_ld * lower_cell)
            cell = cell + depth_gate * lower_cell
            gates["depth_gate"] = depth_gate
        output_gate = torch.sigmoid(pre_o)
        h = output_gate * torch.tanh(cell)
        gates.update(cell=cell, output_gate=output_gate)
        return h, (h, cell), gates


class GRUCell(RecurrentCell):
    """``gru-eq``: the gated recurrent unit (Cho et al. 2014) in PyTorch's formulation:

        r = σ(W_ir x + b_ir + W_hr h₋₁ + b_hr)
        z = σ(W_iz x + b_iz + W_hz h₋₁ + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h₋₁ + b_hn))
        h = (1 − z) ⊙ n + z ⊙ h₋₁

    The same parameters and function as one layer of ``nn.GRU``. Texts that write
    h = (1 − z) ⊙ h₋₁ + z ⊙ h̃ describe this cell with z's role swapped (z ↔ 1 − z, i.e.
    the update gate's pre-activation negated): the same family and capacity. The reset
    gate multiplies after the matrix product, r ⊙ (W_hn h₋₁), as in cuDNN, not before it.
    """

    state_size = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, "rzn")
        self.reset_parameters()

    def input_bias(self) -> Tensor:
        """b_x only: b_hn must stay inside r ⊙ (W_hn h₋₁ + b_hn)."""
        return self.bias_ih

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        (h_prev,) = state
        x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h_prev, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
        reset_gate = torch.sigmoid(x_r + h_r)
        update_gate = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset_gate * h_n)
        h = (1.0 - update_gate) * candidate + update_gate * h_prev
        gates = dict(reset_gate=reset_gate, update_gate=update_gate, candidate=candidate)
        return h, (h,), gates

    def scan(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        *,
        weight_hh: Tensor | None = None,
    ) -> tuple[Tensor, State, Tensor | None]:
        w_hh = self.weight_hh if weight_hh is None else weight_hh  # weight drop
        weights = GRUWeights(self.weight_ih, self.bias_ih, w_hh, self.bias_hh)
        ys = gru_scan(x, state[0], weights)
        return ys, (ys[-1],), None


class VanillaRNNCell(RecurrentCell):
    """The plain recurrent net the essay contrasts with the LSTM (``rnn-tanh``/``rnn-relu``):

        h = tanh(W[h₋₁, x] + b)        (or ReLU)

    The same parameters and function as one layer of ``nn.RNN``. Not a ``--cell`` of
    its own: the fused ``nn.RNN`` trains, and ``recurrent.equation_stack`` copies its
    weights here to record the pre-activation for inspection.
    """

    state_size = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__(input_size, hidden_size, "h")
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        self.reset_parameters()

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        (h_prev,) = state
        pre_activation = x_proj + h_prev @ self.weight_hh.T
        h = self.activation(pre_activation)
        return h, (h,), dict(pre_activation=pre_activation)
