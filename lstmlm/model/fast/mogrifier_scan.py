"""The Mogrifier LSTM's fast path: all T steps at once, with a hand-written backward.

``mogrifier.MogrifierLSTMCell.step`` is the readable step; autograd through a loop over it
forms every weight gradient step by step, T small products of B rows each, and keeps
each step's graph. Here, as in ``scan.py`` for the other LSTM cells, the forward keeps
only what the backward needs (each round's gate σ and the operand it scaled, the
mogrified [x↑, h₋₁↑], the LSTM's gates and cells), the backward walks the steps back
once, and every weight gradient is one product over all T·B rows at the end.
(``scripts.bench.bench_cells``: docs/cells.md has its speed against ``nn.LSTM``.)

A step (one layer; Melis et al. 2020, eqs. 1-2, then the LSTM), rounds i = 1..r:

    odd i:  s = σ(Qⁱ h↑),  x↑ ← 2 s ⊙ x↑          even i:  s = σ(Rⁱ x↑),  h↑ ← 2 s ⊙ h↑
    [i f g o] = [W_x W_h] [x↑; h↑] + b,    C = σ(f) ⊙ C₋₁ + σ(i) ⊙ tanh(g),    h = σ(o) ⊙ tanh(C)

and backward through a round that scaled ``a`` by 2s, s = σ(M v):
d a_before = 2 s ⊙ d a_after,  d(Mv) = d a_after ⊙ 2 a_before ⊙ s(1 − s),  d v += Mᵀ d(Mv).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class RoundTrace(NamedTuple):
    """One round, every step: its input v (T, B, in), M v's low-rank middle (T, B, k) or
    None, σ(M v) (T, B, out) and the operand it scaled (T, B, out)."""

    source: Tensor
    middle: Tensor | None
    gate: Tensor
    operand: Tensor


def mogrifier_scan(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    matrices: list[Tensor],
    factors: int,
) -> tuple[Tensor, Tensor]:
    """T steps from x (T, B, E) and (h0, c0) (B, H): the outputs and the cells, (T, B, H).

    ``matrices``: round by round, each round's ``factors`` matrices applied right to left
    (full rank: [M]; rank k: [M_right (k × in), M_left (out × k)]).
    """
    return _MogrifierScan.apply(factors, x, h0, c0, weight_ih, weight_hh, bias, *matrices)


def _round_product(v: Tensor, factors: list[Tensor]) -> tuple[Tensor, Tensor | None]:
    """M v through ``factors``, and the middle product (rank k) or None."""
    middle = None
    for k, matrix in enumerate(factors):
        v = v @ matrix.t()
        if k == 0 and len(factors) == 2:
            middle = v
    return v, middle


def inference_scan(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    matrices: list[Tensor],
    factors: int,
) -> tuple[Tensor, Tensor]:
    """``mogrifier_scan`` without gradients: it keeps nothing for a backward pass."""
    with torch.no_grad():
        weight = torch.cat([weight_ih, weight_hh], dim=1)
        hs, cells, _, _, _ = _forward(x, h, c, weight, bias, _rounds(matrices, factors), keep=False)
    return hs, cells


def _rounds(matrices: list[Tensor] | tuple[Tensor, ...], factors: int) -> list[list[Tensor]]:
    """The flat list of round matrices cut into rounds of ``factors`` each."""
    return [list(matrices[i : i + factors]) for i in range(0, len(matrices), factors)]


def _forward(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    weight: Tensor,
    bias: Tensor,
    rounds: list[list[Tensor]],
    *,
    keep: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, list[RoundTrace]]:
    """The steps with ``weight`` = [W_x W_h]: (hs, cells, [x↑, h₋₁↑], the LSTM's gates, each
    round's trace ([] unless ``keep``))."""
    steps, batch, n_in = x.shape
    mogrified = x.new_empty(steps, batch, n_in + h.shape[1])  # [x↑, h₋₁↑]
    gates = x.new_empty(steps, batch, weight.shape[0])  # σ(i), σ(f), tanh(g), σ(o)
    hs, cells = (x.new_empty(steps, batch, h.shape[1]) for _ in range(2))
    traces: list[list[tuple[Tensor, Tensor | None, Tensor, Tensor]]] = [[] for _ in rounds]
    for t in range(steps):
        x_up, h_up = x[t], h
        for i, round_factors in enumerate(rounds):
            source, operand = (h_up, x_up) if i % 2 == 0 else (x_up, h_up)
            product, middle = _round_product(source, round_factors)
            gate = torch.sigmoid(product)
            if keep:
                traces[i].append((source, middle, gate, operand))
            if i % 2 == 0:
                x_up = 2 * gate * operand
            else:
                h_up = 2 * gate * operand
        torch.cat([x_up, h_up], dim=1, out=mogrified[t])
        pre = torch.addmm(bias, mogrified[t], weight.t(), out=gates[t])
        i_g, f_g, g_g, o_g = pre.chunk(4, dim=1)
        for part in (i_g, f_g, o_g):
            part.sigmoid_()
        g_g.tanh_()
        c = torch.addcmul(f_g * c, i_g, g_g, out=cells[t])
        h = torch.mul(o_g, torch.tanh(c), out=hs[t])
    return hs, cells, mogrified, gates, [_stack_round(trace) for trace in traces if trace]


class _MogrifierScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, factors: int, *tensors: Tensor) -> tuple[Tensor, Tensor]:
        x, h0, c0, weight_ih, weight_hh, bias, *matrices = tensors
        weight = torch.cat([weight_ih, weight_hh], dim=1)
        rounds = _rounds(matrices, factors)
        hs, cells, mogrified, gates, stacked = _forward(x, h0, c0, weight, bias, rounds, keep=True)
        flat = [t for trace in stacked for t in trace if t is not None]
        ctx.save_for_backward(x, h0, c0, weight, *matrices, mogrified, gates, cells, *flat)
        ctx.factors, ctx.n_in, ctx.n_matrices = factors, x.shape[2], len(matrices)
        ctx.set_materialize_grads(False)
        return hs, cells

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_hs: Tensor | None, d_cells: Tensor | None) -> tuple[Tensor | None, ...]:
        x, h0, c0, weight, *rest = ctx.saved_tensors
        matrices, rest = rest[: ctx.n_matrices], rest[ctx.n_matrices :]
        mogrified, gates, cells, *flat = rest
        rounds = _rounds(matrices, ctx.factors)
        traces = _unflatten_rounds(flat, has_middle=ctx.factors == 2)
        d_pre = torch.empty_like(gates)
        d_products = [torch.empty_like(trace.gate) for trace in traces]
        d_middles = [None if tr.middle is None else torch.empty_like(tr.middle) for tr in traces]
        d_x = torch.empty_like(x)
        dh, dc = torch.zeros_like(h0), torch.zeros_like(c0)
        for t in reversed(range(x.shape[0])):
            if d_hs is not None:
                dh = dh + d_hs[t]
            if d_cells is not None:
                dc = dc + d_cells[t]
            c_prev = cells[t - 1] if t > 0 else c0
            dc = _lstm_step_back(gates[t], cells[t], c_prev, dh, dc, out=d_pre[t])
            d_mog = d_pre[t] @ weight  # (B, E + H)
            d_x_up, d_h_up = d_mog[:, : ctx.n_in], d_mog[:, ctx.n_in :]
            for i in reversed(range(len(rounds))):
                trace = traces[i]
                d_after = d_x_up if i % 2 == 0 else d_h_up
                gate, operand = trace.gate[t], trace.operand[t]
                d_before = 2 * gate * d_after
                d_product = torch.mul(d_after * operand, 2 * gate * (1 - gate), out=d_products[i][t])
                d_source = _round_product_back(d_product, rounds[i], d_middles[i], t)
                if i % 2 == 0:
                    d_x_up, d_h_up = d_before, d_h_up + d_source
                else:
                    d_h_up, d_x_up = d_before, d_x_up + d_source
            d_x[t] = d_x_up
            dh = d_h_up
        d_flat = d_pre.flatten(0, 1)
        d_weight = d_flat.t() @ mogrified.flatten(0, 1)
        d_matrices = _round_weight_grads(traces, rounds, d_products, d_middles)
        n_in = ctx.n_in
        return (None, d_x, dh, dc, d_weight[:, :n_in], d_weight[:, n_in:], d_flat.sum(0), *d_matrices)


def _lstm_step_back(
    gates: Tensor, cell: Tensor, c_prev: Tensor, dh: Tensor, dc: Tensor, out: Tensor
) -> Tensor:
    """One LSTM step back: writes d[i f g o] (pre-activations) into ``out``, returns dC₋₁."""
    i_g, f_g, g_g, o_g = gates.chunk(4, dim=1)
    tanh_c = torch.tanh(cell)
    dc = dc + dh * o_g * (1 - tanh_c * tanh_c)
    d_i, d_f, d_g, d_o = out.chunk(4, dim=1)
    torch.mul(dc * g_g, i_g * (1 - i_g), out=d_i)
    torch.mul(dc * c_prev, f_g * (1 - f_g), out=d_f)
    torch.mul(dc * i_g, 1 - g_g * g_g, out=d_g)
    torch.mul(dh * tanh_c, o_g * (1 - o_g), out=d_o)
    return dc * f_g


def _round_product_back(d_product: Tensor, factors: list[Tensor], d_middles: Tensor | None, t: int) -> Tensor:
    """d v from d(M v); at rank k also keeps d(middle) for the weight gradients."""
    if d_middles is None:
        return d_product @ factors[0]
    d_middle = torch.matmul(d_product, factors[1], out=d_middles[t])
    return d_middle @ factors[0]


def _round_weight_grads(
    traces: list[RoundTrace],
    rounds: list[list[Tensor]],
    d_products: list[Tensor],
    d_middles: list[Tensor | None],
) -> list[Tensor]:
    """Each round matrix's gradient, one product over all T·B rows: dM = Σ d(Mv)ᵀ v."""
    grads: list[Tensor] = []
    for trace, d_product, d_middle in zip(traces, d_products, d_middles, strict=True):
        d_out = d_product.flatten(0, 1)
        if d_middle is None:
            grads.append(d_out.t() @ trace.source.flatten(0, 1))
        else:
            assert trace.middle is not None  # stored with the rank
            grads.append(d_middle.flatten(0, 1).t() @ trace.source.flatten(0, 1))  # right
            grads.append(d_out.t() @ trace.middle.flatten(0, 1))  # left
    assert len(grads) == sum(len(r) for r in rounds)
    return grads


def _stack_round(steps: list[tuple[Tensor, Tensor | None, Tensor, Tensor]]) -> RoundTrace:
    source, middle, gate, operand = zip(*steps, strict=True)
    has_middle = middle[0] is not None
    return RoundTrace(
        torch.stack(source),
        torch.stack([m for m in middle if m is not None]) if has_middle else None,
        torch.stack(gate),
        torch.stack(operand),
    )


def _unflatten_rounds(flat: list[Tensor], *, has_middle: bool) -> list[RoundTrace]:
    """The saved round traces back as ``RoundTrace``s: 4 tensors a round at rank k, else 3."""
    size = 4 if has_middle else 3
    traces = []
    for k in range(0, len(flat), size):
        source, *middle, gate, operand = flat[k : k + size]
        traces.append(RoundTrace(source, middle[0] if middle else None, gate, operand))
    return traces
