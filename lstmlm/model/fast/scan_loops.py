"""The loops over time steps of the equation cells' fast path (``scan.py``).

The only Python that runs T times per layer and pass, so the only place where the
interpreter's cost per op shows: ``scan.py`` runs these functions compiled by
TorchScript (``scan.torchscript_loops``; why, with the numbers, is there). They keep to
what TorchScript compiles: typed arguments, NamedTuples with ``Tensor | None`` fields
read into locals before an ``is not None`` test, no closures or generators. Each works
in place in the (T, B, .) buffers its caller allocated, on (B, .) views made once before
the loop (``_steps``); the ``LSTMTrace``/``GRUTrace`` it fills is what backward reads.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from lstmlm.model.fast.packed_linear import linear


class StepLoops(NamedTuple):
    """The loops over time steps: the only Python that runs T times per layer and pass."""

    lstm_forward: Callable[..., None]
    lstm_backward: Callable[..., tuple[Tensor, Tensor]]
    gru_forward: Callable[..., None]
    gru_backward: Callable[..., Tensor]


class LSTMWeights(NamedTuple):
    """An LSTM-type cell's parameters as the fast path takes them; None where the cell has none."""

    weight_ih: Tensor  # (P, E), P = len(gate_order) * H; rows "ifgo", "fgo" (coupled) or "ifgod"
    bias: Tensor  # (P,): the cell's ``input_bias()``
    weight_hh: Tensor  # (G * H, H): G = 4, 3 when coupled; the depth gate has no W_h h₋₁
    w_ci: Tensor | None = None  # peepholes, (H,)
    w_cf: Tensor | None = None
    w_co: Tensor | None = None
    w_cd: Tensor | None = None  # depth gate, (H,)
    w_ld: Tensor | None = None


class LSTMTrace(NamedTuple):
    """What the forward pass keeps for backward."""

    gates: Tensor  # (T, B, P): W_x x + b before the step loop, the activated gates after it
    hs: Tensor  # (T, B, H): h
    cells: Tensor  # C
    tanh_cells: Tensor  # tanh(C)


class GRUWeights(NamedTuple):
    weight_ih: Tensor  # (3H, E), rows r, z, n
    bias_ih: Tensor  # (3H,)
    weight_hh: Tensor  # (3H, H)
    bias_hh: Tensor  # (3H,)


class GRUTrace(NamedTuple):
    """What the forward pass keeps for backward."""

    gates: Tensor  # (T, B, 3H): W_x x + b_x before the step loop, r, z, n after it
    h_n: Tensor  # (T, B, H): W_hn h₋₁ + b_hn
    hs: Tensor  # (T, B, H): h


def gate_blocks(rows: Tensor, hidden: int, coupled: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The i, f, C̃, o column blocks of gate rows (..., P); coupled ("fgo"): f stands in for i."""
    col_f = 0 if coupled else hidden
    return (
        rows.narrow(-1, 0, hidden),
        rows.narrow(-1, col_f, hidden),
        rows.narrow(-1, col_f + hidden, hidden),
        rows.narrow(-1, col_f + 2 * hidden, hidden),
    )


def _steps(sequence: Tensor) -> list[Tensor]:
    """(T, B, .) -> T views (B, .): one call instead of one indexing per step."""
    return list(sequence.unbind(0))


def _block_steps(sequence: Tensor, width: int, count: int) -> list[list[Tensor]]:
    """The first ``count`` column blocks of (T, B, .), each ``width`` wide, as ``_steps``."""
    return [_steps(sequence.narrow(2, k * width, width)) for k in range(count)]


def _gate_steps(
    gates: Tensor, hidden: int, coupled: bool
) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
    """``gate_blocks`` of (T, B, P) gates, as ``_steps``."""
    i, f, g, o = gate_blocks(gates, hidden, coupled)
    return _steps(i), _steps(f), _steps(g), _steps(o)


def _lstm_forward_loop(
    trace: LSTMTrace,  # out: filled step by step (``gates`` holds W_x x + b on entry)
    h0: Tensor,
    c0: Tensor,
    lower: Tensor | None,
    weights: LSTMWeights,
    packed_hh: Tensor | None,
    coupled: bool,
) -> None:
    """Fills ``trace`` from step 1 to T: the gates, C, tanh(C) and h of every step."""
    weight_hh, w_ci, w_cf, w_co = weights.weight_hh, weights.w_ci, weights.w_cf, weights.w_co
    w_cd, w_ld = weights.w_cd, weights.w_ld
    hidden = h0.shape[1]
    ngh = weight_hh.shape[0]  # columns with a W_h h₋₁ term; the depth gate's has none
    # σ over every gate in one call, except a peephole o, which needs the new C
    n_sigmoid = 3 * hidden if w_co is not None else trace.gates.shape[2]
    # the blocks of every step as (B, .) views, made once before the loop
    gates = trace.gates
    with_hh, to_sigmoid = _steps(gates.narrow(2, 0, ngh)), _steps(gates.narrow(2, 0, n_sigmoid))
    i_s, f_s, g_s, o_s = _gate_steps(gates, hidden, coupled)
    hs, cells, tanh_cells = _steps(trace.hs), _steps(trace.cells), _steps(trace.tanh_cells)
    one = torch.ones((), dtype=h0.dtype)  # a tensor: TorchScript turns a 1.0 into one per call
    h, c = h0, c0
    for t in range(len(hs)):
        i, f, g, o = i_s[t], f_s[t], g_s[t], o_s[t]
        with_hh[t].add_(linear(h, packed_hh, weight_hh))
        if w_ci is not None:
            i.addcmul_(c, w_ci)
        if w_cf is not None:
            f.addcmul_(c, w_cf)
        if lower is not None and w_cd is not None and w_ld is not None:
            gates[t].narrow(1, ngh, hidden).addcmul_(c, w_cd).addcmul_(lower[t], w_ld)
        g.add_(g)  # 2u: doubling by addition is exact, and takes no scalar into TorchScript's ops
        to_sigmoid[t].sigmoid_()
        g.add_(g).sub_(one)  # C̃ = tanh(u) = 2σ(2u) − 1
        c_new = cells[t]
        if coupled:  # C = f ⊙ C₋₁ + (1 − f) ⊙ C̃ = C̃ + f ⊙ (C₋₁ − C̃)
            torch.sub(c, g, out=c_new).mul_(f).add_(g)
        else:
            torch.mul(f, c, out=c_new).addcmul_(i, g)
        if lower is not None:
            c_new.addcmul_(gates[t].narrow(1, ngh, hidden), lower[t])
        if w_co is not None:
            o.addcmul_(c_new, w_co).sigmoid_()
        tanh_c = torch.add(c_new, c_new, out=tanh_cells[t]).sigmoid_()
        tanh_c.add_(tanh_c).sub_(one)
        h = torch.mul(o, tanh_c, out=hs[t])
        c = c_new


def _lstm_backward_loop(
    d_hs: Tensor | None,
    d_cells: Tensor | None,
    trace: LSTMTrace,
    c0: Tensor,
    lower: Tensor | None,
    weights: LSTMWeights,
    packed_back: Tensor | None,
    weight_back: Tensor,  # W_hhᵀ, (H, G*H)
    coupled: bool,
    d_pre: Tensor,  # out: dL/d pre-activations, (T, B, P)
    d_lower: Tensor | None,  # out: dL/dC_lower
) -> tuple[Tensor, Tensor]:
    """Fills ``d_pre`` and ``d_lower`` from step T down to 1; returns dL/dh₀, dL/dC₀."""
    w_ci, w_cf, w_co = weights.w_ci, weights.w_cf, weights.w_co
    w_cd, w_ld = weights.w_cd, weights.w_ld
    hidden = c0.shape[1]
    ngh = weight_back.shape[1]
    # the blocks of every step as (B, .) views, made once before the loop
    i_s, f_s, g_s, o_s = _gate_steps(trace.gates, hidden, coupled)
    dpi_s, dpf_s, dpg_s, dpo_s = _gate_steps(d_pre, hidden, coupled)
    d_with_hh = _steps(d_pre.narrow(2, 0, ngh))
    cells, tanh_cells = _steps(trace.cells), _steps(trace.tanh_cells)
    dh = torch.zeros_like(c0)  # dL/dh_t arriving from step t + 1
    dc = torch.zeros_like(c0)  # dL/dC_t arriving from step t + 1
    for t in range(len(cells) - 1, -1, -1):
        i, f, g, o = i_s[t], f_s[t], g_s[t], o_s[t]
        dpi, dpf, dpg, dpo = dpi_s[t], dpf_s[t], dpg_s[t], dpo_s[t]
        if d_hs is not None:
            dh = dh + d_hs[t]
        tanh_c = tanh_cells[t]
        torch.ops.aten.sigmoid_backward(dh * tanh_c, o, grad_input=dpo)  # h = o ⊙ tanh(C)
        dc = dc + torch.ops.aten.tanh_backward(dh * o, tanh_c)
        if d_cells is not None:
            dc = dc + d_cells[t]
        if w_co is not None:
            dc.addcmul_(dpo, w_co)
        if lower is not None and d_lower is not None and w_cd is not None and w_ld is not None:
            d, dpd = trace.gates[t].narrow(1, ngh, hidden), d_pre[t].narrow(1, ngh, hidden)
            torch.ops.aten.sigmoid_backward(dc * lower[t], d, grad_input=dpd)
            torch.mul(dc, d, out=d_lower[t]).addcmul_(dpd, w_ld)
            dc_prev = torch.addcmul(dc * f, dpd, w_cd)
        else:
            dc_prev = dc * f
        c_prev = cells[t - 1] if t > 0 else c0
        _cell_update_backward(dc, c_prev, i, f, g, dpi, dpf, dpg, coupled)
        if w_ci is not None:
            dc_prev.addcmul_(dpi, w_ci)
        if w_cf is not None:
            dc_prev.addcmul_(dpf, w_cf)
        dc = dc_prev
        dh = linear(d_with_hh[t], packed_back, weight_back)  # (B, G*H) @ (G*H, H)
    return dh, dc


def _cell_update_backward(
    dc: Tensor,
    c_prev: Tensor,
    i: Tensor,
    f: Tensor,
    g: Tensor,
    dpi: Tensor,  # out: dL/d pre-activation of i (unused when coupled)
    dpf: Tensor,  # out: of f
    dpg: Tensor,  # out: of C̃
    coupled: bool,
) -> None:
    """Through C = f ⊙ C₋₁ + i ⊙ C̃, given dL/dC; coupled: i = 1 − f, dC/df = C₋₁ − C̃."""
    if coupled:
        torch.ops.aten.sigmoid_backward(dc * (c_prev - g), f, grad_input=dpf)
        torch.ops.aten.tanh_backward(dc * (1.0 - f), g, grad_input=dpg)
    else:
        torch.ops.aten.sigmoid_backward(dc * g, i, grad_input=dpi)
        torch.ops.aten.sigmoid_backward(dc * c_prev, f, grad_input=dpf)
        torch.ops.aten.tanh_backward(dc * i, g, grad_input=dpg)


def _gru_forward_loop(
    trace: GRUTrace,  # out: filled step by step (``gates`` holds W_x x + b_x on entry)
    h0: Tensor,
    packed_hh: Tensor | None,
    weight_hh: Tensor,
    bias_hh: Tensor,
) -> None:
    """Fills ``trace`` from step 1 to T: r, z, n, W_hn h₋₁ + b_hn and h of every step."""
    hidden = h0.shape[1]
    # the blocks of every step as (B, .) views, made once before the loop
    r_s, z_s, n_s = _block_steps(trace.gates, hidden, 3)
    (rz_s,) = _block_steps(trace.gates, 2 * hidden, 1)  # σ over r and z in one call
    h_n, hs = _steps(trace.h_n), _steps(trace.hs)
    h = h0
    for t in range(len(hs)):
        hh = linear(h, packed_hh, weight_hh).add_(bias_hh)  # (B, 3H): W_h h₋₁ + b_h
        rz_s[t].add_(hh.narrow(1, 0, 2 * hidden)).sigmoid_()
        h_n[t].copy_(hh.narrow(1, 2 * hidden, hidden))
        n = n_s[t].addcmul_(r_s[t], h_n[t]).tanh_()
        h = torch.sub(h, n, out=hs[t]).mul_(z_s[t]).add_(n)  # (1 − z) ⊙ n + z ⊙ h₋₁


def _gru_backward_loop(
    d_hs: Tensor,
    trace: GRUTrace,
    h0: Tensor,
    packed_back: Tensor | None,
    weight_back: Tensor,  # W_hhᵀ, (H, 3H)
    d_x_proj: Tensor,  # out: dL/d(W_x x + b_x)
    d_hh: Tensor,  # out: dL/d(W_h h₋₁ + b_h)
) -> Tensor:
    """Fills ``d_x_proj`` and ``d_hh`` from step T down to 1; returns dL/dh₀."""
    hidden = h0.shape[1]
    # the blocks of every step as (B, .) views, made once before the loop
    r_s, z_s, n_s = _block_steps(trace.gates, hidden, 3)
    h_n, hs = _steps(trace.h_n), _steps(trace.hs)
    _, _, dx_n_s = _block_steps(d_x_proj, hidden, 3)  # dL/d(W_in x + b_in)
    (dx_rz_s,) = _block_steps(d_x_proj, 2 * hidden, 1)
    dh_r_s, dh_z_s, dh_n_s = _block_steps(d_hh, hidden, 3)
    (dh_rz_s,) = _block_steps(d_hh, 2 * hidden, 1)
    dhh_s = _steps(d_hh)
    dh = torch.zeros_like(h0)
    for t in range(len(hs) - 1, -1, -1):
        r, z, n, dpn = r_s[t], z_s[t], n_s[t], dx_n_s[t]
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dh + d_hs[t]
        torch.ops.aten.tanh_backward(dh * (1.0 - z), n, grad_input=dpn)
        torch.ops.aten.sigmoid_backward(dpn * h_n[t], r, grad_input=dh_r_s[t])
        torch.ops.aten.sigmoid_backward(dh * (h_prev - n), z, grad_input=dh_z_s[t])
        torch.mul(dpn, r, out=dh_n_s[t])
        dx_rz_s[t].copy_(dh_rz_s[t])  # r and z have W_x x + b_x and W_h h₋₁ + b_h in one sum
        dh = linear(dhh_s[t], packed_back, weight_back).addcmul_(dh, z)  # dhh @ W_hh + dh ⊙ z
    return dh


EAGER_LOOPS = StepLoops(_lstm_forward_loop, _lstm_backward_loop, _gru_forward_loop, _gru_backward_loop)
