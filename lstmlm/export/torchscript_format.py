"""TorchScript: one file whose module has ``forward`` (a whole sequence) and ``step`` (one token).

``torch.jit.script`` cannot compile ``LanguageModel`` itself (its optional arguments and
``None``-holding tuples), so the step model is traced (``torch.jit.trace``: plain tensor
algebra, the batch stays dynamic) and a small scripted module loops it over time:

    m = torch.jit.load("model.pt")
    logits, state = m(tokens, state)        # tokens (T, B) int64 -> logits (T, B, V)
    logits, state = m.step(tokens, state)   # tokens (B,) int64   -> logits (B, V)

``state`` is a list of tensors in the sidecar's order; ``m.init_state(B)`` gives the zero one.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import Tensor, nn

from lstmlm.export.step_model import StepModel, plain_linear


class _ListStep(nn.Module):
    """``StepModel`` with the state as one list, the form a scripted caller can pass on."""

    def __init__(self, step: StepModel) -> None:
        super().__init__()
        self.step = step

    def forward(self, tokens: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        logits, *new_state = self.step(tokens, *state)
        return logits, new_state


class ExportedLM(nn.Module):
    """The scripted shell around the traced step: ``forward`` over time, ``step``, ``init_state``."""

    def __init__(self, traced_step: torch.jit.ScriptModule, state_widths: list[int], nlayers: int) -> None:
        super().__init__()
        self.traced_step = traced_step
        self.state_widths = state_widths
        self.nlayers = nlayers

    def forward(self, tokens: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """tokens (T, B) int64 -> logits (T, B, V), the state after the last step."""
        outputs: list[Tensor] = []
        for t in range(tokens.size(0)):
            logits, state = self.traced_step(tokens[t], state)
            outputs.append(logits)
        return torch.stack(outputs), state

    @torch.jit.export
    def step(self, tokens: Tensor, state: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """tokens (B,) int64 -> logits (B, V), the new state."""
        return self.traced_step(tokens, state)

    @torch.jit.export
    def init_state(self, batch_size: int) -> list[Tensor]:
        """The zero state of ``batch_size`` streams."""
        return [torch.zeros(self.nlayers, batch_size, width) for width in self.state_widths]


def torchscript_bytes(step: StepModel) -> bytes:
    """The scripted module of ``step`` as the bytes ``torch.jit.save`` writes."""
    example = step.example_inputs(2)
    with warnings.catch_warnings(), torch.no_grad(), plain_linear():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        traced = torch.jit.trace(_ListStep(step), (example[0], list(example[1:])), strict=False)
    widths = [s.size(-1) for s in example[1:]]
    scripted = torch.jit.script(ExportedLM(traced, widths, example[1].size(0)))
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    return buffer.getvalue()
