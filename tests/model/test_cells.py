"""The equation cells (cells.py) and their stack: equal to PyTorch's, to each other, and trainable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lstmlm.config import CELLS, CUSTOM_CELLS, LSTM_TYPE_CELLS, MIN_CELLS, ModelConfig
from lstmlm.model.cells import CoupledLSTMCell
from lstmlm.model.lm import LanguageModel, detach_state
from lstmlm.model.recurrent import CellStack, build_recurrent, make_cell

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")

T, B, E, H = 7, 3, 5, 6


def stack(cell: str, nlayers: int = 2, dropout: float = 0.0, **kw) -> CellStack:
    cfg = ModelConfig(
        cell=cell, ntoken=11, emsize=E, nhid=H, nlayers=nlayers, dropout=dropout, tied=False, **kw
    )
    return build_recurrent(cfg)


def random_state(n: int, nlayers: int = 2, dtype: torch.dtype = torch.float32) -> tuple:
    return tuple(torch.randn(nlayers, B, H, dtype=dtype) for _ in range(n))


def copy_from_torch(ours: CellStack, ref: nn.RNNBase) -> None:
    with torch.no_grad():
        for layer, cell in enumerate(ours.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(ref, f"{name}_l{layer}"))


def randomize_diagonals(module: nn.Module) -> None:
    """The peephole / depth vectors start at zero; give them values so they are exercised."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.rsplit(".", 1)[-1].startswith("w_"):
                p.uniform_(-0.5, 0.5)


@pytest.mark.parametrize(("cell", "ref_cls"), [("lstm-eq", nn.LSTM), ("gru-eq", nn.GRU)])
def test_matches_pytorch_module(cell: str, ref_cls: type[nn.RNNBase]) -> None:
    ours, ref = stack(cell, nlayers=2), ref_cls(E, H, num_layers=2)
    copy_from_torch(ours, ref)
    x = torch.randn(20, B, E, requires_grad=True)  # long enough for the packed-weight kernels
    state = random_state(ours.state_size)
    y, new_state = ours(x, state)
    y_ref, ref_state = ref(x, state if cell == "lstm-eq" else state[0])
    ref_state = ref_state if cell == "lstm-eq" else (ref_state,)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    for s, s_ref in zip(new_state, ref_state, strict=True):
        torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=0)
    # the hand-written backward agrees with autograd through PyTorch's kernels
    loss = y.square().sum() + new_state[-1].sum()
    loss_ref = y_ref.square().sum() + ref_state[-1].sum()
    grads = torch.autograd.grad(loss, [x, *ours.parameters()])
    grads_ref = torch.autograd.grad(loss_ref, [x, *ref.parameters()])
    for g, g_ref in zip(grads, grads_ref, strict=True):  # same parameter order: ih, hh, b_ih, b_hh
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4)


def test_peephole_with_zero_peepholes_is_lstm_eq() -> None:
    plain, peep = stack("lstm-eq"), stack("peephole")
    assert all((p == 0).all() for n, p in peep.named_parameters() if ".w_c" in n)
    ref = nn.LSTM(E, H, num_layers=2)
    copy_from_torch(plain, ref)
    copy_from_torch(peep, ref)
    x, state = torch.randn(T, B, E), random_state(2)
    y_plain, s_plain = plain(x, state)
    y_peep, s_peep = peep(x, state)
    torch.testing.assert_close(y_peep, y_plain, atol=1e-6, rtol=0)
    torch.testing.assert_close(s_peep, s_plain, atol=1e-6, rtol=0)
    randomize_diagonals(peep)  # the peepholes do take part once non-zero
    assert not torch.allclose(peep(x, state)[0], y_plain, atol=1e-3)


def test_coupled_has_no_input_gate_and_i_is_one_minus_f() -> None:
    cell = CoupledLSTMCell(E, H)
    assert cell.gate_order == "fgo"
    assert cell.weight_ih.shape == (3 * H, E) and cell.weight_hh.shape == (3 * H, H)
    assert cell.bias_ih.shape == cell.bias_hh.shape == (3 * H,)
    assert sum(p.numel() for p in cell.parameters()) == 3 * H * (E + H + 2)
    _, _, traces = stack("coupled").trace(torch.randn(T, B, E), random_state(2))
    for gates in traces:
        torch.testing.assert_close(gates["input_gate"], 1 - gates["forget_gate"])


def test_depth_gated_with_closed_depth_gate_is_stacked_lstm_eq() -> None:
    deep, plain = stack("depth-gated", nlayers=3), stack("lstm-eq", nlayers=3)
    randomize_diagonals(deep)
    with torch.no_grad():
        for upper in deep.cells[1:]:
            assert upper.weight_ih.shape == (5 * H, H) and upper.weight_hh.shape == (4 * H, H)
        for ours, theirs in zip(plain.cells, deep.cells, strict=True):
            ours.weight_ih.copy_(theirs.weight_ih[: 4 * H])
            ours.bias_ih.copy_(theirs.bias_ih[: 4 * H])
            ours.weight_hh.copy_(theirs.weight_hh)
            ours.bias_hh.copy_(theirs.bias_hh)
    x, state = torch.randn(T, B, E), random_state(2, nlayers=3)
    y_open, _ = deep(x, state)
    with torch.no_grad():
        for upper in deep.cells[1:]:
            upper.bias_ih[4 * H :].fill_(-1e4)  # b_d → −∞: d = 0
    y_closed, s_closed = deep(x, state)
    y_plain, s_plain = plain(x, state)
    torch.testing.assert_close(y_closed, y_plain, atol=1e-6, rtol=0)
    torch.testing.assert_close(s_closed, s_plain, atol=1e-6, rtol=0)
    assert not torch.allclose(y_open, y_plain, atol=1e-3)


@pytest.mark.parametrize("cell", [c for c in LSTM_TYPE_CELLS if c in CUSTOM_CELLS])
def test_forget_bias(cell: str) -> None:
    for layer_cell in stack(cell, forget_bias=2.5).cells:
        rows = layer_cell.gate_slice("f")
        total = layer_cell.bias_ih[rows] + layer_cell.bias_hh[rows]
        torch.testing.assert_close(total, torch.full((H,), 2.5))


def delayed_copy_loss(model: LanguageModel, steps: int, delay: int = 2) -> tuple[float, float]:
    """Train to output the token seen ``delay`` steps ago; returns (first, last-10 mean) loss."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    vocab = model.cfg.ntoken
    losses = []
    for _ in range(steps):
        tokens = torch.randint(vocab, (12, 16))
        logits, _ = model(tokens, model.init_state(16))
        loss = nn.functional.cross_entropy(logits[delay:].reshape(-1, vocab), tokens[:-delay].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], sum(losses[-10:]) / 10


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_learns(cell: str) -> None:
    # One minGRU/minLSTM layer cannot: its h is a sum of candidates weighted by gates of
    # the later inputs, with no nonlinearity of the past before the decoder; a second
    # layer's gates provide it (Feng et al. stack layers too).
    nlayers, steps = (2, 500) if cell in MIN_CELLS else (1, 250)
    cfg = ModelConfig(cell=cell, ntoken=5, emsize=16, nhid=24, nlayers=nlayers, dropout=0.0, tied=False)
    first, last = delayed_copy_loss(LanguageModel(cfg), steps=steps)
    assert first > 1.4  # ≈ ln 5 = 1.61 at the start
    assert last < 0.3 * first, (first, last)


@pytest.mark.parametrize("cell", CELLS)
def test_language_model_round_trip(cell: str, tmp_path) -> None:
    cfg = ModelConfig(cell=cell, ntoken=13, emsize=8, nhid=8, nlayers=2, dropout=0.3, tied=True)
    model = LanguageModel(cfg)
    tokens = torch.randint(13, (2, 5, 4))
    # training mode: two windows with the state carried across (truncated BPTT)
    state = model.init_state(4)
    for window in tokens:
        logits, state = model(window, state)
        assert logits.shape == (5, 4, 13)
        assert all(s.shape[:2] == (2, 4) for s in state)
        logits.sum().backward()
        state = detach_state(state)
    assert all(p.grad is not None for p in model.parameters())
    # carried state matters, and a saved model gives back identical logits
    model.eval()
    carried, _ = model(tokens[1], state)
    fresh, _ = model(tokens[1], model.init_state(4))
    assert not torch.allclose(carried, fresh)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    loaded = LanguageModel(cfg)
    loaded.load_state_dict(torch.load(tmp_path / "model.pt"))
    loaded.eval()
    torch.testing.assert_close(loaded(tokens[1], state)[0], carried, atol=0, rtol=0)


def test_checkpoints_of_a_multilayer_fused_module_still_load() -> None:
    model = LanguageModel(ModelConfig(ntoken=12, emsize=6, nhid=6, nlayers=2, dropout=0.0))
    old = torch.nn.LSTM(6, 6, num_layers=2)
    tensors = {k: v for k, v in model.state_dict().items() if not k.startswith("rnn.")}
    tensors.update({f"rnn.rnn.{k}": v for k, v in old.state_dict().items()})
    model.load_state_dict(tensors, strict=True)
    x = torch.randn(5, 3, 6)
    ours, _ = model.rnn(x, model.init_state(3))
    reference, _ = old(x)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_make_cell_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        make_cell("nope", 2, 2)
