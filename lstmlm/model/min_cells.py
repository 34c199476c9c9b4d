"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
Needed?", arXiv:2410.01201): the GRU and the LSTM with every gate a function of the input
alone, so that h_t = a_t ⊙ h_{t−1} + b_t is linear in the past and a whole sequence is one
parallel scan instead of T dependent steps.

The paper's log-space variant is the one written here, in both forms: the candidate
passes through g(u) = u + ½ for u ≥ 0, σ(u) otherwise (always > 0, so its log exists),
and the scan (``log_space_scan``) sums logarithms:

    a*_t = Σ_{j≤t} log a_j                 h_t = e^{a*_t} h₀ + exp(a*_t + logcumsumexp_t(log b − a*))

The loop over ``step`` computes the same h one step at a time (the tests hold the two
equal, values and gradients). h₀ enters linearly, so a zero or negative carried state
needs no logarithm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.cell_base import CellBase, Gates, State


def g(u: Tensor) -> Tensor:
    """The paper's positive candidate activation: u + ½ for u ≥ 0, σ(u) below (continuous at 0)."""
    return torch.where(u >= 0, u + 0.5, torch.sigmoid(u))


def log_g(u: Tensor) -> Tensor:
    """log g(u), computed without forming g: log(u + ½) for u ≥ 0, −softplus(−u) below."""
    return torch.where(u >= 0, torch.log(F.relu(u) + 0.5), -F.softplus(-u))


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t ⊙ h_{t−1} + b_t for t = 1..T from log a, log b (T, B, H) and h₀ (B, H)."""
    a_star = torch.cumsum(log_a, dim=0)
    from_inputs = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0))
    return torch.exp(a_star) * h0 + from_inputs


class _MinCell(CellBase):
    """Shared parts: one input projection ``weight_ih`` (rows ``gate_order``) and the scan."""

    gate_order = ""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        rows = len(self.gate_order) * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        bound = 1.0 / math.sqrt(hidden_size)  # nn.LSTM's init
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.bias_ih, -bound, bound)

    def project_input(self, x: Tensor) -> Tensor:
        """Every gate's and the candidate's pre-activation, W x + b: (..., E) -> (..., len(gate_order)·H)."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def log_coefficients(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        """log a and log b of h_t = a_t ⊙ h_{t−1} + b_t."""
        raise NotImplementedError

    def scan(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        *,
        weight_hh: Tensor | None = None,
    ) -> tuple[Tensor, State, Tensor | None]:
        """All T steps as one parallel scan in log space."""
        self.refuse_weight_drop(weight_hh)
        log_a, log_b = self.log_coefficients(self.project_input(x))
        ys = log_space_scan(log_a, log_b, state[0])
        return ys, (ys[-1],), None


class MinGRUCell(_MinCell):
    """``mingru`` (Feng et al. 2024, §3.1; the log-space form of their appendix):

        z = σ(W_z x + b_z)               h̃ = g(W_h x + b_h)
        h = (1 − z) ⊙ h₋₁ + z ⊙ h̃

    The GRU without the reset gate and with z and h̃ free of h₋₁: 2H(E + 1) parameters.
    Here z is the share of the new candidate (the paper's convention; ``gru-eq``'s z is
    the share of the past).
    """

    gate_order = "zh"

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        (h_prev,) = state
        pre_z, pre_h = x_proj.chunk(2, dim=-1)
        update_gate = torch.sigmoid(pre_z)
        candidate = g(pre_h)
        h = (1.0 - update_gate) * h_prev + update_gate * candidate
        return h, (h,), dict(update_gate=update_gate, candidate=candidate)

    def log_coefficients(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        pre_z, pre_h = x_proj.chunk(2, dim=-1)
        log_keep = -F.softplus(pre_z)  # log(1 − z)
        log_update = -F.softplus(-pre_z)  # log z
        return log_keep, log_update + log_g(pre_h)


class MinLSTMCell(_MinCell):
    """``minlstm`` (Feng et al. 2024, §3.2; the log-space form of their appendix):

        f = σ(W_f x + b_f)               i = σ(W_i x + b_i)
        f′, i′ = f / (f + i), i / (f + i)       h̃ = g(W_h x + b_h)
        h = f′ ⊙ h₋₁ + i′ ⊙ h̃

    No output gate and no cell apart from h: the normalised gates keep h a weighted
    average of candidates, so its scale does not depend on time. 3H(E + 1) parameters.
    """

    gate_order = "fih"

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        (h_prev,) = state
        pre_f, pre_i, pre_h = x_proj.chunk(3, dim=-1)
        forget, write = torch.sigmoid(pre_f), torch.sigmoid(pre_i)
        forget_gate = forget / (forget + write)
        input_gate = write / (forget + write)
        candidate = g(pre_h)
        h = forget_gate * h_prev + input_gate * candidate
        return h, (h,), dict(forget_gate=forget_gate, input_gate=input_gate, candidate=candidate)

    def log_coefficients(self, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        pre_f, pre_i, pre_h = x_proj.chunk(3, dim=-1)
        log_ratio = F.softplus(-pre_f) - F.softplus(-pre_i)  # log i − log f
        log_forget = -F.softplus(log_ratio)  # log f′ = log f − log(f + i)
        log_input = -F.softplus(-log_ratio)  # log i′
        return log_forget, log_input + log_g(pre_h)
