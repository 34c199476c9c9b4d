"""The Mogrifier LSTM (model/mogrifier.py, model/fast/mogrifier_scan.py): the paper's rounds, r = 0
as the LSTM, the factorised matrices, the fast path's gradients, and every command on a run.

The fast path against the readable steps, its float64 gradcheck at full rank and the carried
state across BPTT windows run for every custom cell in tests/model/fast/test_scan.py and
tests/model/test_state.py; here the parts only this cell has.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lstmlm.config import ModelConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.fast.mogrifier_scan import mogrifier_scan
from lstmlm.model.mogrifier import MogrifierLSTMCell
from lstmlm.model.recurrent import CellStack, build_recurrent
from tests.conftest import invoke, train_tiny_run

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")

T, B, E, H = 6, 3, 5, 7


def mogrifier_stack(rounds: int, rank: int | None = None, nlayers: int = 2) -> CellStack:
    cfg = ModelConfig(
        cell="mogrifier", ntoken=11, emsize=E, nhid=H, nlayers=nlayers, dropout=0.0, tied=False,
        mogrify_rounds=rounds, mogrify_rank=rank,
    )  # fmt: skip
    stack = build_recurrent(cfg)
    assert isinstance(stack, CellStack)
    return stack


def test_zero_rounds_is_the_lstm_exactly() -> None:
    mogrifier = mogrifier_stack(rounds=0)
    lstm = build_recurrent(ModelConfig(cell="lstm-eq", ntoken=11, emsize=E, nhid=H, dropout=0.0, tied=False))
    assert set(mogrifier.state_dict()) == set(lstm.state_dict())  # no round matrices
    lstm.load_state_dict(mogrifier.state_dict())
    x = torch.randn(T, B, E)
    state = tuple(torch.randn(2, B, H) for _ in range(2))
    for run in (lambda s: s(x, state), lambda s: s.trace(x, state)[:2]):
        y_mog, s_mog = run(mogrifier)
        y_lstm, s_lstm = run(lstm)
        assert torch.equal(y_mog, y_lstm)
        assert all(torch.equal(a, b) for a, b in zip(s_mog, s_lstm, strict=True))


def test_rounds_alternate_starting_with_the_input() -> None:
    """x¹ = 2σ(Q¹h)⊙x, h² = 2σ(R²x¹)⊙h, x³ = 2σ(Q³h²)⊙x¹, written out against ``mogrify``."""
    cell = MogrifierLSTMCell(E, H, rounds=3)
    q1, r2, q3 = (m.weight for m in cell.rounds_)
    assert q1.shape == (E, H) and r2.shape == (H, E) and q3.shape == (E, H)
    x, h = torch.randn(B, E), torch.randn(B, H)
    x1 = 2 * torch.sigmoid(h @ q1.T) * x
    h2 = 2 * torch.sigmoid(x1 @ r2.T) * h
    x3 = 2 * torch.sigmoid(h2 @ q3.T) * x1
    x_up, h_up = cell.mogrify(x, h)
    torch.testing.assert_close(x_up, x3, rtol=0, atol=0)
    torch.testing.assert_close(h_up, h2, rtol=0, atol=0)
    one_round = MogrifierLSTMCell(E, H, rounds=1)
    assert torch.equal(one_round.mogrify(x, h)[1], h)  # one round changes x alone


def test_rank_k_factorises_each_round() -> None:
    k = 2
    cell = MogrifierLSTMCell(E, H, rounds=4, rank=k)
    shapes = [tuple(p.shape for p in m.parameters()) for m in cell.rounds_]
    assert shapes == [((E, k), (k, H)), ((H, k), (k, E))] * 2  # Q = Q_left Q_right, R likewise
    lstm_params = 4 * H * (E + H + 2)
    assert sum(p.numel() for p in cell.parameters()) == lstm_params + 4 * k * (E + H)
    q = cell.rounds_[0]
    v = torch.randn(B, H)
    torch.testing.assert_close(q(v), v @ (q.left @ q.right).T)


@pytest.mark.parametrize("rank", [None, 2])
def test_fast_path_gradcheck(rank: int | None) -> None:
    """float64 gradients of every input and weight of the hand-written backward, at both ranks."""
    cell = MogrifierLSTMCell(E, H, rounds=3, rank=rank).double()
    matrices = [m for r in cell.rounds_ for m in r.factors()]
    x = torch.randn(4, 2, E, dtype=torch.double, requires_grad=True)
    h0, c0 = (torch.randn(2, H, dtype=torch.double, requires_grad=True) for _ in range(2))
    bias = cell.input_bias().detach().requires_grad_()
    factors = 1 if rank is None else 2

    def run(*tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, h0, c0, w_ih, w_hh, bias, *mats = tensors
        return mogrifier_scan(x, h0, c0, w_ih, w_hh, bias, list(mats), factors)

    inputs = (x, h0, c0, cell.weight_ih, cell.weight_hh, bias, *matrices)
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6)


def test_options_only_for_the_mogrifier() -> None:
    with pytest.raises(LstmlmError, match="--mogrify-rounds applies to --cell mogrifier"):
        ModelConfig(cell="lstm", mogrify_rounds=3)
    with pytest.raises(LstmlmError, match="--mogrify-rank applies to --cell mogrifier"):
        ModelConfig(cell="lstm-eq", mogrify_rank=8)
    with pytest.raises(LstmlmError, match="mogrify-rank"):
        ModelConfig(cell="mogrifier", mogrify_rank=0)
    with pytest.raises(LstmlmError, match="mogrify-rounds"):
        ModelConfig(cell="mogrifier", mogrify_rounds=-1)


def test_every_command_on_a_mogrifier_run(tiny_corpus: Path, tmp_path: Path) -> None:
    out = train_tiny_run(
        tmp_path / "run", tiny_corpus, "--cell", "mogrifier", "--nlayers", "2",
        "--mogrify-rounds", "3", "--mogrify-rank", "4", "--weight-drop", "0.2",
    )  # fmt: skip
    static = json.loads(invoke("eval", str(out), "--json").stdout)
    vocabulary = json.loads((out / "config.json").read_text())["model"]["ntoken"]
    assert 1.0 < static["perplexity"] < vocabulary
    adapted = invoke("eval", str(out), "--json", "--dynamic", "--cache")
    assert adapted.exit_code == 0, adapted.stderr
    generated = invoke("generate", str(out), "--prompt", "the cat", "--seed", "1", "--max-tokens", "5")
    assert generated.exit_code == 0 and generated.stdout.startswith("the cat")
    scored = invoke("score", str(out), "--text", "the cat sat", "--json")
    assert scored.exit_code == 0, scored.stderr
    agreement = invoke("agreement", str(out), "--json")
    assert agreement.exit_code == 0 and "overall" in json.loads(agreement.stdout)
    inspected = json.loads(invoke("inspect", str(out), "--text", "the cat sat", "--json").stdout)
    layer = inspected["layers"][0]
    assert {"mogrified_input", "mogrified_hidden", "forget_gate", "cell", "hidden"} <= set(layer)
    exported = invoke("export", str(out), "--format", "torchscript", "--out", str(tmp_path / "model.pt"))
    assert exported.exit_code == 0, exported.stderr
    resumed = invoke("train", "--out", str(out), "--resume", "--max-steps", "70")
    assert resumed.exit_code == 0 and "resuming at step 60" in resumed.stdout, resumed.stderr
