"""Look inside a run: gate and cell-state traces, number/gender units, and their ablation.

Traces come from the cells' own ``step`` (``CellStack.trace``); a fused ``nn.LSTM``/
``nn.GRU``/``nn.RNN`` is first copied into the equivalent equation cells
(``recurrent.equation_stack``), so what is shown is what the model computes.

The unit finder follows the "number unit" analyses of Lakretz et al. (2019, "The
emergence of number and syntax units in LSTM language models"): read the carried state
just before the agreeing word of each minimal pair, and rank units by how well a
one-unit threshold classifier, fitted on half of the items, separates singular from
plural (or he from she) subjects on the other half.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lstmlm.agreement import Pair, differing_word, score_pairs, summarize
from lstmlm.data.agreement import noun_features
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
        """``name`` as (tokens, layers, units)."""
        return np.stack([layer[name] for layer in self.layers], axis=1)


class EquationModel(nn.Module):
    """``model`` run through its equation cells, optionally with units ablated (zeroed).

    Same call signature as ``LanguageModel`` (tokens, state) -> (logits, state), so the
    agreement scorer can use it directly; ``traces`` keeps the last call's gates.
    """

    def __init__(self, model: LanguageModel, ablate: dict[int, Sequence[int]] | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.stack: CellStack = equation_stack(model.rnn)
        nhid, device = model.cfg.nhid, model.encoder.weight.device
        self.masks: list[Tensor | None] = [None] * model.cfg.nlayers
        for layer, units in (ablate or {}).items():
            mask = torch.ones(nhid, device=device)
            mask[list(units)] = 0.0
            self.masks[layer] = mask
        self.traces: list[dict[str, Tensor]] = []

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        return self.model.init_state(batch_size, device)

    @torch.no_grad()
    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        out, state, self.traces = self.stack.trace(self.model.encoder(tokens), state, self.masks)
        return self.model.decoder(out), state


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


# ---------------------------------------------------------------- number and gender units


@dataclass
class CarriedStates:
    """The state carried just before each pair's agreeing word, and the controller's feature."""

    states: np.ndarray  # (items, layers, units)
    labels: np.ndarray  # (items,) 0/1
    classes: tuple[str, str]  # what labels 0 and 1 mean, e.g. ("sg", "pl")
    pairs: list[Pair]


def controller_feature(pair: Pair, agreement: str) -> str | None:
    """The controller's number (``sg``/``pl``) or gender (``m``/``f``), from the grammar's lexicon."""
    target = differing_word(pair.good, pair.bad)
    distance = pair.fields.get("distance")
    if target is None or not isinstance(distance, int):
        return None
    words = pair.good.split()
    controller = target - distance - 1
    features = noun_features(words[controller]) if 0 <= controller < len(words) else None
    if features is None:
        return None
    return features[0] if agreement == "number" else features[1]


def carried_states(
    model: LanguageModel, tokenizer: Tokenizer, pairs: Sequence[Pair], agreement: str, batch_size: int = 64
) -> CarriedStates:
    """For the pairs testing ``agreement``: the state at the word before the agreeing one."""
    classes = ("sg", "pl") if agreement == "number" else ("m", "f")
    items = []
    for pair in pairs:
        feature = controller_feature(pair, agreement) if pair.fields.get("agreement") == agreement else None
        if feature in classes:
            target = differing_word(pair.good, pair.bad)
            prefix = [tokenizer.eos_id, *tokenizer.encode(" ".join(pair.good.split()[:target]))]
            items.append((pair, prefix, classes.index(feature)))
    if len(items) < 4 or len({label for _, _, label in items}) < 2:
        raise LstmlmError(f"the suite has too few usable {agreement} pairs to look for units")
    runner = EquationModel(model)
    device = model.encoder.weight.device
    states = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        length = max(len(prefix) for _, prefix, _ in chunk)
        ids = torch.zeros(length, len(chunk), dtype=torch.long)
        for column, (_, prefix, _) in enumerate(chunk):
            ids[: len(prefix), column] = torch.tensor(prefix)
        runner(ids.to(device), model.init_state(len(chunk), device))
        name = next(n for n in CARRIED if n in runner.traces[0])
        per_layer = torch.stack([gates[name] for gates in runner.traces], dim=2)  # (T, B, L, H)
        last = torch.tensor([len(prefix) - 1 for _, prefix, _ in chunk])
        states.append(per_layer[last, torch.arange(len(chunk))].cpu().numpy())
    return CarriedStates(
        np.concatenate(states),
        np.array([label for _, _, label in items]),
        classes,
        [pair for pair, _, _ in items],
    )


@dataclass
class Unit:
    layer: int
    unit: int
    accuracy: float  # held-out accuracy of the one-unit threshold classifier
    effect_size: float  # Cohen's d between the classes, on the fitting half (sign: class 1 - class 0)


def rank_units(carried: CarriedStates) -> list[Unit]:
    """Every unit ranked by held-out accuracy (ties: larger |effect size|).

    Items alternate between the fitting and the held-out half. The classifier puts
    the threshold halfway between the two class means of the fitting half.
    """
    x, y = carried.states, carried.labels
    fit, held = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    mean0, mean1 = x[fit & (y == 0)].mean(0), x[fit & (y == 1)].mean(0)  # (L, H)
    spread = np.sqrt((x[fit & (y == 0)].var(0) + x[fit & (y == 1)].var(0)) / 2) + 1e-8
    effect = (mean1 - mean0) / spread
    threshold, sign = (mean0 + mean1) / 2, np.where(mean1 >= mean0, 1.0, -1.0)
    predicted = (sign * (x[held] - threshold)) > 0  # (items, L, H): True = class 1
    accuracy = (predicted == (y[held] == 1)[:, None, None]).mean(0)
    units = [
        Unit(layer, unit, float(accuracy[layer, unit]), float(effect[layer, unit]))
        for layer in range(x.shape[1])
        for unit in range(x.shape[2])
    ]
    return sorted(units, key=lambda u: (-u.accuracy, -abs(u.effect_size)))


@dataclass
class Ablation:
    k: int
    top_accuracy: float  # agreement accuracy with the top-k units zeroed
    random_accuracy: float  # ... with k random units zeroed (mean over draws)


def agreement_accuracy(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[Pair]) -> float:
    """Sentence-rule accuracy of ``model`` (a ``LanguageModel`` or ``EquationModel``)."""
    return summarize({}, score_pairs(model, tokenizer, pairs)).sentence_accuracy  # type: ignore[arg-type]


def ablate(
    model: LanguageModel,
    tokenizer: Tokenizer,
    pairs: Sequence[Pair],
    ranking: Sequence[Unit],
    ks: Sequence[int],
    *,
    random_draws: int = 3,
    seed: int = 0,
) -> list[Ablation]:
    """Agreement accuracy with the top-k ranked units zeroed, against k random units."""
    nlayers, nhid = model.cfg.nlayers, model.cfg.nhid
    rng = random.Random(seed)
    everything = [(layer, unit) for layer in range(nlayers) for unit in range(nhid)]
    results = []
    for k in ks:
        top = [(u.layer, u.unit) for u in ranking[:k]]
        top_acc = agreement_accuracy(EquationModel(model, _by_layer(top)), tokenizer, pairs)
        random_acc = [
            agreement_accuracy(EquationModel(model, _by_layer(rng.sample(everything, k))), tokenizer, pairs)
            for _ in range(random_draws)
        ]
        results.append(Ablation(k, top_acc, float(np.mean(random_acc))))
    return results


def _by_layer(units: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for layer, unit in units:
        grouped.setdefault(layer, []).append(unit)
    return grouped


def example_pairs(carried: CarriedStates) -> list[Pair]:
    """One pair per class: the first with the most attractors (for trajectory plots)."""
    best: dict[int, Pair] = {}
    for pair, label in zip(carried.pairs, carried.labels, strict=True):
        current = best.get(int(label))
        if current is None or pair.fields.get("attractors", 0) > current.fields.get("attractors", 0):
            best[int(label)] = pair
    return [best[label] for label in sorted(best)]
