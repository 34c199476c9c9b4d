"""xLSTM's sLSTM and mLSTM (Beck, Pöppel, Spanring, Auer, Prudnikova, Kopp, Klambauer,
Brandstetter & Hochreiter, NeurIPS 2024, arXiv:2405.04517; equation numbers of its §2).

**Exponential gating.** The input gate is i = exp(ĩ), the forget gate f = σ(f̃) (the paper
allows exp too), so a new input can outweigh everything stored. A normalizer state n sums
the input gates the way the cell sums gated inputs, and a stabilizer state m keeps the
exponentials finite (eqs. 15-17):

    m = max(log f + m₋₁, ĩ)      i′ = exp(ĩ − m)      f′ = exp(log f + m₋₁ − m)

The states are stored scaled by e^{−m} (c′ = c e^{−m}, n′ = n e^{−m}) and updated with i′, f′,
both ≤ 1; every output is a ratio of c and n, in which e^{−m} cancels. m itself receives no
gradient (``detach``): the outputs do not depend on it.

**Blocks.** Each layer is a pre-norm residual block, y = s + out(cell(LayerNorm(s))), with
s = x (a bias-free projection of x where the widths differ, i.e. the first layer when
--emsize ≠ --nhid) and ``out`` a layer norm within each head (the paper's GroupNorm). The
mLSTM block also works at twice the width (``MLSTM_PROJECTION``: q, k, v, o map up, a linear
map takes h back down) and feeds q and k through the paper's causal convolution. Left out,
to keep the parameter count near an LSTM's: the sLSTM block's gated feed-forward after the
cell, and the mLSTM block's learnable skip, SiLU output branch (its output gate is eq. 27's
σ gate) and block-diagonal q/k/v maps (dense here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.cell_base import CellBase, Gates, State

MLSTM_PROJECTION = 2  # the mLSTM block's inner width, in multiples of its hidden size (the paper's)
MLSTM_CHUNK = 64  # steps per chunk of the parallel form: memory grows with its square
CONV_KERNEL = 4  # the mLSTM block's causal convolution (the paper's)


class HeadNorm(nn.Module):
    """Layer norm within each head, with a learned scale (the paper's group norm over heads)."""

    def __init__(self, size: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: Tensor) -> Tensor:
        per_head = x.unflatten(-1, (self.heads, -1))
        return F.layer_norm(per_head, per_head.shape[-1:]).flatten(-2) * self.weight


def forget_bias_per_head(heads: int) -> Tensor:
    """Forget-gate biases from 3 to 6 across the heads (σ: 0.95 to 0.998), as the authors' mLSTM."""
    return torch.linspace(3.0, 6.0, heads)


def stabilized_gates(pre_i: Tensor, log_forget: Tensor, m_prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Eqs. 15-17: the stabilizer m and the stabilized gates i′ = exp(ĩ − m), f′ = exp(log f + m₋₁ − m)."""
    stabilizer = torch.maximum(log_forget + m_prev, pre_i).detach()
    input_gate = torch.exp(pre_i - stabilizer)
    forget_gate = torch.exp(log_forget + m_prev - stabilizer)
    return stabilizer, input_gate, forget_gate


class SLSTMCell(nn.Module):
    """sLSTM, scalar memory with memory mixing (eqs. 8-14, stabilized by 15-17):

        z = tanh(W_z x + R_z h₋₁ + b_z)          o = σ(W_o x + R_o h₋₁ + b_o)
        ĩ = W_i x + R_i h₋₁ + b_i                f̃ = W_f x + R_f h₋₁ + b_f
        c = f ⊙ c₋₁ + i ⊙ z                      n = f ⊙ n₋₁ + i
        h = o ⊙ c / n                            (i = exp(ĩ), f = σ(f̃))

    Memory mixing: each R is block-diagonal, one (H/heads)² block per head, so units mix
    with the units of their own head. Rows of ``weight_ih``: z, i, f, o.
    """

    def __init__(self, input_size: int, hidden_size: int, heads: int) -> None:
        super().__init__()
        self.hidden_size, self.heads = hidden_size, heads
        self.head_size = hidden_size // heads
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size).uniform_(-bound, bound))
        bound = 1.0 / math.sqrt(self.head_size)
        self.recurrent_weight = nn.Parameter(  # R: (heads, gate, d_in, d_out)
            torch.empty(heads, 4, self.head_size, self.head_size).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.zeros(4, heads, self.head_size))
        with torch.no_grad():
            self.bias[2] = forget_bias_per_head(heads)[:, None]

    def project_input(self, x: Tensor) -> Tensor:
        """W x + b for the four gates: (..., E) -> (..., 4H)."""
        return F.linear(x, self.weight_ih, self.bias.flatten())

    def recurrent_input(self, h_prev: Tensor) -> Tensor:
        """R h₋₁ for the four gates, head by head: (B, H) -> (B, 4H), rows as ``weight_ih``."""
        per_head = h_prev.unflatten(-1, (self.heads, self.head_size))
        return torch.einsum("bnd,nkde->bkne", per_head, self.recurrent_weight).flatten(1)

    def step(self, x_proj: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        h_prev, c_prev, n_prev, m_prev = state
        pre_z, pre_i, pre_f, pre_o = (x_proj + self.recurrent_input(h_prev)).chunk(4, dim=-1)
        candidate = torch.tanh(pre_z)
        stabilizer, input_gate, forget_gate = stabilized_gates(pre_i, F.logsigmoid(pre_f), m_prev)
        cell = forget_gate * c_prev + input_gate * candidate
        normalizer = forget_gate * n_prev + input_gate
        output_gate = torch.sigmoid(pre_o)
        # n′ ≥ i′ > 0 unless exp(ĩ − m) underflows, and then c′ = 0 too: h = 0, not 0/0
        h = output_gate * cell / normalizer.clamp_min(torch.finfo(normalizer.dtype).tiny)
        gates = dict(
            input_gate=input_gate,
            forget_gate=forget_gate,
            stabilizer=stabilizer,
            candidate=candidate,
            cell=cell,
            normalizer=normalizer,
            output_gate=output_gate,
        )
        return h, (h, cell, normalizer, stabilizer), gates


class MLSTMCell(nn.Module):
    """mLSTM, a matrix memory per head (eqs. 19-27, stabilized by 15-17):

        q = W_q x̂ + b_q       k = (W_k x̂ + b_k) / √d       v = W_v x + b_v
        ĩ = w_iᵀx + b_i       f̃ = w_fᵀx + b_f               o = σ(W_o x + b_o)
        C = f C₋₁ + i v kᵀ    n = f n₋₁ + i k
        h = o ⊙ C q / max(|nᵀq|, 1)                          (i = exp(ĩ), f = σ(f̃))

    x̂ = SiLU(causal depthwise convolution of the last ``CONV_KERNEL`` inputs), as in the
    paper's block: without it a query cannot tell the previous word from the one before.
    i and f are one scalar per head; d is the head size. Stabilized, the denominator is
    max(|n′ᵀq|, e^{−m}). Nothing depends on h₋₁, so a whole window can be computed at once
    (``parallel``) as well as step by step (``step``).
    """

    def __init__(self, size: int, inner_size: int, heads: int) -> None:
        super().__init__()
        self.size, self.inner_size, self.heads = size, inner_size, heads
        self.head_size = inner_size // heads
        bound = 1.0 / math.sqrt(CONV_KERNEL)
        self.conv_weight = nn.Parameter(torch.empty(CONV_KERNEL, size).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.zeros(size))
        self.query_key = nn.Linear(size, 2 * inner_size)  # rows q, k
        self.value_gates = nn.Linear(size, 2 * inner_size + 2 * heads)  # rows v, o, ĩ, f̃
        with torch.no_grad():  # ĩ and f̃ start from their biases alone
            self.value_gates.weight[2 * inner_size :].zero_()
            self.value_gates.bias[2 * inner_size : 2 * inner_size + heads].normal_(0.0, 0.1)
            self.value_gates.bias[2 * inner_size + heads :] = forget_bias_per_head(heads)

    def project_input(self, x: Tensor) -> Tensor:
        """[x for the convolution, v, õ, ĩ, f̃]: (..., size) -> (..., size + 2·inner + 2·heads)."""
        return torch.cat([x, self.value_gates(x)], dim=-1)

    def state_widths(self) -> tuple[int, ...]:
        """Flat widths of (C′, n′, m, the convolution's last inputs): heads·d², heads·d, heads, (K−1)·size."""
        return self.heads * self.head_size**2, self.inner_size, self.heads, (CONV_KERNEL - 1) * self.size

    def convolve(self, x: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        """x̂ for x (T, B, size) after the carried inputs ``window`` (B, (K−1)·size); the new window."""
        past = window.unflatten(-1, (CONV_KERNEL - 1, self.size)).movedim(1, 0)
        padded = torch.cat([past, x])  # (K − 1 + T, B, size)
        mixed = (padded.unfold(0, CONV_KERNEL, 1) * self.conv_weight.T).sum(-1) + self.conv_bias
        return F.silu(mixed), padded[-(CONV_KERNEL - 1) :].movedim(0, 1).flatten(1)

    def split(self, x_proj: Tensor, convolved: Tensor) -> tuple[Tensor, ...]:
        """q, k, v, õ as (..., heads, d) and ĩ, log f as (..., heads)."""
        inner, heads = self.inner_size, self.heads
        q, k = (part.unflatten(-1, (heads, -1)) for part in self.query_key(convolved).chunk(2, dim=-1))
        rest = x_proj[..., self.size :]
        v, pre_o = (part.unflatten(-1, (heads, -1)) for part in rest[..., : 2 * inner].chunk(2, dim=-1))
        pre_i, pre_f = rest[..., 2 * inner :].chunk(2, dim=-1)
        return q, k / math.sqrt(self.head_size), v, pre_o, pre_i, F.logsigmoid(pre_f)

    def unflatten_state(self, state: State) -> tuple[Tensor, Tensor, Tensor]:
        memory, normalizer, stabilizer, _ = state
        d = self.head_size
        return memory.unflatten(-1, (self.heads, d, d)), normalizer.unflatten(-1, (self.heads, d)), stabilizer

    def step(self, x_proj: Tensor, state: State) -> tuple[Tensor, State, Gates]:
        convolved, window = self.convolve(x_proj[None, :, : self.size], state[3])
        q, k, v, pre_o, pre_i, log_forget = self.split(x_proj, convolved[0])  # (B, heads, ·)
        memory_prev, normalizer_prev, m_prev = self.unflatten_state(state)
        stabilizer, input_gate, forget_gate = stabilized_gates(pre_i, log_forget, m_prev)
        memory = forget_gate[..., None, None] * memory_prev + input_gate[..., None, None] * (
            v[..., :, None] * k[..., None, :]
        )
        normalizer = forget_gate[..., None] * normalizer_prev + input_gate[..., None] * k
        numerator = (memory @ q[..., None]).squeeze(-1)
        denominator = torch.maximum((normalizer * q).sum(-1).abs(), torch.exp(-stabilizer))
        output_gate = torch.sigmoid(pre_o)
        h = (output_gate * numerator / denominator[..., None]).flatten(-2)
        gates = dict(
            input_gate=input_gate,
            forget_gate=forget_gate,
            stabilizer=stabilizer,
            normalizer=normalizer.flatten(-2),
            memory_norm=memory.flatten(-2).norm(dim=-1),
            output_gate=output_gate.flatten(-2),
        )
        return h, (memory.flatten(1), normalizer.flatten(1), stabilizer, window), gates

    def parallel(self, x_proj: Tensor, state: State) -> tuple[Tensor, State]:
        """All T steps (x_proj (T, B, ·)), ``MLSTM_CHUNK`` steps at a time: h (T, B, inner), last state."""
        convolved, window = self.convolve(x_proj[..., : self.size], state[3])
        q, k, v, pre_o, pre_i, log_forget = (part.movedim(0, 2) for part in self.split(x_proj, convolved))
        memory, normalizer, stabilizer = self.unflatten_state(state)
        outputs = []
        for start in range(0, x_proj.shape[0], MLSTM_CHUNK):
            window_steps = slice(start, start + MLSTM_CHUNK)
            h, memory, normalizer, stabilizer = mlstm_chunk(
                q[:, :, window_steps], k[:, :, window_steps], v[:, :, window_steps], pre_i[..., window_steps],
                log_forget[..., window_steps], memory, normalizer, stabilizer,
            )  # fmt: skip
            outputs.append(h)
        h = torch.sigmoid(pre_o) * torch.cat(outputs, dim=2)  # (B, heads, T, d)
        state = (memory.flatten(1), normalizer.flatten(1), stabilizer, window)
        return h.movedim(2, 0).flatten(-2), state


def mlstm_chunk(
    q: Tensor, k: Tensor, v: Tensor, pre_i: Tensor, log_forget: Tensor,
    memory: Tensor, normalizer: Tensor, stabilizer: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """The mLSTM's parallel form over L steps from a carried state (the paper's appendix,
    plus the state's share): q, k, v (B, heads, L, d); ĩ, log f (B, heads, L); C′ (B, heads,
    d, d), n′ (B, heads, d), m (B, heads). Returns C q / max(|nᵀq|, 1) before the output
    gate (B, heads, L, d), and the state after the L steps.

    With F_t = Σ_{j≤t} log f_j, step s's write reaches step t ≥ s with weight
    exp(F_t − F_s + ĩ_s) and the carried state with exp(F_t + m₀); the stabilizer m_t is the
    largest of these exponents, which is the recurrent form's m_t unrolled.
    """
    cumulative = torch.cumsum(log_forget, dim=-1)  # F_t
    length = q.shape[2]
    causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
    log_weights = (cumulative[..., :, None] - cumulative[..., None, :] + pre_i[..., None, :]).masked_fill(
        ~causal, -math.inf
    )  # (B, heads, t, s)
    log_carried = cumulative + stabilizer[..., None]  # (B, heads, L)
    m = torch.maximum(log_carried, log_weights.amax(dim=-1)).detach()
    scores = (q @ k.transpose(-1, -2)) * torch.exp(log_weights - m[..., None])
    carried = torch.exp(log_carried - m)
    numerator = scores @ v + carried[..., None] * (q @ memory.transpose(-1, -2))
    denominator = scores.sum(-1) + carried * (q @ normalizer[..., None]).squeeze(-1)
    h = numerator / torch.maximum(denominator.abs(), torch.exp(-m))[..., None]
    last = m[..., -1]
    write = torch.exp(cumulative[..., -1:] - cumulative + pre_i - last[..., None])  # (B, heads, L)
    keep = torch.exp(log_carried[..., -1] - last)
    memory = keep[..., None, None] * memory + (v * write[..., None]).transpose(-1, -2) @ k
    normalizer = keep[..., None] * normalizer + (k * write[..., None]).sum(dim=2)
    return h, memory, normalizer, last


class _ResidualBlock(CellBase):
    """y = s + out(cell(LayerNorm(s))) with s = skip(x): every cell works at the block's width H.
    The step's input is [the cell's projected input, s]."""

    cell: SLSTMCell | MLSTMCell

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.skip = (
            nn.Identity() if input_size == hidden_size else nn.Linear(input_size, hidden_size, bias=False)
        )
        self.norm = nn.LayerNorm(hidden_size)

    def project_input(self, x: Tensor) -> Tensor:
        stream = self.skip(x)
        return torch.cat([self.cell.project_input(self.norm(stream)), stream], dim=-1)

    def split(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        """The cell's projected input, and the skip path."""
        return x_proj[..., : -self.hidden_size], x_proj[..., -self.hidden_size :]

    def out(self, h: Tensor) -> Tensor:
        raise NotImplementedError

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        cell_input, skip = self.split(x_proj)
        h, state, gates = self.cell.step(cell_input, state)
        return skip + self.out(h), state, gates


class SLSTMBlock(_ResidualBlock):
    """``slstm``: an ``SLSTMCell`` in a pre-norm residual block, y = skip(x) + HeadNorm(h).

    State (h, c′, n′, m), each (B, H). Ablating a unit zeroes its h and c′.
    """

    state_size = 4

    def __init__(self, input_size: int, hidden_size: int, heads: int) -> None:
        super().__init__(input_size, hidden_size)
        self.cell = SLSTMCell(hidden_size, hidden_size, heads)
        self.out_norm = HeadNorm(hidden_size, heads)

    def out(self, h: Tensor) -> Tensor:
        return self.out_norm(h)

    def ablated_step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None, unit_mask: Tensor
    ) -> tuple[Tensor, State, Gates]:
        cell_input, skip = self.split(x_proj)
        _, (h, cell, normalizer, stabilizer), gates = self.cell.step(cell_input, state)
        h, cell = h * unit_mask, cell * unit_mask
        gates["cell"] = cell
        return skip + self.out(h), (h, cell, normalizer, stabilizer), gates


class MLSTMBlock(_ResidualBlock):
    """``mlstm``: an ``MLSTMCell`` of ``MLSTM_PROJECTION``·H inner units in a pre-norm residual
    block, y = skip(x) + W_down HeadNorm(h). Trains with the parallel form.

    State (C′, n′, m, the convolution's last 3 inputs), flat: (B, heads·d²), (B, heads·d),
    (B, heads), (B, 3H), with d = 2H/heads.
    Ablating a unit zeroes the block's output there (the memory is not per unit).
    """

    state_size = 4
    cell: MLSTMCell

    def __init__(self, input_size: int, hidden_size: int, heads: int) -> None:
        super().__init__(input_size, hidden_size)
        inner = MLSTM_PROJECTION * hidden_size
        self.cell = MLSTMCell(hidden_size, inner, heads)
        self.out_norm = HeadNorm(inner, heads)
        self.down = nn.Linear(inner, hidden_size)

    def out(self, h: Tensor) -> Tensor:
        return self.down(self.out_norm(h))

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        return tuple(torch.zeros(batch_size, width, device=device) for width in self.cell.state_widths())

    def ablated_step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None, unit_mask: Tensor
    ) -> tuple[Tensor, State, Gates]:
        y, state, gates = self.step(x_proj, state)
        return y * unit_mask, state, gates

    def scan(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        *,
        weight_hh: Tensor | None = None,
    ) -> tuple[Tensor, State, Tensor | None]:
        self.refuse_weight_drop(weight_hh)
        cell_input, skip = self.split(self.project_input(x))
        h, state = self.cell.parallel(cell_input, state)
        return skip + self.out(h), state, None
