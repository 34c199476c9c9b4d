"""The equation cells' fast path: all T steps of a sequence at once, with a hand-written backward.

``cells.RecurrentCell.scan_steps`` loops over the readable ``step`` and lets autograd
record it; ``lstm_scan`` and ``gru_scan`` compute the same function (the tests hold them
equal, values and gradients) faster: ``scripts.bench.bench_cells --compare torchscript
autograd`` has a whole language model through autograd at 0.76-0.83x of this path's
speed in training and 0.74-0.81x in inference at 2x650, 0.71-0.79x training at 1x128
(median of repeated runs, 2-core CPU, torch 2.13). Where the time goes:

* the input projection ``W_x x + b`` of all T steps is one GEMM, whose (T, B, P) output
  buffer then holds the gates, overwritten in place step by step;
* each step adds one product with W_hh (``packed_linear``: oneDNN, the weight packed
  once per sequence) and does its elementwise work in place, with tanh(u) = 2σ(2u) − 1
  so that one σ call covers all gates (``scan_loops``);
* forward keeps only the activations (``LSTMTrace``, ``GRUTrace``); backward walks the
  steps back once, one product with W_hhᵀ per step, and forms every weight gradient as
  one GEMM over all T*B rows.

``torch.autograd.Function.apply`` takes tensors positionally (autograd tracks only its
top-level arguments) and ``backward`` answers in the same order; the NamedTuples name
both sides: ``apply(options, *inputs, *weights)`` in, ``(None, *d_inputs, *d_weights)``
out, with ``_split`` cutting the flat tuples back into named groups.
"""

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

from lstmlm.model.fast.packed_linear import pack
from lstmlm.model.fast.scan_loops import (
    EAGER_LOOPS,
    GRUTrace,
    GRUWeights,
    LSTMTrace,
    LSTMWeights,
    StepLoops,
    gate_blocks,
)

__all__ = ["EAGER_LOOPS", "GRUWeights", "LSTMWeights", "StepLoops", "gru_scan", "lstm_scan"]


@functools.cache
def torchscript_loops() -> StepLoops:
    """``EAGER_LOOPS`` compiled by TorchScript, at first use (never at import): what the fast
    path runs, unless this torch cannot script them (then ``EAGER_LOOPS``).

    ``torch.jit.script`` is deprecated (torch 2.10+) but still pays where the tensors are
    small and the interpreter's cost per op shows. Eager loops, as a share of TorchScript's
    tokens/s for a whole language model (``scripts.bench.bench_cells --compare torchscript
    eager``; medians of repeated interleaved runs, 2-core CPU, torch 2.13):

        2x650, vocab 10k (the bench's default)    train 0.98-1.00x   inference 0.98-1.00x
        2x200, vocab 10k (the CLI's default)      train 0.96-0.97x   inference 0.98-0.99x
        1x128, vocab 1k, B=32 (configs/demo.toml) train 0.92-0.94x   inference 0.95-0.96x
        2x32, vocab 100, 1 thread                 train 0.73-0.79x   inference 0.82-0.86x

    ``torch.compile`` is no substitute: with the packed oneDNN weight inductor fails, with
    a plain matmul the loops graph-break on their ``out=`` views and recompile per gate
    layout, reaching 0.37-0.58x of TorchScript at 2x256 after minutes of compiling.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return StepLoops(*(torch.jit.script(loop) for loop in EAGER_LOOPS))
    except Exception:  # TorchScript is an optimisation here, never a requirement
        return EAGER_LOOPS


_chosen: StepLoops | None = None  # set by ``using_step_loops``; None: ``torchscript_loops()``


def _loops() -> StepLoops:
    return torchscript_loops() if _chosen is None else _chosen


@contextlib.contextmanager
def using_step_loops(loops: StepLoops) -> Iterator[None]:
    """Run the fast path with other step loops, e.g. ``EAGER_LOOPS`` (tests, benchmarks)."""
    global _chosen
    saved, _chosen = _chosen, loops
    try:
        yield
    finally:
        _chosen = saved


def _split(flat: Sequence[Any], *groups: type[NamedTuple]) -> list[Any]:
    """``flat`` cut into the NamedTuple types ``groups``, in order: the inverse of ``(*a, *b)``."""
    parts, start = [], 0
    for group in groups:
        end = start + len(group._fields)
        parts.append(group(*flat[start:end]))
        start = end
    assert start == len(flat), (start, len(flat))
    return parts


_Group = TypeVar("_Group", bound=tuple[Any, ...])


def _gradients(group: Callable[..., _Group], **grads: Tensor | None) -> _Group:
    """``group(**grads)``: backward's gradients named like the inputs, None where none is wanted.

    The NamedTuples declare the forward's types (tensors) and cannot be generic over their
    element type before Python 3.11: the gradients go in here, by field, unchecked.
    """
    return group(**grads)


def _weight_grad(d: Tensor, inputs: Tensor) -> Tensor:
    """Σ over rows of dᵀ ⊗ inputs: (N, P), (N, E) -> (P, E), contiguous like the weight.

    ``dᵀ @ inputs``, not ``(inputsᵀ @ d)ᵀ``: autograd copies a transposed gradient into the
    weight's layout, and with that copy the latter took 20.4 ms against 14.1 at 2x650
    (700 rows, 2 threads, AVX2 EPYC).
    """
    return d.t() @ inputs


# --- LSTM-type cells: lstm-eq, peephole, coupled, depth-gated ---------------------------


class LSTMInputs(NamedTuple):
    """The non-parameter inputs of ``lstm_scan``, with a gradient each."""

    x: Tensor  # (T, B, E)
    h0: Tensor  # (B, H)
    c0: Tensor  # (B, H)
    lower: Tensor | None  # (T, B, H): the cells of the layer below, for a depth gate


class _LSTMOptions(NamedTuple):
    coupled: bool  # rows "fgo", i = 1 − f
    keep_packed: bool  # no grad: keep the packed W_hh for the next call (``packed_linear.pack``)


def lstm_scan(
    x: Tensor, h0: Tensor, c0: Tensor, weights: LSTMWeights, lower: Tensor | None = None, *, coupled: bool
) -> tuple[Tensor, Tensor]:
    """T steps of an LSTM-type cell from x (T, B, E): the hidden states and the cells, (T, B, H).

    ``lower`` (T, B, H) are the lower layer's cells for a depth gate (rows "ifgod").
    """
    options = _LSTMOptions(coupled, keep_packed=not torch.is_grad_enabled())
    return _LSTMScan.apply(options, *LSTMInputs(x, h0, c0, lower), *weights)


class _LSTMScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, options: _LSTMOptions, *tensors: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs, weights = _split(tensors, LSTMInputs, LSTMWeights)
        x, h0, c0, lower = inputs
        steps, batch, _ = x.shape
        x_proj = torch.addmm(weights.bias, x.reshape(steps * batch, -1), weights.weight_ih.t())
        hs, cells, tanh_cells = (x.new_empty(steps, batch, h0.shape[1]) for _ in range(3))
        trace = LSTMTrace(x_proj.view(steps, batch, -1), hs, cells, tanh_cells)
        packed_hh = pack(weights.weight_hh, batch, steps, keep=options.keep_packed)
        _loops().lstm_forward(trace, h0, c0, lower, weights, packed_hh, options.coupled)
        ctx.save_for_backward(*inputs, *weights, *trace)
        ctx.set_materialize_grads(False)
        ctx.coupled = options.coupled
        return trace.hs, trace.cells

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor | None, d_cells: Tensor | None) -> tuple[Tensor | None, ...]:
        inputs, weights, trace = _split(ctx.saved_tensors, LSTMInputs, LSTMWeights, LSTMTrace)
        needed = _split(ctx.needs_input_grad[1:], LSTMInputs, LSTMWeights)
        d_inputs, d_weights = _lstm_backward(d_hs, d_cells, inputs, weights, trace, ctx.coupled, *needed)
        return None, *d_inputs, *d_weights


def _lstm_backward(
    d_hs: Tensor | None,  # dL/dh from outside (T, B, H), None if unused
    d_cells: Tensor | None,  # dL/dC from outside (the last state, a depth gate above)
    inputs: LSTMInputs,
    weights: LSTMWeights,
    trace: LSTMTrace,
    coupled: bool,
    need_inputs: Any,  # LSTMInputs of bools: which gradients autograd wants
    need_weights: Any,  # LSTMWeights of bools
) -> tuple[LSTMInputs, LSTMWeights]:
    """The step loop back through time, then every weight gradient as one product."""
    x, h0, c0, lower = inputs
    steps, batch, hidden = trace.hs.shape
    d_pre = torch.empty_like(trace.gates)  # dL/d pre-activations, (T, B, P)
    d_lower = torch.empty_like(lower) if lower is not None else None
    w_back = weights.weight_hh.t()  # dh₋₁ = d_pre @ W_hh
    packed_back = pack(w_back, batch, steps)
    dh0, dc0 = _loops().lstm_backward(
        d_hs, d_cells, trace, c0, lower, weights, packed_back, w_back, coupled, d_pre, d_lower
    )
    ngh = w_back.shape[1]  # columns with a W_h h₋₁ term
    d_flat = d_pre.view(steps * batch, -1)  # (T*B, P)
    h_prev = torch.cat([h0.unsqueeze(0), trace.hs[:-1]]).view(steps * batch, hidden)
    c_prev = torch.cat([c0.unsqueeze(0), trace.cells[:-1]])  # (T, B, H)
    d_i, d_f, _, d_o = gate_blocks(d_pre, hidden, coupled)

    def diagonal(want: bool, d_gate: Tensor, source: Tensor) -> Tensor | None:
        return (d_gate * source).sum((0, 1)) if want else None  # Σ_t,b d_pre ⊙ source

    d_w_cd = d_w_ld = None
    if lower is not None:  # the depth gate's block comes after the ngh recurrent columns
        d_d = d_pre.narrow(-1, ngh, hidden)
        d_w_cd = diagonal(need_weights.w_cd, d_d, c_prev)
        d_w_ld = diagonal(need_weights.w_ld, d_d, lower)

    d_inputs = _gradients(
        LSTMInputs,
        x=(d_flat @ weights.weight_ih).view_as(x) if need_inputs.x else None,
        h0=dh0,
        c0=dc0,
        lower=d_lower,
    )
    d_weights = _gradients(
        LSTMWeights,
        weight_ih=_weight_grad(d_flat, x.reshape(steps * batch, -1)) if need_weights.weight_ih else None,
        bias=d_flat.sum(0) if need_weights.bias else None,
        weight_hh=_weight_grad(d_flat[:, :ngh], h_prev) if need_weights.weight_hh else None,
        w_ci=diagonal(need_weights.w_ci, d_i, c_prev),
        w_cf=diagonal(need_weights.w_cf, d_f, c_prev),
        w_co=diagonal(need_weights.w_co, d_o, trace.cells),
        w_cd=d_w_cd,
        w_ld=d_w_ld,
    )
    return d_inputs, d_weights


# --- GRU ---------------------------------------------------------------------------------


class GRUInputs(NamedTuple):
    """The non-parameter inputs of ``gru_scan``, with a gradient each."""

    x: Tensor  # (T, B, E)
    h0: Tensor  # (B, H)


def gru_scan(x: Tensor, h0: Tensor, weights: GRUWeights) -> Tensor:
    """T steps of ``cells.GRUCell`` from x (T, B, E): the hidden states (T, B, H)."""
    keep_packed = not torch.is_grad_enabled()  # see ``_LSTMOptions``
    return _GRUScan.apply(keep_packed, *GRUInputs(x, h0), *weights)


class _GRUScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, keep_packed: bool, *tensors: Tensor) -> Tensor:
        inputs, weights = _split(tensors, GRUInputs, GRUWeights)
        x, h0 = inputs
        steps, batch, _ = x.shape
        x_proj = torch.addmm(weights.bias_ih, x.reshape(steps * batch, -1), weights.weight_ih.t())
        h_n = x.new_empty(steps, batch, h0.shape[1])
        trace = GRUTrace(x_proj.view(steps, batch, -1), h_n, torch.empty_like(h_n))
        packed_hh = pack(weights.weight_hh, batch, steps, keep=keep_packed)
        _loops().gru_forward(trace, h0, packed_hh, weights.weight_hh, weights.bias_hh)
        ctx.save_for_backward(*inputs, *weights, *trace)
        return trace.hs

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor | None, ...]:
        inputs, weights, trace = _split(ctx.saved_tensors, GRUInputs, GRUWeights, GRUTrace)
        need_inputs, need_weights = _split(ctx.needs_input_grad[1:], GRUInputs, GRUWeights)
        x, h0 = inputs
        steps, batch, hidden = trace.hs.shape
        d_x_proj = torch.empty_like(trace.gates)  # dL/d(W_x x + b_x)
        d_hh = torch.empty_like(trace.gates)  # dL/d(W_h h₋₁ + b_h)
        w_back = weights.weight_hh.t()
        packed_back = pack(w_back, batch, steps)
        dh0 = _loops().gru_backward(d_hs, trace, h0, packed_back, w_back, d_x_proj, d_hh)
        dx_flat = d_x_proj.view(steps * batch, -1)
        dhh_flat = d_hh.view(steps * batch, -1)
        h_prev = torch.cat([h0.unsqueeze(0), trace.hs[:-1]]).view(steps * batch, hidden)
        d_inputs = _gradients(
            GRUInputs, x=(dx_flat @ weights.weight_ih).view_as(x) if need_inputs.x else None, h0=dh0
        )
        d_weights = _gradients(
            GRUWeights,
            weight_ih=_weight_grad(dx_flat, x.reshape(steps * batch, -1)) if need_weights.weight_ih else None,
            bias_ih=dx_flat.sum(0) if need_weights.bias_ih else None,
            weight_hh=_weight_grad(dhh_flat, h_prev) if need_weights.weight_hh else None,
            bias_hh=dhh_flat.sum(0) if need_weights.bias_hh else None,
        )
        return None, *d_inputs, *d_weights
