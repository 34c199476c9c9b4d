"""What every equation cell of ``CellStack`` offers, whatever its parameters.

* ``project_input(x)``: the part of a step that does not depend on the past, applied to a
  whole (T, B, E) sequence at once.
* ``step(x_proj, state)``: one time step written as the paper's equations; it also returns
  the gate activations. ``forward(x, state)`` is one step from the raw input.
* ``scan_steps(x, state)``: a loop over ``step`` that stacks the gates (T, B, ·) for
  inspection, and the reference every fast ``scan`` is tested against.
* ``scan(x, state)``: all T steps, the path ``CellStack`` trains with: here the loop
  itself; the cells override it with a fused, parallel or hand-differentiated form.

A cell's state is a tuple of (B, ·) tensors; ``init_state`` gives the zero state.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]
Gates = dict[str, Tensor]


class CellBase(nn.Module):
    """One layer of a ``CellStack``: ``hidden_size`` outputs per step."""

    hidden_size: int
    state_size: int = 1
    uses_lower_cell: bool = False  # depth-gated layers above the first

    def project_input(self, x: Tensor) -> Tensor:
        """The input's part of every step: (..., E) -> (..., P)."""
        raise NotImplementedError

    def step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None = None
    ) -> tuple[Tensor, State, Gates]:
        """One time step from the projected input: returns ``(h, state, gates)``."""
        raise NotImplementedError

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return tuple(zeros.clone() for _ in range(self.state_size))

    def forward(self, x: Tensor, state: State, lower_cell: Tensor | None = None) -> tuple[Tensor, State]:
        """One time step: x (B, E) -> h (B, H), new state."""
        h, state, _ = self.step(self.project_input(x), state, lower_cell)
        return h, state

    def scan(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        *,
        weight_hh: Tensor | None = None,
    ) -> tuple[Tensor, State, Tensor | None]:
        """All steps: x (T, B, E) -> (y (T, B, H), last state, cells (T, B, H) or None).

        ``weight_hh``: used instead of the parameter ``self.weight_hh`` (weight drop,
        ``regularize.WeightDrop``); the gradient flows back through it.
        """
        self.refuse_weight_drop(weight_hh)
        y, state, gates = self.scan_steps(x, state, lower_cells)
        return y, state, gates.get("cell")

    def refuse_weight_drop(self, weight_hh: Tensor | None) -> None:
        """Cells without a dropped-weight path (config refuses ``--weight-drop`` for them)."""
        if weight_hh is not None:
            raise NotImplementedError(f"{type(self).__name__} has no weight-drop path")

    def scan_steps(
        self,
        x: Tensor,
        state: State,
        lower_cells: Tensor | None = None,
        unit_mask: Tensor | None = None,
    ) -> tuple[Tensor, State, Gates]:
        """``scan`` as a loop over ``step``, keeping every gate as (T, B, ·).

        ``unit_mask`` (H,) ablates units at every step (``ablated_step``).
        """
        x_proj = self.project_input(x)  # (T, B, P): one GEMM for all steps
        ys: list[Tensor] = []
        per_step: list[Gates] = []
        for t in range(x.shape[0]):
            lower = None if lower_cells is None else lower_cells[t]
            if unit_mask is None:
                h, state, gates = self.step(x_proj[t], state, lower)
            else:
                h, state, gates = self.ablated_step(x_proj[t], state, lower, unit_mask)
            ys.append(h)
            per_step.append(gates)
        gates = {name: torch.stack([g[name] for g in per_step]) for name in per_step[0]}
        return torch.stack(ys), state, gates

    def ablated_step(
        self, x_proj: Tensor, state: State, lower_cell: Tensor | None, unit_mask: Tensor
    ) -> tuple[Tensor, State, Gates]:
        """``step`` with the units where ``unit_mask`` is 0 zeroed in every state tensor after
        it (their h and C stay 0); the recorded ``cell`` follows."""
        _, state, gates = self.step(x_proj, state, lower_cell)
        state = tuple(s * unit_mask for s in state)
        if "cell" in gates:
            gates["cell"] = state[1]
        return state[0], state, gates
