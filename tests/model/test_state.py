"""The recurrent state every cell carries: ``init_state``'s structure and shapes as documented
(``LanguageModel.init_state``, README "From Python"), ``None`` as the zero state, and the
state carried between calls."""

from __future__ import annotations

import pytest
import torch

from lstmlm.config import CELLS, LSTM_TYPE_CELLS, ModelConfig
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import CellStack, equation_stack

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")

NTOKEN, NHID, NLAYERS, HEADS = 13, 8, 2, 2


def tiny_model(cell: str, **options: object) -> LanguageModel:
    heads = {"heads": HEADS} if cell in ("slstm", "mlstm") else {}
    config = ModelConfig(
        cell=cell, ntoken=NTOKEN, emsize=NHID, nhid=NHID, nlayers=NLAYERS, dropout=0.0, **heads, **options
    )
    return LanguageModel(config).eval()


def documented_widths(cell: str) -> tuple[int, ...]:
    """The state parts' widths ``LanguageModel.init_state``'s docstring gives, by cell family."""
    if cell in LSTM_TYPE_CELLS:
        return (NHID, NHID)  # (h, c)
    if cell == "slstm":
        return (NHID,) * 4  # (h, c, n, m)
    if cell == "mlstm":
        d = 2 * NHID // HEADS
        return (HEADS * d * d, HEADS * d, HEADS, 3 * NHID)  # (C, n, m, the convolution's inputs)
    return (NHID,)  # (h,)


def tokens(length: int = 7, batch: int = 3) -> torch.Tensor:
    return torch.randint(NTOKEN, (length, batch))


@pytest.mark.parametrize("cell", CELLS)
def test_init_state_is_the_documented_zero_state(cell: str) -> None:
    state = tiny_model(cell).init_state(3)
    assert isinstance(state, tuple)
    assert [tuple(s.shape) for s in state] == [(NLAYERS, 3, w) for w in documented_widths(cell)]
    assert all(s.dtype == torch.float32 and not s.any() for s in state)


@pytest.mark.parametrize("cell", CELLS)
@torch.no_grad()
def test_none_is_the_zero_state(cell: str) -> None:
    model, x = tiny_model(cell), tokens()
    logits, state = model(x, None)
    expected_logits, expected_state = model(x, model.init_state(x.size(1)))
    assert torch.equal(logits, expected_logits)
    assert len(state) == len(expected_state)
    assert all(torch.equal(a, b) for a, b in zip(state, expected_state, strict=True))
    loss, _ = model(x, None, targets=x)
    assert torch.equal(loss, model(x, model.init_state(3), targets=x)[0])
    features, _ = model.features(x, None)
    assert torch.equal(features, model.features(x, model.init_state(3))[0])
    assert [s.shape for s in state] == [s.shape for s in model.init_state(3)]  # ready to carry


@pytest.mark.parametrize("cell", CELLS)
@torch.no_grad()
def test_carrying_the_state_reads_on(cell: str) -> None:
    model, x = tiny_model(cell), tokens(9)
    whole, _ = model(x, None)
    first, state = model(x[:4], None)
    rest, _ = model(x[4:], state)
    torch.testing.assert_close(torch.cat([first, rest]), whole, atol=1e-5, rtol=1e-5)


def test_narrower_layers_and_the_equation_stack_take_none() -> None:
    model = tiny_model("lstm", layer_sizes="6,8")
    x = tokens()
    assert [tuple(s.shape) for s in model.init_state(3)] == [(NLAYERS, 3, NHID)] * 2  # widest layer
    with torch.no_grad():
        logits, _ = model(x, None)
        assert torch.equal(logits, model(x, model.init_state(3))[0])
        stack = equation_stack(model.rnn)
        assert isinstance(stack, CellStack)
        embedded = model.encoder(x)
        y, _, _ = stack.trace(embedded, None)
        assert torch.equal(y, stack.trace(embedded, stack.init_state(3))[0])
