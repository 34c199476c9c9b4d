"""Recurrent cells written as their equations, and a fast unrolled form of the same function.

Every cell splits its work the way fast RNN kernels do:

* ``project_input(x)``: the part that does not depend on the past, ``W_x x + b`` for every
  gate at once, applied to a whole (T, B, E) sequence in one GEMM.
* ``step(x_proj, state)``: one time step written as the paper's equations; it also returns
  the gate activations. ``forward(x, state)`` is one step from the raw input, without
  them; ``scan_steps(x, state)`` loops ``step`` over a sequence and stacks the gates
  (T, B, H) for inspection.
* ``scan(x, state)``: all T steps at once, the path ``CellStack`` trains with. Same
  function as ``scan_steps`` (the tests hold them equal, values and gradients), but it
  keeps only the activations and has a hand-written backward pass: per step one product
  with ``W_hh`` forwards and one backwards, every weight gradient as a single GEMM over
  all T*B rows, elementwise work in place in preallocated (T, B, .) buffers; see the
  notes above ``_LSTMScan``.

Weights use PyTorch's layout and gate order so they can be copied from ``nn.LSTM``
(rows i, f, g, o) and ``nn.GRU`` (rows r, z, n). In the docstrings ``W[h₋₁, x]`` is the
paper's concatenated matrix, i.e. ``W_h h₋₁ + W_x x``.
"""

from __future__ import annotations

import functools
import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any, List, Optional, Union  # noqa: UP035 (TorchScript reads typing)

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, ...]
Gates = dict[str, Tensor]


class RecurrentCell(nn.Module):
    """Base class: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` as in PyTorch."""

    state_size: int = 2  # (h, c); GRU: (h,)
    uses_lower_cell: bool = False  # depth-gated layers above the first

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

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return tuple(zeros.clone() for _ in range(self.state_size))

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        """One time step from the projected input: returns ``(h, state, gates)``."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State, lower_cell: Tensor | None = None) -> tuple[Tensor, State]:
        """One time step: x (B, E), state tensors (B, H) -> h (B, H), new state."""
        h, state, _ = self.step(self.project_input(x), state, lower_cell)
        return h, state

    def scan(
        self, x: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        """All steps: x (T, B, E) -> (y (T, B, H), last state, cells (T, B, H) or None)."""
        y, state, gates = self.scan_steps(x, state, lower_cells)
        return y, state, gates.get("cell")

    def scan_steps(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        unit_mask: Tensor | None = None,
    ) -> tuple[Tensor, State, Gates]:
        """``scan`` as a loop over ``step``, keeping every gate as (T, B, H).

        The reference that the fast ``scan`` is tested against, and the way to record
        gate traces for inspection. ``unit_mask`` (H,) multiplies the state after every
        step: zeros there ablate those units (their h and C stay 0).
        """
        x_proj = self.project_input(x)  # (T, B, P): one GEMM for all steps
        ys: list[Tensor] = []
        per_step: list[Gates] = []
        for t in range(x.shape[0]):
            lower = None if lower_cells is None else lower_cells[t]
            h, state, gates = self.step(x_proj[t], state, lower)
            if unit_mask is not None:
                state = tuple(s * unit_mask for s in state)
                h = state[0]
                if "cell" in gates:
                    gates["cell"] = state[1]
            ys.append(h)
            per_step.append(gates)
        gates = {name: torch.stack([g[name] for g in per_step]) for name in per_step[0]}
        return torch.stack(ys), state, gates


class _LSTMTypeCell(RecurrentCell):
    """Shared fast path for the LSTM-type cells."""

    def scan(
        self, x: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        h0, c0 = state
        ys, cells = _LSTMScan.apply(
            x,
            self.weight_ih,
            self.input_bias(),
            h0,
            c0,
            self.weight_hh,
            getattr(self, "w_ci", None),
            getattr(self, "w_cf", None),
            getattr(self, "w_co", None),
            getattr(self, "w_cd", None),
            getattr(self, "w_ld", None),
            lower_cells if self.uses_lower_cell else None,
            self.gate_order,
            not torch.is_grad_enabled(),  # inference: keep the packed W_hh for the next call
        )
        return ys, (ys[-1], cells[-1]), cells


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
        pre_i, pre_f, pre_g, pre_o = (x_proj + h_prev @ self.weight_hh.T).chunk(4, dim=-1)
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
        self, x: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        ys = _GRUScan.apply(
            x,
            self.weight_ih,
            self.bias_ih,
            state[0],
            self.weight_hh,
            self.bias_hh,
            not torch.is_grad_enabled(),  # inference: keep the packed W_hh for the next call
        )
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


def make_cell(
    name: str, input_size: int, hidden_size: int, *, forget_bias: float = 1.0, layer: int = 0
) -> RecurrentCell:
    """The cell called ``name`` (one of ``config.CUSTOM_CELLS``) for layer ``layer`` of a stack."""
    if name == "lstm-eq":
        return LSTMCell(input_size, hidden_size, forget_bias)
    if name == "peephole":
        return PeepholeLSTMCell(input_size, hidden_size, forget_bias)
    if name == "coupled":
        return CoupledLSTMCell(input_size, hidden_size, forget_bias)
    if name == "gru-eq":
        return GRUCell(input_size, hidden_size)
    if name == "depth-gated":
        return DepthGatedLSTMCell(input_size, hidden_size, forget_bias, has_lower=layer > 0)
    raise ValueError(f"unknown cell {name!r}")


# --- the fast path: whole-sequence forward and hand-written backward ---------------------
#
# Written for CPU speed rather than for reading (``step`` is the reference, and the tests
# hold the two equal). The input projection of all T steps is one GEMM whose output
# buffer then holds the gates in place; each step adds one product with W_hh (oneDNN with
# the weight packed once, see ``_pack``) and does its elementwise work in place, with
# tanh(u) = 2σ(2u) − 1 so that one σ call covers all gates. The step loops are
# TorchScript functions (``_script``), which halves their per-op interpreter overhead.
# Backward forms each weight gradient as one GEMM over all T*B rows (``_weight_grad``).

OptTensor = Optional[Tensor]  # noqa: UP045 (TorchScript reads typing.Optional)


class _LSTMScan(torch.autograd.Function):
    """T steps of an LSTM-type cell; ``gate_order`` is "ifgo", "fgo" (coupled) or "ifgod".

    Optional inputs are None when the cell lacks them: the peepholes ``w_ci``, ``w_cf``,
    ``w_co``, and the depth gate's ``w_cd``, ``w_ld`` and ``lower`` cells (T, B, H).
    Returns the hidden states and the cells, both (T, B, H).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,  # (T, B, E)
        weight_ih: Tensor,  # (P, E), P = len(gate_order) * H
        bias: Tensor,  # (P,): ``input_bias()``
        h0: Tensor,  # (B, H)
        c0: Tensor,  # (B, H)
        weight_hh: Tensor,  # (G * H, H), G = 4, or 3 when coupled
        w_ci: Tensor | None,
        w_cf: Tensor | None,
        w_co: Tensor | None,
        w_cd: Tensor | None,
        w_ld: Tensor | None,
        lower: Tensor | None,
        gate_order: str,
        frozen: bool,  # no grad: keep the packed W_hh for the next call (see ``_pack``)
    ) -> tuple[Tensor, Tensor]:
        steps, batch, _ = x.shape
        x_flat = x.reshape(steps * batch, -1)
        acts = torch.addmm(bias, x_flat, weight_ih.t()).view(steps, batch, -1)  # (T, B, P)
        ys, cells, tanh_cells = (x.new_empty(steps, batch, h0.shape[1]) for _ in range(3))
        coupled = gate_order == "fgo"
        _script(_lstm_forward_steps)(
            acts, h0, c0, _pack(weight_hh, batch, steps, keep=frozen), weight_hh,
            w_ci, w_cf, w_co, w_cd, w_ld, lower, coupled, ys, cells, tanh_cells,
        )  # fmt: skip
        ctx.save_for_backward(
            x, weight_ih, h0, c0, weight_hh, w_ci, w_cf, w_co, w_cd, w_ld, lower,
            acts, ys, cells, tanh_cells,
        )  # fmt: skip
        ctx.set_materialize_grads(False)
        ctx.coupled = coupled
        return ys, cells

    @staticmethod
    def backward(ctx: Any, d_ys: Tensor | None, d_cells: Tensor | None) -> tuple[Any, ...]:
        x, weight_ih, h0, c0, weight_hh, w_ci, w_cf, w_co, w_cd, w_ld, lower = ctx.saved_tensors[:11]
        acts, ys, cells, tanh_cells = ctx.saved_tensors[11:]
        steps, batch, hidden = ys.shape
        ngh = weight_hh.shape[0]
        d_pre = torch.empty_like(acts)  # dL/d pre-activations, (T, B, P)
        d_lower = torch.empty_like(lower) if lower is not None else None
        w_back = weight_hh.t()  # dh₋₁ = dpre @ W_hh
        dh0, dc0 = _script(_lstm_backward_steps)(
            d_ys, d_cells, acts, cells, tanh_cells, c0, lower, _pack(w_back, batch, steps), w_back,
            w_ci, w_cf, w_co, w_cd, w_ld, ctx.coupled, d_pre, d_lower,
        )  # fmt: skip

        need = ctx.needs_input_grad
        d_flat = d_pre.view(steps * batch, -1)  # (T*B, P)
        x_flat = x.reshape(steps * batch, -1)
        h_prev = torch.cat([h0.unsqueeze(0), ys[:-1]]).view(steps * batch, hidden)
        c_prev = torch.cat([c0.unsqueeze(0), cells[:-1]])  # (T, B, H)

        def gate(k: int) -> Tensor:  # the k-th H-wide column block of d_pre
            return d_pre[..., k * hidden : (k + 1) * hidden]

        def diag(want: bool, d_gate: Tensor, source: Tensor) -> Tensor | None:
            return (d_gate * source).sum((0, 1)) if want else None  # Σ_t,b dpre ⊙ source

        depth = lower is not None
        return (
            (d_flat @ weight_ih).view_as(x) if need[0] else None,
            _weight_grad(d_flat, x_flat) if need[1] else None,
            d_flat.sum(0) if need[2] else None,
            dh0,
            dc0,
            _weight_grad(d_flat[:, :ngh], h_prev) if need[5] else None,
            diag(w_ci is not None and need[6], gate(0), c_prev),  # peepholes: "ifgo"
            diag(w_cf is not None and need[7], gate(1), c_prev),
            diag(w_co is not None and need[8], gate(3), cells),
            diag(depth and need[9], gate(4), c_prev),  # depth gate: "ifgod"
            diag(depth and need[10], gate(4), lower),
            d_lower,
            None,
            None,
        )


def _lstm_forward_steps(
    acts: Tensor,  # (T, B, P): W_x x + b on entry, the activated gates on exit
    h0: Tensor,
    c0: Tensor,
    packed_hh: OptTensor,
    weight_hh: Tensor,
    w_ci: OptTensor,
    w_cf: OptTensor,
    w_co: OptTensor,
    w_cd: OptTensor,
    w_ld: OptTensor,
    lower: OptTensor,
    coupled: bool,
    ys: Tensor,  # out: h, (T, B, H)
    cells: Tensor,  # out: C
    tanh_cells: Tensor,  # out: tanh(C)
) -> None:
    hidden = h0.shape[1]
    ngh = weight_hh.shape[0]  # columns with a W_h h₋₁ term; the depth gate's has none
    col_f = 0 if coupled else hidden  # column offsets of f, C̃, o
    col_g, col_o = col_f + hidden, col_f + 2 * hidden
    # σ over every gate in one call, except a peephole o, which needs the new C
    n_sigmoid = 3 * hidden if w_co is not None else acts.shape[2]
    h, c = h0, c0
    for t in range(acts.shape[0]):
        a = acts[t]  # (B, P)
        a.narrow(1, 0, ngh).add_(_recur(h, packed_hh, weight_hh))
        f, g, o = a.narrow(1, col_f, hidden), a.narrow(1, col_g, hidden), a.narrow(1, col_o, hidden)
        if w_ci is not None:
            a.narrow(1, 0, hidden).addcmul_(c, w_ci)
        if w_cf is not None:
            f.addcmul_(c, w_cf)
        if lower is not None and w_cd is not None and w_ld is not None:
            a.narrow(1, ngh, hidden).addcmul_(c, w_cd).addcmul_(lower[t], w_ld)
        g.mul_(2.0)
        a.narrow(1, 0, n_sigmoid).sigmoid_()
        g.mul_(2.0).sub_(1.0)  # C̃ = tanh(u) = 2σ(2u) − 1
        c_new = cells[t]
        if coupled:  # C = f ⊙ C₋₁ + (1 − f) ⊙ C̃ = C̃ + f ⊙ (C₋₁ − C̃)
            torch.sub(c, g, out=c_new).mul_(f).add_(g)
        else:
            torch.mul(f, c, out=c_new).addcmul_(a.narrow(1, 0, hidden), g)
        if lower is not None:
            c_new.addcmul_(a.narrow(1, ngh, hidden), lower[t])
        if w_co is not None:
            o.addcmul_(c_new, w_co).sigmoid_()
        tanh_c = torch.mul(c_new, 2.0, out=tanh_cells[t]).sigmoid_().mul_(2.0).sub_(1.0)
        h = torch.mul(o, tanh_c, out=ys[t])
        c = c_new


def _lstm_backward_steps(
    d_ys: OptTensor,  # dL/dh from outside (T, B, H), None if unused
    d_cells: OptTensor,  # dL/dC from outside (the last state, a depth gate above)
    acts: Tensor,
    cells: Tensor,
    tanh_cells: Tensor,
    c0: Tensor,
    lower: OptTensor,
    packed_back: OptTensor,
    weight_back: Tensor,  # W_hhᵀ, (H, G*H)
    w_ci: OptTensor,
    w_cf: OptTensor,
    w_co: OptTensor,
    w_cd: OptTensor,
    w_ld: OptTensor,
    coupled: bool,
    d_pre: Tensor,  # out: dL/d pre-activations, (T, B, P)
    d_lower: OptTensor,  # out: dL/dC_lower
) -> tuple[Tensor, Tensor]:
    steps, batch, hidden = cells.shape
    ngh = weight_back.shape[1]
    col_f = 0 if coupled else hidden
    col_g, col_o = col_f + hidden, col_f + 2 * hidden
    dh = torch.zeros_like(c0)  # dL/dh_t arriving from step t + 1
    dc = torch.zeros_like(c0)  # dL/dC_t arriving from step t + 1
    for t in range(steps - 1, -1, -1):
        a, dpre = acts[t], d_pre[t]
        i, f, g, o = (
            a.narrow(1, 0, hidden),
            a.narrow(1, col_f, hidden),
            a.narrow(1, col_g, hidden),
            a.narrow(1, col_o, hidden),
        )
        dpi, dpf, dpg, dpo = (
            dpre.narrow(1, 0, hidden),
            dpre.narrow(1, col_f, hidden),
            dpre.narrow(1, col_g, hidden),
            dpre.narrow(1, col_o, hidden),
        )
        c_prev = cells[t - 1] if t > 0 else c0
        if d_ys is not None:
            dh = dh + d_ys[t]
        tanh_c = tanh_cells[t]
        torch.ops.aten.sigmoid_backward(dh * tanh_c, o, grad_input=dpo)
        dc = dc + torch.ops.aten.tanh_backward(dh * o, tanh_c)
        if d_cells is not None:
            dc = dc + d_cells[t]
        if w_co is not None:
            dc.addcmul_(dpo, w_co)
        if lower is not None and d_lower is not None and w_cd is not None and w_ld is not None:
            d, dpd = a.narrow(1, ngh, hidden), dpre.narrow(1, ngh, hidden)
            torch.ops.aten.sigmoid_backward(dc * lower[t], d, grad_input=dpd)
            torch.mul(dc, d, out=d_lower[t]).addcmul_(dpd, w_ld)
            dc_prev = torch.addcmul(dc * f, dpd, w_cd)
        else:
            dc_prev = dc * f
        if coupled:  # dC/df = C₋₁ − C̃, dC/dC̃ = 1 − f
            torch.ops.aten.sigmoid_backward(dc * (c_prev - g), f, grad_input=dpf)
            torch.ops.aten.tanh_backward(dc * (1.0 - f), g, grad_input=dpg)
        else:
            torch.ops.aten.sigmoid_backward(dc * g, i, grad_input=dpi)
            torch.ops.aten.sigmoid_backward(dc * c_prev, f, grad_input=dpf)
            torch.ops.aten.tanh_backward(dc * i, g, grad_input=dpg)
        if w_ci is not None:
            dc_prev.addcmul_(dpi, w_ci)
        if w_cf is not None:
            dc_prev.addcmul_(dpf, w_cf)
        dc = dc_prev
        dh = _recur(dpre.narrow(1, 0, ngh), packed_back, weight_back)  # (B, G*H) @ (G*H, H)
    return dh, dc


class _GRUScan(torch.autograd.Function):
    """T steps of ``GRUCell``: x (T, B, E), h0 (B, H) -> hidden states (T, B, H)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,  # (T, B, E)
        weight_ih: Tensor,  # (3H, E)
        bias_ih: Tensor,  # (3H,)
        h0: Tensor,  # (B, H)
        weight_hh: Tensor,  # (3H, H)
        bias_hh: Tensor,  # (3H,)
        frozen: bool,  # no grad: keep the packed W_hh for the next call (see ``_pack``)
    ) -> Tensor:
        steps, batch, _ = x.shape
        x_flat = x.reshape(steps * batch, -1)
        acts = torch.addmm(bias_ih, x_flat, weight_ih.t()).view(steps, batch, -1)  # (T, B, 3H)
        h_n = x.new_empty(steps, batch, h0.shape[1])  # W_hn h₋₁ + b_hn, kept for backward
        ys = torch.empty_like(h_n)
        _script(_gru_forward_steps)(
            acts, h0, _pack(weight_hh, batch, steps, keep=frozen), weight_hh, bias_hh, h_n, ys
        )
        ctx.save_for_backward(x, weight_ih, h0, weight_hh, acts, h_n, ys)
        return ys

    @staticmethod
    def backward(ctx: Any, d_ys: Tensor) -> tuple[Tensor | None, ...]:
        x, weight_ih, h0, weight_hh, acts, h_n, ys = ctx.saved_tensors
        steps, batch, hidden = ys.shape
        d_x_proj = torch.empty_like(acts)  # dL/d(W_x x + b_x)
        d_hh = torch.empty_like(acts)  # dL/d(W_h h₋₁ + b_h)
        w_back = weight_hh.t()
        dh0 = _script(_gru_backward_steps)(
            d_ys, acts, h_n, ys, h0, _pack(w_back, batch, steps), w_back, d_x_proj, d_hh
        )
        need = ctx.needs_input_grad
        dx_flat = d_x_proj.view(steps * batch, -1)
        dhh_flat = d_hh.view(steps * batch, -1)
        x_flat = x.reshape(steps * batch, -1)
        h_prev = torch.cat([h0.unsqueeze(0), ys[:-1]]).view(steps * batch, hidden)
        return (
            (dx_flat @ weight_ih).view_as(x) if need[0] else None,
            _weight_grad(dx_flat, x_flat) if need[1] else None,
            dx_flat.sum(0) if need[2] else None,
            dh0,
            _weight_grad(dhh_flat, h_prev) if need[4] else None,
            dhh_flat.sum(0) if need[5] else None,
            None,
        )


def _gru_forward_steps(
    acts: Tensor,  # (T, B, 3H): W_x x + b_x on entry, r, z, n on exit
    h0: Tensor,
    packed_hh: OptTensor,
    weight_hh: Tensor,
    bias_hh: Tensor,
    h_n: Tensor,  # out: W_hn h₋₁ + b_hn
    ys: Tensor,  # out: h
) -> None:
    hidden = h0.shape[1]
    h = h0
    for t in range(acts.shape[0]):
        a = acts[t]
        hh = _recur(h, packed_hh, weight_hh).add_(bias_hh)  # (B, 3H): W_h h₋₁ + b_h
        a.narrow(1, 0, 2 * hidden).add_(hh.narrow(1, 0, 2 * hidden)).sigmoid_()
        r, z, n = a.narrow(1, 0, hidden), a.narrow(1, hidden, hidden), a.narrow(1, 2 * hidden, hidden)
        h_n[t].copy_(hh.narrow(1, 2 * hidden, hidden))
        n.addcmul_(r, h_n[t]).tanh_()
        h = torch.sub(h, n, out=ys[t]).mul_(z).add_(n)  # (1 − z) ⊙ n + z ⊙ h₋₁


def _gru_backward_steps(
    d_ys: Tensor,
    acts: Tensor,
    h_n: Tensor,
    ys: Tensor,
    h0: Tensor,
    packed_back: OptTensor,
    weight_back: Tensor,  # W_hhᵀ, (H, 3H)
    d_x_proj: Tensor,  # out: dL/d(W_x x + b_x)
    d_hh: Tensor,  # out: dL/d(W_h h₋₁ + b_h)
) -> Tensor:
    hidden = h0.shape[1]
    dh = torch.zeros_like(h0)
    for t in range(acts.shape[0] - 1, -1, -1):
        a, dx, dhh = acts[t], d_x_proj[t], d_hh[t]
        r, z, n = a.narrow(1, 0, hidden), a.narrow(1, hidden, hidden), a.narrow(1, 2 * hidden, hidden)
        h_prev = ys[t - 1] if t > 0 else h0
        dh = dh + d_ys[t]
        dpn = dx.narrow(1, 2 * hidden, hidden)
        torch.ops.aten.tanh_backward(dh * (1.0 - z), n, grad_input=dpn)
        torch.ops.aten.sigmoid_backward(dpn * h_n[t], r, grad_input=dhh.narrow(1, 0, hidden))
        torch.ops.aten.sigmoid_backward(dh * (h_prev - n), z, grad_input=dhh.narrow(1, hidden, hidden))
        torch.mul(dpn, r, out=dhh.narrow(1, 2 * hidden, hidden))
        dx.narrow(1, 0, 2 * hidden).copy_(dhh.narrow(1, 0, 2 * hidden))
        dh = _recur(dhh, packed_back, weight_back).addcmul_(dh, z)  # dhh @ W_hh + dh ⊙ z
    return dh


def _weight_grad(d: Tensor, inputs: Tensor) -> Tensor:
    """Σ over rows of dᵀ ⊗ inputs: (N, P), (N, E) -> (P, E), as ``(inputsᵀ @ d)ᵀ``."""
    return (inputs.t() @ d).t()


def _recur(h: Tensor, packed: OptTensor, weight: Tensor) -> Tensor:
    """``h @ weightᵀ``: with oneDNN when the weight was packed by ``_pack``, else a matmul."""
    if packed is not None:
        scalars: List[Optional[Union[int, float, complex]]] = []  # noqa: UP006, UP007, UP045
        return torch.ops.mkldnn._linear_pointwise(h.contiguous(), packed, None, "none", scalars, "")
    return h.mm(weight.t())


def _pack(weight: Tensor, batch: int, steps: int, *, keep: bool = False) -> Tensor | None:
    """``weight`` packed for oneDNN's linear, or None where a plain matmul is the better deal.

    On CPU in float32 the recurrent product (B × H) @ (H × 4H) with B ≈ 20 is about 25%
    faster through oneDNN with the weight packed once per sequence than through MKL's
    sgemm, which repacks it every call. Packing costs about one product (several for a
    transposed weight), so short sequences skip it unless a packing is kept from an
    earlier call: ``keep=True`` (inference, weights frozen) keeps one per weight, dropped
    when the weight changes or dies. (``mkldnn._linear_pointwise`` is the kernel behind
    ``torch.compile``'s CPU linear; it is private, so ``_onednn_works`` checks it first.)
    """
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not _onednn_works():
        return None
    stamp = (weight.data_ptr(), weight.stride(), weight._version, batch)
    kept = _PACKED.get(id(weight))
    if kept is not None and kept[0]() is weight and kept[1] == stamp:
        return kept[2]
    if steps < (4 if weight.is_contiguous() else 16):
        return None
    packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch)
    if keep:
        key = id(weight)
        _PACKED[key] = (weakref.ref(weight, lambda _: _PACKED.pop(key, None)), stamp, packed)
    return packed


_PACKED: dict[int, tuple[weakref.ref, tuple, Tensor]] = {}  # id(weight) -> (weight, stamp, packed)


@functools.cache
def _onednn_works() -> bool:
    """Whether this PyTorch build has the packed oneDNN linear ops, and they agree with mm."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    try:
        # fixed values, not torch.randn: this runs inside the first training step, and
        # drawing from the global generator there would shift every later dropout mask
        w = torch.linspace(-1.0, 1.0, 32).reshape(4, 8)  # used transposed, as in backward
        h = torch.linspace(-0.5, 0.7, 12).reshape(3, 4)
        y = _recur(h, torch.ops.mkldnn._reorder_linear_weight(w.t(), 3), w.t())
        return torch.allclose(y, h @ w, atol=1e-5)
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def _script(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` compiled by TorchScript, or ``fn`` itself where scripting is unavailable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # deprecated in torch 2.10+
            return torch.jit.script(fn)
    except Exception:  # TorchScript is an optimisation here, never a requirement
        return fn
