"""Looking inside: recorded gates are the cells' own, the unit finder finds a planted unit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmlm.analysis.traces import EquationModel, trace_text
from lstmlm.analysis.units import ablate, carried_states, rank_units
from lstmlm.config import ModelConfig
from lstmlm.data.grammar.lexicon import noun_features
from lstmlm.data.grammar.suites import generate_pairs, write_jsonl
from lstmlm.data.tokenizer import train_tokenizer
from lstmlm.model.lm import LanguageModel
from lstmlm.scoring.pairs import SuitePair
from tests.conftest import invoke

PNG = b"\x89PNG\r\n\x1a\n"


def model_for(cell: str, *, nlayers: int = 2, ntoken: int = 30, nhid: int = 12) -> LanguageModel:
    torch.manual_seed(0)
    cfg = ModelConfig(cell=cell, ntoken=ntoken, emsize=nhid, nhid=nhid, nlayers=nlayers, dropout=0.0)
    return LanguageModel(cfg).eval()


def traces_of(model: LanguageModel, tokens: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    runner = EquationModel(model)
    runner(tokens, model.init_state(tokens.shape[1]))
    return runner.traces


def test_recorded_lstm_gates_are_the_equations() -> None:
    model = model_for("lstm-eq", nlayers=1)
    tokens = torch.randint(0, 30, (9, 2))
    gates = traces_of(model, tokens)[0]
    cell = model.rnn.cells[0]
    x = model.encoder(tokens)
    h, c = torch.zeros(2, 12), torch.zeros(2, 12)
    for t in range(9):
        pre = x[t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
        i, f, g, o = pre.chunk(4, dim=-1)
        expected = {
            "input_gate": torch.sigmoid(i),
            "forget_gate": torch.sigmoid(f),
            "candidate": torch.tanh(g),
            "output_gate": torch.sigmoid(o),
        }
        c = expected["forget_gate"] * c + expected["input_gate"] * expected["candidate"]
        h = expected["output_gate"] * torch.tanh(c)
        expected.update(cell=c, hidden=h)
        for name, value in expected.items():
            torch.testing.assert_close(gates[name][t], value, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize(("fused", "equation"), [("lstm", "lstm-eq"), ("gru", "gru-eq")])
def test_fused_cells_are_traced_as_their_equation_cells(fused: str, equation: str) -> None:
    fast, slow = model_for(fused), model_for(equation)
    with torch.no_grad():  # copy nn.LSTM/nn.GRU weights into the equation cells
        for name, p in fast.named_parameters():
            if name.startswith("rnn.layers."):  # rnn.layers.{layer}.weight_ih_l0
                layer, base = name.removeprefix("rnn.layers.").split(".")
                getattr(slow.rnn.cells[int(layer)], base.removesuffix("_l0")).copy_(p)
            else:
                dict(slow.named_parameters())[name].copy_(p)
    tokens = torch.randint(0, 30, (7, 3))
    logits, _ = fast(tokens, fast.init_state(3))
    recorded = EquationModel(fast)
    recorded_logits, _ = recorded(tokens, fast.init_state(3))
    torch.testing.assert_close(recorded_logits, logits, atol=1e-5, rtol=0)
    for ours, reference in zip(recorded.traces, traces_of(slow, tokens), strict=True):
        assert ours.keys() == reference.keys()
        for name in ours:
            torch.testing.assert_close(ours[name], reference[name], atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-tanh", "peephole", "coupled", "depth-gated"])
def test_trace_shapes_and_gate_ranges(cell: str) -> None:
    text = "the keys to the cabinet are here ."
    tokenizer = train_tokenizer("word", [text])
    model = model_for(cell, ntoken=tokenizer.vocab_size)
    trace = trace_text(model, tokenizer, text)
    assert trace.tokens == text.split(" ")
    for name in trace.names:
        assert trace.stacked(name).shape == (8, 2, 12)  # tokens x layers x units
        if name.endswith("_gate"):
            assert trace.stacked(name).min() >= 0.0 and trace.stacked(name).max() <= 1.0
    assert "hidden" in trace.names and ("cell" in trace.names) == (cell not in ("gru", "rnn-tanh"))


def planted_number_model(tokenizer, unit: int) -> LanguageModel:
    """One lstm-eq layer whose unit ``unit`` stores the subject's number: +1 singular,
    -1 plural, written at nouns and held by an open forget gate; the decoder reads it to
    prefer singular or plural verb forms. Every other unit is random noise."""
    from lstmlm.data.grammar.lexicon import verb_number

    model = model_for("lstm-eq", nlayers=1, ntoken=tokenizer.vocab_size, nhid=8)
    cell, hidden = model.rnn.cells[0], 8
    with torch.no_grad():
        model.encoder.weight.uniform_(-0.3, 0.3)
        model.encoder.weight[:, :2] = 0.0
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
        for token_id in range(tokenizer.vocab_size):
            word = tokenizer.token(token_id)
            features = noun_features(word)
            if features is not None:
                model.encoder.weight[token_id, 0] = 1.0 if features[0] == "sg" else -1.0
                model.encoder.weight[token_id, 1] = 1.0
            number = verb_number(word)
            if number is not None:
                model.decoder.weight[token_id, unit] = 8.0 if number == "sg" else -8.0
        i, f, g = (slice(k * hidden + unit, k * hidden + unit + 1) for k in range(3))
        for rows in (i, f, g):
            cell.weight_ih[rows] = 0.0
            cell.weight_hh[rows] = 0.0
            cell.bias_hh[rows] = 0.0
        cell.weight_ih[i, 1], cell.bias_ih[i] = 20.0, -10.0  # write only at nouns
        cell.bias_ih[f] = 10.0  # and hold
        cell.weight_ih[g, 0], cell.bias_ih[g] = 5.0, 0.0  # the noun's number
        o = slice(3 * hidden + unit, 3 * hidden + unit + 1)
        cell.weight_ih[o], cell.weight_hh[o], cell.bias_ih[o], cell.bias_hh[o] = 0.0, 0.0, 10.0, 0.0
    return model


def test_unit_finder_finds_a_planted_number_unit_and_ablation_hurts() -> None:
    pairs = [
        SuitePair(p.pop("sentence_good"), p.pop("sentence_bad"), p, i)
        for i, p in enumerate(generate_pairs(8, seed=5))
        if p["attractors"] == 0 and p["construction"] in ("simple", "adverb", "pp", "subj_rel", "obj_rel")
    ]
    tokenizer = train_tokenizer("word", [p.good for p in pairs] + [p.bad for p in pairs])
    model = planted_number_model(tokenizer, unit=5)
    carried = carried_states(model, tokenizer, pairs, "number")
    ranking = rank_units(carried)
    assert (ranking[0].layer, ranking[0].unit) == (0, 5)
    assert ranking[0].accuracy > 0.95 and ranking[0].effect_size < 0  # plural (class 1) is negative
    (result,) = ablate(model, tokenizer, carried.pairs, ranking, [1], random_draws=2)
    assert result.top_accuracy < 0.75 < result.random_accuracy


# ---------------------------------------------------------------- the command


def test_inspect_text_plot_npz_json(trained_run: Path, tmp_path: Path) -> None:
    png, npz = tmp_path / "trace.png", tmp_path / "trace.npz"
    text = "the cat sees the dog ."
    result = invoke("inspect", str(trained_run), "--text", text, "--plot", str(png), "--npz", str(npz))
    assert result.exit_code == 0, result.stderr
    assert "forget" in result.stdout and png.read_bytes().startswith(PNG)
    arrays = np.load(npz)
    assert list(arrays["tokens"]) == text.split() and arrays["layer0_cell"].shape == (6, 16)

    result = invoke("inspect", str(trained_run), "--text", text, "--json")
    payload = json.loads(result.stdout)
    assert len(payload["layers"][0]["input_gate"]) == 6


def test_inspect_find_units(trained_run: Path, tmp_path: Path) -> None:
    suite, png = tmp_path / "suite.jsonl", tmp_path / "units.png"
    write_jsonl(generate_pairs(2, seed=0), suite)
    args = ["inspect", str(trained_run), "--find-units", "--suite", str(suite), "--ablate", "1,2"]
    result = invoke(*args, "--plot", str(png), "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"number", "gender"}
    assert [a["k"] for a in payload["number"]["ablation"]] == [1, 2]
    assert png.read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--text"),
        (["--text", "   "], "--text"),
        (["--text", "the cat", "--layer", "3"], "--layer"),
        (["--text", "the cat", "--plot", "x.jpg"], ".png"),
        (["--find-units", "--ablate", "0"], "--ablate"),
        (["--find-units", "--agreement", "tense"], "--agreement"),
        (["--find-units", "--suite", "missing.jsonl"], "not found"),
        (["--text", "the cat", "--npz", "/nonexistent-folder/trace.npz"], "--npz"),
    ],
)
def test_inspect_bad_input(trained_run: Path, args: list[str], message: str) -> None:
    result = invoke("inspect", str(trained_run), *args)
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_inspect_missing_run(tmp_path: Path) -> None:
    result = invoke("inspect", str(tmp_path / "nope"), "--text", "a b")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
