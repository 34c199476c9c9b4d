"""Look inside a run: per-token gate and cell-state traces through the equation cells.

Traces come from the cells' own ``step`` (``CellStack.trace``); a fused ``nn.LSTM``/
``nn.GRU``/``nn.RNN`` is first copied into the equivalent equation cells
(``recurrent.equation_stack``), so what is shown is what the model computes.
The number and gender units, and their ablation, are ``units.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lstmlm.data.tokenizer import Tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import CellStack, State, equation_stack

#: the state a unit finder reads: the cell where there is one, else the hidden state
CARRIED = ("cell", "hidden")


@dataclass
class Trace:
    """Per token and layer, every recorded quantity: ``layers[l][name]`` is (tokens, units)."""

    tokens: list[str]
    layers: list[dict[str, np.ndarray]]

    @property
    def names(self) -> list[str]:
        return list(self.layers[0])

    def stacked(self, name: str) -> np.ndarray:
        """``name`` as (tokens, layers, units); NaN past the units of a narrower layer."""
        values = [layer[name] for layer in self.layers]
        width = max(v.shape[1] for v in values)
        padded = [np.pad(v.astype(float), ((0, 0), (0, width - v.shape[1])), constant_values=np.nan)
                  if v.shape[1] < width else v for v in values]  # fmt: skip
        return np.stack(padded, axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for ``inspect --json``."""
        layers = [{name: values.tolist() for name, values in layer.items()} for layer in self.layers]
        return {"tokens": self.tokens, "layers": layers}


class EquationModel(nn.Module):
    """``model`` run through its equation cells, optionally with units ablated (zeroed).

    Same call signature as ``LanguageModel`` (tokens, state) -> (logits, state), so the
    agreement scorer can use it directly; ``traces`` keeps the last call's gates.
    """

    def __init__(self, model: LanguageModel, ablate: Mapping[int, Sequence[int]] | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.stack: CellStack = equation_stack(model.rnn)
        sizes, device = model.cfg.hidden_sizes, model.encoder.weight.device
        self.masks: list[Tensor | None] = [None] * model.cfg.nlayers
        for layer, units in (ablate or {}).items():
            mask = torch.ones(sizes[layer], device=device)
            mask[list(units)] = 0.0
            self.masks[layer] = mask
        self.traces: list[dict[str, Tensor]] = []

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        return self.model.init_state(batch_size, device)

    @torch.no_grad()
    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        out, state, self.traces = self.stack.trace(self.model.encoder(tokens), state, self.masks)
        return self.model.logits(out), state


def trace_text(model: LanguageModel, tokenizer: Tokenizer, text: str) -> Trace:
    """Run ``text`` (read as one line, after ``<eos>``) and record every layer's gates."""
    if not text.strip():
        raise LstmlmError("--text is empty: give the sentence to inspect")
    ids = tokenizer.encode(text)
    device = model.encoder.weight.device
    tokens = torch.tensor([tokenizer.eos_id, *ids], device=device).unsqueeze(1)  # (T+1, 1)
    runner = EquationModel(model)
    runner(tokens, model.init_state(1, device))
    layers = [{name: v[1:, 0].cpu().numpy() for name, v in gates.items()} for gates in runner.traces]
    return Trace([tokenizer.token(i) for i in ids], layers)


def save_npz(trace: Trace, path: Path) -> None:
    """The raw trace as numpy arrays: ``tokens`` and ``layer{l}_{name}`` (tokens, units)."""
    arrays = {
        f"layer{i}_{name}": values for i, layer in enumerate(trace.layers) for name, values in layer.items()
    }
    np.savez(path, tokens=np.array(trace.tokens), **arrays)  # type: ignore[arg-type]  # no key is allow_pickle
