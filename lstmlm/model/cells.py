"""Recurrent cells written as their equations, and a fast unrolled form of the same function.

Every cell splits its work the way fast RNN kernels do:

* ``project_input(x)``: the part that does not depend on the past, ``W_x x + b`` for every
  gate at once. ``CellStack`` applies it to a whole (T, B, E) sequence in one GEMM.
* ``step(x_proj, state)``: one time step written as the paper's equations; it also returns
  the gate activations (for inspection and tests). ``forward(x, state)`` is one step
  from the raw input, without the gates.
* ``scan(x_proj, state)``: all T steps at once, the training path. It computes the same
  function as ``step`` in a loop (the tests check this) but keeps only the activations
  and runs a hand-written backward pass: per step one GEMM with ``W_hh`` forwards and
  one backwards, the weight gradient as a single (4H, T*B) @ (T*B, H) GEMM at the end,
  and in-place elementwise work into preallocated (T, B, .) buffers.

Weights use PyTorch's layout and gate order so they can be copied from ``nn.LSTM``
(rows i, f, g, o) and ``nn.GRU`` (rows r, z, n). In the docstrings ``W[h₋₁, x]`` is the
paper's concatenated matrix, i.e. ``W_h h₋₁ + W_x x``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, ...]
Gates = dict[str, Tensor]

_sigmoid_backward = torch.ops.aten.sigmoid_backward  # (grad, σ(x)) -> grad ⊙ σ(x)(1 − σ(x))
_tanh_backward = torch.ops.aten.tanh_backward  # (grad, tanh(x)) -> grad ⊙ (1 − tanh(x)²)


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

    def project_input(self, x: Tensor) -> Tensor:
        """``W_x x + b`` for every gate: (..., E) -> (..., len(gate_order) * H)."""
        # gates with a W_h h₋₁ term come first; their b_h folds into the hoisted bias
        n = self.bias_hh.numel()
        bias = torch.cat([self.bias_ih[:n] + self.bias_hh, self.bias_ih[n:]])
        return F.linear(x, self.weight_ih, bias)

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
        self, x_proj: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        """All steps: x_proj (T, B, P) -> (y (T, B, H), last state, cells (T, B, H) or None)."""
        return self.scan_steps(x_proj, state, lower_cells)

    def scan_steps(
        self, x_proj: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        """``scan`` as a plain loop over ``step`` (the reference the fast path is tested against)."""
        ys, cells = [], []
        for t in range(x_proj.shape[0]):
            lower = None if lower_cells is None else lower_cells[t]
            h, state, _ = self.step(x_proj[t], state, lower)
            ys.append(h)
            cells.append(state[-1])
        return torch.stack(ys), state, torch.stack(cells) if self.state_size == 2 else None


class _LSTMTypeCell(RecurrentCell):
    """Shared fast path for the LSTM-type cells."""

    def scan(
        self, x_proj: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        h0, c0 = state
        ys, cells = _LSTMScan.apply(
            x_proj,
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

    def project_input(self, x: Tensor) -> Tensor:
        """``W_x x + b_x`` for r, z, n: (..., E) -> (..., 3H); b_hn stays inside r ⊙ (·)."""
        return F.linear(x, self.weight_ih, self.bias_ih)

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
        self, x_proj: Tensor, state: State, lower_cells: Tensor | None = None
    ) -> tuple[Tensor, State, Tensor | None]:
        ys = _GRUScan.apply(x_proj, state[0], self.weight_hh, self.bias_hh)
        return ys, (ys[-1],), None


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


class _LSTMScan(torch.autograd.Function):
    """T steps of an LSTM-type cell; ``gate_order`` is "ifgo", "fgo" (coupled) or "ifgod".

    Optional inputs are None when the cell lacks them: peepholes ``w_ci``, ``w_cf``,
    ``w_co`` and the depth gate's ``w_cd``, ``w_ld`` and ``lower`` cells (T, B, H).
    Returns the hidden states and the cells, both (T, B, H).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x_proj: Tensor,  # (T, B, P): W_x x + b, P = len(gate_order) * H
        h0: Tensor,  # (B, H)
        c0: Tensor,  # (B, H)
        weight_hh: Tensor,  # (G * H, H), G = 4 or 3 (coupled)
        w_ci: Tensor | None,
        w_cf: Tensor | None,
        w_co: Tensor | None,
        w_cd: Tensor | None,
        w_ld: Tensor | None,
        lower: Tensor | None,  # (T, B, H)
        gate_order: str,
    ) -> tuple[Tensor, Tensor]:
        steps, batch, _ = x_proj.shape
        hidden = h0.shape[-1]
        ngh = weight_hh.shape[0]  # rows with a W_h h term
        coupled = gate_order == "fgo"
        acts = x_proj.new_empty(steps, batch, ngh)  # activated gates (i,) f, g, o per step
        ys = x_proj.new_empty(steps, batch, hidden)
        cells = x_proj.new_empty(steps, batch, hidden)
        depth = x_proj.new_empty(steps, batch, hidden) if lower is not None else None
        w_hh_t = weight_hh.t()
        h, c = h0, c0
        for t in range(steps):
            a = torch.addmm(x_proj[t, :, :ngh], h, w_hh_t, out=acts[t])  # (B, G*H)
            i, f, g, o = _lstm_views(a, hidden, coupled)
            if w_ci is not None:
                i.addcmul_(c, w_ci)
            if w_cf is not None:
                f.addcmul_(c, w_cf)
            (f if coupled else a[:, : 2 * hidden]).sigmoid_()  # i and f are adjacent
            g.tanh_()
            c_new = cells[t]
            if coupled:  # C = f ⊙ C₋₁ + (1 − f) ⊙ C̃ = C̃ + f ⊙ (C₋₁ − C̃)
                torch.sub(c, g, out=c_new).mul_(f).add_(g)
            else:
                torch.mul(f, c, out=c_new).addcmul_(i, g)
            if depth is not None:
                d = torch.addcmul(x_proj[t, :, ngh:], c, w_cd, out=depth[t])
                d.addcmul_(lower[t], w_ld).sigmoid_()
                c_new.addcmul_(d, lower[t])
            if w_co is not None:
                o.addcmul_(c_new, w_co)
            o.sigmoid_()
            h = torch.tanh(c_new, out=ys[t]).mul_(o)
            c = c_new
        ctx.save_for_backward(h0, c0, weight_hh, w_ci, w_cf, w_co, w_cd, w_ld, lower, acts, ys, cells, depth)
        ctx.coupled = coupled
        ctx.x_proj_width = x_proj.shape[-1]
        return ys, cells

    @staticmethod
    def backward(ctx: Any, d_ys: Tensor, d_cells: Tensor) -> tuple[Tensor | None, ...]:
        h0, c0, weight_hh, w_ci, w_cf, w_co, w_cd, w_ld, lower, acts, ys, cells, depth = ctx.saved_tensors
        coupled = ctx.coupled
        steps, batch, hidden = ys.shape
        ngh = weight_hh.shape[0]
        d_x_proj = ys.new_empty(steps, batch, ctx.x_proj_width)  # dL/d pre-activations
        d_lower = torch.empty_like(lower) if lower is not None else None
        dh = torch.zeros_like(h0)  # dL/dh_t from step t + 1
        dc = torch.zeros_like(c0)  # dL/dC_t from step t + 1
        for t in range(steps - 1, -1, -1):
            i, f, g, o = _lstm_views(acts[t], hidden, coupled)
            c, c_prev = cells[t], (cells[t - 1] if t > 0 else c0)
            dpre = d_x_proj[t]
            dpi, dpf, dpg, dpo = _lstm_views(dpre, hidden, coupled)
            dh = dh + d_ys[t]
            tanh_c = torch.tanh(c)
            _sigmoid_backward.grad_input(dh * tanh_c, o, grad_input=dpo)
            dc = dc + d_cells[t] + _tanh_backward(dh * o, tanh_c)
            if w_co is not None:
                dc.addcmul_(dpo, w_co)
            if depth is not None:
                d, dpd = depth[t], dpre[:, ngh:]
                _sigmoid_backward.grad_input(dc * lower[t], d, grad_input=dpd)
                torch.mul(dc, d, out=d_lower[t]).addcmul_(dpd, w_ld)
            if coupled:  # dC/df = C₋₁ − C̃, dC/dC̃ = 1 − f
                _sigmoid_backward.grad_input(dc * (c_prev - g), f, grad_input=dpf)
                _tanh_backward.grad_input(dc * (1.0 - f), g, grad_input=dpg)
            else:
                _sigmoid_backward.grad_input(dc * g, i, grad_input=dpi)
                _sigmoid_backward.grad_input(dc * c_prev, f, grad_input=dpf)
                _tanh_backward.grad_input(dc * i, g, grad_input=dpg)
            dc = dc * f
            if w_ci is not None:
                dc.addcmul_(dpi, w_ci)
            if w_cf is not None:
                dc.addcmul_(dpf, w_cf)
            if depth is not None:
                dc.addcmul_(dpd, w_cd)
            dh = dpre[:, :ngh] @ weight_hh  # (B, G*H) @ (G*H, H)

        need = ctx.needs_input_grad
        d_gates = d_x_proj[..., :ngh].reshape(steps * batch, ngh)  # (T*B, G*H)
        h_prev_all = torch.cat([h0.unsqueeze(0), ys[:-1]])  # (T, B, H)
        c_prev_all = torch.cat([c0.unsqueeze(0), cells[:-1]])
        d_weight_hh = d_gates.t() @ h_prev_all.reshape(-1, hidden) if need[3] else None

        def diag_grad(gate: Tensor, source: Tensor) -> Tensor:  # Σ_t,b dpre ⊙ source
            return (gate * source).sum((0, 1))

        views = _lstm_views(d_x_proj, hidden, coupled)
        d_w_ci = diag_grad(views[0], c_prev_all) if w_ci is not None and need[4] else None
        d_w_cf = diag_grad(views[1], c_prev_all) if w_cf is not None and need[5] else None
        d_w_co = diag_grad(views[3], cells) if w_co is not None and need[6] else None
        d_w_cd = d_w_ld = None
        if depth is not None:
            d_pre_d = d_x_proj[..., ngh:]
            d_w_cd = diag_grad(d_pre_d, c_prev_all) if need[7] else None
            d_w_ld = diag_grad(d_pre_d, lower) if need[8] else None
        return (
            d_x_proj,
            dh,
            dc,
            d_weight_hh,
            d_w_ci,
            d_w_cf,
            d_w_co,
            d_w_cd,
            d_w_ld,
            d_lower,
            None,
        )


def _lstm_views(a: Tensor, hidden: int, coupled: bool) -> tuple[Tensor, ...]:
    """(i, f, g, o) column blocks of a (..., G*H) tensor; for coupled i is None."""
    if coupled:
        f, g, o = (a[..., k * hidden : (k + 1) * hidden] for k in range(3))
        return None, f, g, o  # type: ignore[return-value]
    return tuple(a[..., k * hidden : (k + 1) * hidden] for k in range(4))


class _GRUScan(torch.autograd.Function):
    """T steps of ``GRUCell``: x_proj (T, B, 3H), h0 (B, H) -> hidden states (T, B, H)."""

    @staticmethod
    def forward(ctx: Any, x_proj: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
        steps, batch, width = x_proj.shape
        hidden = width // 3
        acts = torch.empty_like(x_proj)  # r, z, n per step
        h_n = x_proj.new_empty(steps, batch, hidden)  # W_hn h₋₁ + b_hn per step
        ys = x_proj.new_empty(steps, batch, hidden)
        w_hh_t = weight_hh.t()
        h = h0
        for t in range(steps):
            a = torch.addmm(bias_hh, h, w_hh_t, out=acts[t])  # (B, 3H): W_h h₋₁ + b_h
            rz, n = a[:, : 2 * hidden], a[:, 2 * hidden :]
            r, z = a[:, :hidden], a[:, hidden : 2 * hidden]
            h_n[t].copy_(n)
            rz.add_(x_proj[t, :, : 2 * hidden]).sigmoid_()
            n.mul_(r).add_(x_proj[t, :, 2 * hidden :]).tanh_()
            h = torch.sub(h, n, out=ys[t]).mul_(z).add_(n)  # (1 − z) ⊙ n + z ⊙ h₋₁
        ctx.save_for_backward(h0, weight_hh, acts, h_n, ys)
        return ys

    @staticmethod
    def backward(ctx: Any, d_ys: Tensor) -> tuple[Tensor | None, ...]:
        h0, weight_hh, acts, h_n, ys = ctx.saved_tensors
        steps, batch, hidden = ys.shape
        d_x_proj = torch.empty_like(acts)  # dL/d(W_x x + b_x)
        d_hh = torch.empty_like(acts)  # dL/d(W_h h₋₁ + b_h)
        dh = torch.zeros_like(h0)
        for t in range(steps - 1, -1, -1):
            a = acts[t]
            r, z, n = a[:, :hidden], a[:, hidden : 2 * hidden], a[:, 2 * hidden :]
            h_prev = ys[t - 1] if t > 0 else h0
            dx, dhh = d_x_proj[t], d_hh[t]
            dh = dh + d_ys[t]
            dpn = _tanh_backward.grad_input(dh * (1.0 - z), n, grad_input=dx[:, 2 * hidden :])
            _sigmoid_backward.grad_input(dpn * h_n[t], r, grad_input=dhh[:, :hidden])
            _sigmoid_backward.grad_input(dh * (h_prev - n), z, grad_input=dhh[:, hidden : 2 * hidden])
            torch.mul(dpn, r, out=dhh[:, 2 * hidden :])
            dx[:, : 2 * hidden].copy_(dhh[:, : 2 * hidden])
            dh = torch.addmm(dh * z, dhh, weight_hh)  # (B, 3H) @ (3H, H)
        need = ctx.needs_input_grad
        flat = d_hh.reshape(steps * batch, 3 * hidden)
        h_prev_all = torch.cat([h0.unsqueeze(0), ys[:-1]]).reshape(-1, hidden)
        d_weight_hh = flat.t() @ h_prev_all if need[2] else None
        d_bias_hh = flat.sum(0) if need[3] else None
        return d_x_proj, dh, d_weight_hh, d_bias_hh
