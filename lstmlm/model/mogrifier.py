"""The Mogrifier LSTM (Melis, Kočiský & Blunsom 2020, "Mogrifier LSTM", ICLR; arXiv:1909.01792):
before each LSTM step the input x and the previous output h₋₁ gate each other for r rounds,

    xⁱ  = 2σ(Qⁱ h₋₁ⁱ⁻¹) ⊙ xⁱ⁻²        odd i ∈ [1, r]
    h₋₁ⁱ = 2σ(Rⁱ xⁱ⁻¹) ⊙ h₋₁ⁱ⁻²       even i ∈ [1, r]

with x⁻¹ = x and h₋₁⁰ = h₋₁; the LSTM (``cells.LSTMCell``) then runs on the last of each,
x↑ and h₋₁↑. The factor 2 keeps a randomly initialised round near the identity (2σ(0) = 1);
r = 0 is the LSTM. With a rank k, each Qⁱ (E×H) and Rⁱ (H×E) is a product of two thin
matrices, Qⁱ = Qⁱ_left Qⁱ_right (E×k, k×H), as in the paper. The carried state is the
LSTM's (h, C): the mogrified h₋₁↑ only feeds this step's gates.

The paper's language models: PTB 50.1 / WikiText-2 55.1 test perplexity (r = 6 and 5
rounds, ranks 40-90), 44.9 / 38.6 with dynamic evaluation.

``step`` is the readable form; ``scan`` runs the same equations over a whole sequence:
in training ``fast/mogrifier_scan.py`` (a hand-written backward, every weight gradient one
product), without gradients ``inference_scan``. Unlike the other LSTM cells, the input
projection cannot be one product for the whole sequence: x↑ depends on h₋₁.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlm.model.cell_base import Gates, State
from lstmlm.model.cells import LSTMCell, lstm_equations
from lstmlm.model.fast.mogrifier_scan import inference_scan, mogrifier_scan


class RoundMatrix(nn.Module):
    """Qⁱ or Rⁱ: ``weight`` (out × in), or at rank k ``left`` (out × k) @ ``right`` (k × in)."""

    def __init__(self, out_features: int, in_features: int, rank: int | None) -> None:
        super().__init__()
        shapes = (
            [(out_features, in_features)] if rank is None else [(out_features, rank), (rank, in_features)]
        )
        names = ["weight"] if rank is None else ["left", "right"]
        for name, shape in zip(names, shapes, strict=True):
            bound = 1.0 / math.sqrt(shape[1])  # nn.Linear's U(−1/√fan_in, 1/√fan_in)
            self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def factors(self) -> list[Tensor]:
        """The matrices applied right to left: [W] or [right, left]."""
        names = ["weight"] if hasattr(self, "weight") else ["right", "left"]
        return [cast(Tensor, getattr(self, name)) for name in names]  # functional_call: plain tensors

    def forward(self, v: Tensor) -> Tensor:
        for matrix in self.factors():
            v = F.linear(v, matrix)
        return v


class MogrifierLSTMCell(LSTMCell):
    """``mogrifier``: the LSTM's parameters and state, plus r round matrices ``rounds_[i]``.

    ``rounds_[i]`` is round i + 1's matrix: Q (H -> E) for odd rounds, R (E -> H) for even.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        forget_bias: float = 1.0,
        *,
        rounds: int,
        rank: int | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, forget_bias)
        self.rounds, self.rank = rounds, rank
        self.rounds_ = nn.ModuleList(
            RoundMatrix(input_size, hidden_size, rank)
            if i % 2 == 0
            else RoundMatrix(hidden_size, input_size, rank)
            for i in range(rounds)
        )

    def project_input(self, x: Tensor) -> Tensor:
        """With rounds, x itself: W_x x↑ needs x↑, which depends on h₋₁ (r = 0: ``W_x x + b``)."""
        return x if self.rounds else super().project_input(x)

    def mogrify(self, x: Tensor, h_prev: Tensor) -> tuple[Tensor, Tensor]:
        """(x↑, h₋₁↑) after r rounds, x first."""
        for i, matrix in enumerate(self.rounds_):
            if i % 2 == 0:  # round i + 1 is odd
                x = 2 * torch.sigmoid(matrix(h_prev)) * x
            else:
                h_prev = 2 * torch.sigmoid(matrix(x)) * h_prev
        return x, h_prev

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        if not self.rounds:
            return super().step(x_proj, state)
        h_prev, c_prev = state
        x_up, h_up = self.mogrify(x_proj, h_prev)
        pre = F.linear(x_up, self.weight_ih, self.input_bias()) + h_up @ self.weight_hh.T
        h, new_state, gates = lstm_equations(pre, c_prev)
        gates.update(mogrified_input=x_up, mogrified_hidden=h_up)
        return h, new_state, gates

    def scan(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        *,
        weight_hh: Tensor | None = None,
    ) -> tuple[Tensor, State, Tensor | None]:
        if not self.rounds:
            return super().scan(x, state, lower_cells, weight_hh=weight_hh)
        h0, c0 = state
        w_hh = self.weight_hh if weight_hh is None else weight_hh  # weight drop
        rounds = cast("list[RoundMatrix]", list(self.rounds_))  # ModuleList is not generic
        matrices = [m for round_matrix in rounds for m in round_matrix.factors()]
        factors = 1 if self.rank is None else 2
        scan = mogrifier_scan if torch.is_grad_enabled() else inference_scan
        ys, cells = scan(x, h0, c0, self.weight_ih, w_hh, self.input_bias(), matrices, factors)
        return ys, (ys[-1], cells[-1]), cells
