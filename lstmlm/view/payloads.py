"""What ``lstmlm view`` shows, as JSON-ready objects: the run, a text's trace, a pair's scores.

The page's contract is docs/view.md ("The endpoints"): every function here returns one of
its objects. Matrices travel as base64 of little-endian float32 (``ENCODING``): a
1,000-token trace of a 128-unit LSTM is six 1000 x 128 matrices, 4 MB as base64 against
three times that as JSON numbers, and the page decodes it in milliseconds.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lstmlm.analysis.traces import CARRIED, EquationModel
from lstmlm.analysis.units import carried_states, rank_units
from lstmlm.api import Model
from lstmlm.data.grammar.demo_prompts import demo_prompts
from lstmlm.errors import BadText, LstmlmError
from lstmlm.generate import prime
from lstmlm.scoring.suites import load_suite
from lstmlm.scoring.surprisal import SentenceScore

ENCODING = "float32-le-base64"
UNITS_SHOWN = 8  # per feature: the page marks these rows and lists them
LSTM_DRAWN = {"forget_gate", "input_gate", "candidate", "cell", "output_gate"}


@dataclass(frozen=True)
class Limits:
    """What one request may ask: a pasted book is refused (413), not traced."""

    max_chars: int = 20_000
    max_tokens: int = 2_000
    max_generate: int = 300
    top_k: int = 10
    search_seconds: float = 30.0
    max_concurrent: int = 4  # requests in flight at once; the next gets 429

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_chars": self.max_chars,
            "max_tokens": self.max_tokens,
            "max_generate": self.max_generate,
            "top_k": self.top_k,
            "search_seconds": self.search_seconds,
        }


class TooLarge(LstmlmError):
    """A request over ``Limits``: the server answers 413."""


def encode_matrix(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def diagram_kind(cell: str, quantities: Sequence[str]) -> str | None:
    """Which of the essay's pictures the page can draw with this cell's numbers."""
    names = set(quantities)
    if names >= LSTM_DRAWN:
        return "slstm" if cell == "slstm" else "lstm"
    if {"reset_gate", "update_gate", "candidate"} <= names:
        return "gru"
    return None


@torch.no_grad()
def layer_quantities(model: Model) -> list[list[tuple[str, int]]]:
    """Per layer, each traced quantity's name and width (one token through the cells)."""
    runner = EquationModel(model.module)
    device = model.device
    tokens = torch.tensor([[model.tokenizer.eos_id]], device=device)
    runner(tokens, model.module.init_state(1, device))
    return [[(name, int(v.shape[-1])) for name, v in gates.items()] for gates in runner.traces]


def info(model: Model, limits: Limits, units: dict[str, Any]) -> dict[str, Any]:
    """The run as the page needs it (``GET /api/info``)."""
    cfg = model.run.config
    layers = layer_quantities(model)
    return {
        "run": model.run.dir.resolve().name,
        "cell": cfg.model.cell,
        "diagram": diagram_kind(cfg.model.cell, [name for name, _ in layers[0]]),
        "layers": [
            {
                "index": index,
                "units": cfg.model.hidden_sizes[index],
                "quantities": [{"name": name, "width": width} for name, width in quantities],
            }
            for index, quantities in enumerate(layers)
        ],
        "tokenizer": model.tokenizer.kind,
        "vocab": model.tokenizer.vocab_size,
        "limits": limits.to_dict(),
        "splits": ["valid", "test", "train"],
        "demo_pairs": demo_pairs(),
        **units,
    }


def demo_pairs() -> list[dict[str, str]]:
    """The demo's agreement prompts as minimal pairs: the prompt with its correct and wrong form."""
    return [
        {
            "good": f"{item['prompt']} {item['correct']}",
            "bad": f"{item['prompt']} {item['wrong']}",
            "what": item.get("what", ""),
        }
        for item in demo_prompts()
    ]


def agreement_units(model: Model) -> dict[str, Any]:
    """The number and gender units ``lstmlm inspect --find-units`` ranks first (without its
    ablations), or why there are none: ``{"units": {...}, "units_note": ""}``."""
    pairs, _ = load_suite("default")
    carried_names = [next(n for n in CARRIED if n in dict(q)) for q in layer_quantities(model)]
    found: dict[str, list[dict[str, Any]]] = {}
    notes = []
    for kind in ("number", "gender"):
        try:
            carried = carried_states(model.module, model.tokenizer, pairs, kind)
        except LstmlmError as error:  # a vocabulary without the suite's words
            notes.append(str(error))
            continue
        found[kind] = [
            {
                "layer": u.layer,
                "unit": u.unit,
                "accuracy": round(u.accuracy, 4),
                "effect_size": round(u.effect_size, 3),
                "classes": list(carried.classes),
                "quantity": carried_names[u.layer],
            }
            for u in rank_units(carried)[:UNITS_SHOWN]
        ]
    return {"units": found, "units_note": "; ".join(notes)}


# ---------------------------------------------------------------- a text's trace


def text_ids(model: Model, text: object, limits: Limits, field: str = "text") -> list[int]:
    """``text`` as the run's token ids, refused when empty or over ``limits``."""
    if not isinstance(text, str) or not text.strip():
        raise BadText(f"{field} must be a non-empty string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") is valid JSON, not valid text
        raise BadText(f"{field} is not valid Unicode (it holds a lone surrogate)") from None
    if len(text) > limits.max_chars:
        raise TooLarge(f"{field} has {len(text):,} characters; the limit is {limits.max_chars:,}")
    ids = model.tokenizer.encode(" ".join(text.splitlines()))  # one line, as inspect reads it
    if not ids:
        raise BadText(f"{field} has no tokens")
    if len(ids) > limits.max_tokens:
        raise TooLarge(f"{field} is {len(ids):,} tokens; the limit is {limits.max_tokens:,}")
    return ids


@torch.no_grad()
def trace(model: Model, text: object, limits: Limits, top: int | None = None) -> dict[str, Any]:
    """Every layer's gates and state per token, each token's surprisal and the top next tokens
    (``POST /api/trace``). Read as one line after ``<eos>``, as ``lstmlm inspect`` reads it."""
    started = time.perf_counter()
    ids = text_ids(model, text, limits)
    k = limits.top_k if top is None else top
    if not 1 <= k <= limits.top_k:
        raise BadText(f"top must be in 1..{limits.top_k} (got {k})")
    device = model.device
    tokens = torch.tensor([model.tokenizer.eos_id, *ids], device=device).unsqueeze(1)  # (T+1, 1)
    runner = EquationModel(model.module)
    logits, _ = runner(tokens, model.module.init_state(1, device))
    logprobs = torch.log_softmax(logits[:, 0].float(), dim=-1)  # (T+1, V): row t predicts token t
    surprisal = -logprobs[:-1].gather(1, torch.tensor(ids, device=device)[:, None])[:, 0] / math.log(2)
    top_p, top_i = torch.topk(logprobs.exp(), min(k, logprobs.shape[1]), dim=-1)
    predictions = [_ranked(model, i, p) for i, p in zip(top_i.tolist(), top_p.tolist(), strict=True)]
    return {
        "tokens": [model.tokenizer.token(i) for i in ids],
        "surprisal": [round(s, 4) for s in surprisal.tolist()],
        "predictions": predictions[1:],
        "start_predictions": predictions[0],
        "encoding": ENCODING,
        "layers": [_layer(gates) for gates in runner.traces],
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _layer(gates: dict[str, torch.Tensor]) -> dict[str, Any]:
    """One layer of a batch-1 trace whose first row is ``<eos>``: the text's rows of every
    quantity, and the carried state before the text (the row of ``<eos>``)."""
    values = {name: v[:, 0].float().cpu().numpy() for name, v in gates.items()}
    return {
        "values": {name: encode_matrix(v[1:]) for name, v in values.items()},
        "start": {name: encode_matrix(values[name][0]) for name in CARRIED if name in values},
    }


def _ranked(model: Model, ids: list[int], probs: list[float]) -> list[list[Any]]:
    return [[model.tokenizer.token(i), round(p, 5)] for i, p in zip(ids, probs, strict=True)]


# ---------------------------------------------------------------- pairs and next tokens


def score_pair(model: Model, good: object, bad: object, limits: Limits, what: str = "") -> dict[str, Any]:
    """Both sentences scored as whole lines, per token (``POST /api/score``)."""
    text_ids(model, good, limits, "good")
    text_ids(model, bad, limits, "bad")
    scored = model.score([str(good), str(bad)])
    sides = {name: _side(score) for name, score in zip(("good", "bad"), scored, strict=True)}
    difference = sides["good"]["total"] - sides["bad"]["total"]
    return {**sides, "difference": difference, "prefers_good": difference > 0, "what": what}


def _side(score: SentenceScore) -> dict[str, Any]:
    return {
        "text": score.text,
        "tokens": [t.token for t in score.tokens],
        "logprobs": [t.logprob for t in score.tokens],
        "total": score.logprob,
    }


def scored_demo_pairs(model: Model, limits: Limits) -> list[dict[str, Any]]:
    """The demo's pairs, scored: the static page shows them without a server."""
    return [score_pair(model, p["good"], p["bad"], limits, p["what"]) for p in demo_pairs()]


@torch.no_grad()
def next_tokens(model: Model, text: object, k: object, limits: Limits) -> dict[str, Any]:
    """The ``k`` likeliest tokens after ``text`` (``POST /api/next``); empty text: a line's start."""
    if not isinstance(text, str):
        raise BadText("text must be a string")
    ids = text_ids(model, text, limits) if text.strip() else []
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limits.top_k:
        raise BadText(f"k must be a whole number in 1..{limits.top_k}")
    logits, _ = prime(model.module, [model.tokenizer.eos_id, *ids])
    top = torch.topk(torch.softmax(logits.float(), dim=-1), min(k, logits.numel()))
    return {
        "tokens": [model.tokenizer.token(i) for i in ids],
        "predictions": _ranked(model, top.indices.tolist(), top.values.tolist()),
    }
