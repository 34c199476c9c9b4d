"""The page's data for every cell: what the trace holds matches what ``info`` promises, and the
diagram the page draws has the quantities it needs."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlm.api import Model
from lstmlm.config import replace
from lstmlm.config.fields import CELLS
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.model.lm import LanguageModel
from lstmlm.runs.load import Run
from lstmlm.view import payloads
from lstmlm.view.payloads import Limits
from tests.conftest import tiny_config

DIAGRAMS = {"lstm": "lstm", "lstm-eq": "lstm", "peephole": "lstm", "coupled": "lstm", "depth-gated": "lstm",
            "mogrifier": "lstm", "slstm": "slstm", "gru": "gru", "gru-eq": "gru"}  # fmt: skip


def untrained(cell: str, corpus: Path, nlayers: int) -> Model:
    """A run of ``cell`` in memory, at its initial weights: the shapes are what is tested."""
    tokenizer = train_tokenizer("word", (corpus / "train.txt").read_text().splitlines())
    model_settings = {"ntoken": tokenizer.vocab_size, "cell": cell, "nlayers": nlayers}
    config = replace(tiny_config(corpus), model=model_settings)
    torch.manual_seed(0)
    return Model(Run(corpus, config, tokenizer, LanguageModel(config.model).eval(), 0, corpus / "none"))


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_traces_what_info_promises(cell: str, tiny_corpus: Path) -> None:
    model = untrained(cell, tiny_corpus, nlayers=2)
    info = payloads.info(model, Limits(), {"units": {}, "units_note": ""})
    assert info["diagram"] == DIAGRAMS.get(cell)
    trace = payloads.trace(model, "the cat sat .", Limits())
    tokens = len(trace["tokens"])
    for layer, promised in zip(trace["layers"], info["layers"], strict=True):
        widths = {q["name"]: q["width"] for q in promised["quantities"]}
        assert set(layer["values"]) == set(widths) and "hidden" in widths
        for name, encoded in layer["values"].items():
            values = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
            assert values.size == tokens * widths[name] and np.isfinite(values).all(), name
        assert set(layer["start"]) == {name for name in ("cell", "hidden") if name in widths}
