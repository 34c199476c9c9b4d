"""The units that carry a subject's number and gender, and what zeroing them does.

Follows the "number unit" analyses of Lakretz et al. (2019, "The emergence of number and
syntax units in LSTM language models"): read the carried state just before the agreeing
word of each minimal pair, and rank units by how well a one-unit threshold classifier,
fitted on half of the items, separates singular from plural (or he from she) subjects
on the other half. Then zero the top-k units and compare with k random ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lstmlm.analysis.traces import CARRIED, EquationModel, trace_text
from lstmlm.data.grammar.lexicon import noun_features
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.scoring.accuracy import accuracy_of
from lstmlm.scoring.pairs import SuitePair, differing_word, score_pairs


@dataclass
class CarriedStates:
    """The state carried just before each pair's agreeing word, and the controller's feature."""

    states: np.ndarray  # (items, layers, units); NaN past the units of a narrower layer
    labels: np.ndarray  # (items,) 0/1
    classes: tuple[str, str]  # what labels 0 and 1 mean, e.g. ("sg", "pl")
    pairs: list[SuitePair]


def controller_feature(pair: SuitePair, agreement: str) -> str | None:
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
    model: LanguageModel,
    tokenizer: Tokenizer,
    pairs: Sequence[SuitePair],
    agreement: str,
    batch_size: int = 64,
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
        width = max(gates[name].size(-1) for gates in runner.traces)
        padded = [
            F.pad(gates[name], (0, width - gates[name].size(-1)), value=math.nan) for gates in runner.traces
        ]
        per_layer = torch.stack(padded, dim=2)  # (T, B, L, H)
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
    the threshold halfway between the two class means of the fitting half. The NaN
    padding of a narrower layer (``--layer-sizes``) is no unit.
    """
    x, y = carried.states, carried.labels
    fit, held = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    mean0, mean1 = x[fit & (y == 0)].mean(0), x[fit & (y == 1)].mean(0)  # (L, H)
    spread = np.sqrt((x[fit & (y == 0)].var(0) + x[fit & (y == 1)].var(0)) / 2) + 1e-8
    effect = (mean1 - mean0) / spread
    threshold, sign = (mean0 + mean1) / 2, np.where(mean1 >= mean0, 1.0, -1.0)
    predicted = (sign * (x[held] - threshold)) > 0  # (items, L, H): True = class 1
    accuracy = (predicted == (y[held] == 1)[:, None, None]).mean(0)
    real = ~np.isnan(x).all(0)  # (L, H)
    units = [
        Unit(layer, unit, float(accuracy[layer, unit]), float(effect[layer, unit]))
        for layer in range(x.shape[1])
        for unit in range(x.shape[2])
        if real[layer, unit]
    ]
    return sorted(units, key=lambda u: (-u.accuracy, -abs(u.effect_size)))


@dataclass
class Ablation:
    k: int
    top_accuracy: float  # agreement accuracy with the top-k units zeroed
    random_accuracy: float  # ... with k random units zeroed (mean over draws)


def agreement_accuracy(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[SuitePair]) -> float:
    """Sentence-rule accuracy of ``model`` (a ``LanguageModel`` or ``EquationModel``)."""
    return accuracy_of({}, score_pairs(model, tokenizer, pairs)).sentence_accuracy  # type: ignore[arg-type]  # EquationModel: same calls


def ablate(
    model: LanguageModel,
    tokenizer: Tokenizer,
    pairs: Sequence[SuitePair],
    ranking: Sequence[Unit],
    ks: Sequence[int],
    *,
    random_draws: int = 3,
    seed: int = 0,
) -> list[Ablation]:
    """Agreement accuracy with the top-k ranked units zeroed, against k random units."""
    rng = random.Random(seed)
    everything = [(layer, unit) for layer, size in enumerate(model.cfg.hidden_sizes) for unit in range(size)]
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


def example_pairs(carried: CarriedStates) -> list[SuitePair]:
    """One pair per class: the first with the most attractors (for trajectory plots)."""
    best: dict[int, SuitePair] = {}
    for pair, label in zip(carried.pairs, carried.labels, strict=True):
        current = best.get(int(label))
        if current is None or pair.fields.get("attractors", 0) > current.fields.get("attractors", 0):
            best[int(label)] = pair
    return [best[label] for label in sorted(best)]


# ---------------------------------------------------------------- the whole analysis


@dataclass
class UnitFinding:
    """What ``inspect --find-units`` finds for one feature (number or gender)."""

    kind: str  # "number" or "gender"
    classes: tuple[str, str]
    pairs: list[SuitePair]  # the pairs testing this feature, in item order
    ranking: list[Unit]  # every unit, best first
    accuracy: float  # sentence-rule accuracy on ``pairs``, nothing zeroed
    ablations: list[Ablation]
    examples: list[SuitePair]  # one per class, for trajectory plots

    def to_dict(self, shown: int) -> dict:
        return {
            "classes": self.classes,
            "items": len(self.pairs),
            "units": [asdict(u) for u in self.ranking[:shown]],
            "accuracy": self.accuracy,
            "ablation": [asdict(a) for a in self.ablations],
        }


def find_units(
    model: LanguageModel,
    tokenizer: Tokenizer,
    pairs: Sequence[SuitePair],
    kinds: Sequence[str],
    ks: Sequence[int],
) -> list[UnitFinding]:
    """Rank the units for each feature in ``kinds`` and ablate the top-k for each k in ``ks``."""
    nunits = sum(model.cfg.hidden_sizes)
    if max(ks) > nunits:
        raise LstmlmError(f"--ablate: k = {max(ks)} exceeds the model's {nunits} units")
    findings = []
    for kind in kinds:
        carried = carried_states(model, tokenizer, pairs, kind)
        ranking = rank_units(carried)
        accuracy = agreement_accuracy(model, tokenizer, carried.pairs)
        ablations = ablate(model, tokenizer, carried.pairs, ranking, ks)
        findings.append(
            UnitFinding(
                kind, carried.classes, carried.pairs, ranking, accuracy, ablations, example_pairs(carried)
            )
        )
    return findings


@dataclass
class Trajectory:
    """One panel of a trajectory plot: some units' carried state over an example sentence."""

    title: str
    tokens: list[str]
    target: int | None  # index of the agreeing word in ``tokens``' sentence
    lines: list[tuple[str, np.ndarray]]  # (legend label, value per token)


def unit_trajectories(
    model: LanguageModel, tokenizer: Tokenizer, finding: UnitFinding, top: int
) -> list[Trajectory]:
    """For each example pair of ``finding``: the top units' carried state over its good sentence."""
    panels = []
    for pair in finding.examples:
        trace = trace_text(model, tokenizer, pair.good)
        lines = []
        for unit in finding.ranking[:top]:
            values = trace.layers[unit.layer]
            state = "cell" if "cell" in values else "hidden"
            lines.append((f"layer {unit.layer} unit {unit.unit} ({state})", values[state][:, unit.unit]))
        title = (
            f"{finding.kind} unit(s), {controller_feature(pair, finding.kind)} subject, "
            f"{pair.fields.get('attractors', '?')} attractor(s)"
        )
        panels.append(Trajectory(title, trace.tokens, differing_word(pair.good, pair.bad), lines))
    return panels
