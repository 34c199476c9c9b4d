"""The fast path (scan.py, scan_loops.py, packed_linear.py) computes what the cells' ``step`` does."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from lstmlm.config import CUSTOM_CELLS, XLSTM_CELLS, ModelConfig
from lstmlm.model.fast.packed_linear import onednn_works
from lstmlm.model.fast.scan import EAGER_LOOPS, torchscript_loops, using_step_loops
from lstmlm.model.recurrent import build_recurrent, make_cell
from tests.model.test_cells import B, E, H, T, random_state, randomize_diagonals, stack

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")

# xLSTM's blocks need a head count dividing H and a positive normalizer: tests/model/test_modern_cells.py
SCAN_CELLS = [cell for cell in CUSTOM_CELLS if cell not in XLSTM_CELLS]


@pytest.mark.parametrize("cell", SCAN_CELLS)
def test_fast_path_equals_readable_steps(cell: str) -> None:
    """``forward`` (hoisted GEMM + hand-written backward) vs ``trace`` (cell.step per step)."""
    ours = stack(cell, nlayers=2).double()
    randomize_diagonals(ours)
    x = torch.randn(T, B, E, dtype=torch.double, requires_grad=True)
    state = tuple(s.requires_grad_() for s in random_state(ours.state_size, dtype=torch.double))
    y_fast, s_fast = ours(x, state)
    y_slow, s_slow, traces = ours.trace(x, state)
    torch.testing.assert_close(y_fast, y_slow, atol=1e-12, rtol=0)
    torch.testing.assert_close(s_fast, s_slow, atol=1e-12, rtol=0)
    assert len(traces) == 2
    for name, g in traces[0].items():  # the mogrifier's x↑ is an input: E units in the first layer
        assert g.shape == (T, B, E if name == "mogrified_input" else H), name
    weights = [torch.randn_like(t) for t in (y_fast, *s_fast)]
    inputs = [x, *state, *ours.parameters()]

    def grads(outputs: tuple) -> tuple:
        loss = sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))
        return torch.autograd.grad(loss, inputs)

    for g_fast, g_slow in zip(grads((y_fast, *s_fast)), grads((y_slow, *s_slow)), strict=True):
        torch.testing.assert_close(g_fast, g_slow, atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", SCAN_CELLS)
def test_gradcheck(cell: str) -> None:
    """The hand-written backward, w.r.t. input, state and every parameter, in float64."""
    cfg = ModelConfig(cell=cell, ntoken=2, emsize=2, nhid=3, nlayers=2, dropout=0.0, tied=False)
    ours = build_recurrent(cfg).double()
    randomize_diagonals(ours)
    names = [n for n, _ in ours.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in ours.parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.double, requires_grad=True)  # (T, B, E)
    state = [
        torch.randn(2, 2, 3, dtype=torch.double, requires_grad=True)  # (nlayers, B, H)
        for _ in range(ours.state_size)
    ]

    def run(x, *rest):
        st, ps = rest[: ours.state_size], rest[ours.state_size :]
        y, new_state = functional_call(ours, dict(zip(names, ps, strict=True)), (x, tuple(st)))
        return (y, *new_state)

    assert torch.autograd.gradcheck(run, (x, *state, *params))


@pytest.mark.parametrize("scripted", [True, False], ids=["torchscript", "python"])
@pytest.mark.parametrize("cell", SCAN_CELLS)
def test_fast_path_float32(cell: str, scripted: bool) -> None:
    """The float32 CPU kernels (oneDNN-packed W_hh on long enough sequences), TorchScript or not."""
    loops = torchscript_loops() if scripted else EAGER_LOOPS
    if scripted:  # the default path; falling back to eager without notice would hide a slowdown
        assert isinstance(loops.lstm_backward, torch.jit.ScriptFunction)
    ours = stack(cell, nlayers=2)
    randomize_diagonals(ours)
    x = torch.randn(20, B, E, requires_grad=True)  # ≥ 16 steps: backward packs W_hhᵀ too
    state = random_state(ours.state_size)
    with using_step_loops(loops):
        y_fast, s_fast = ours(x, state)
        (g_fast,) = torch.autograd.grad(y_fast.square().sum(), x)
    y_slow, s_slow, _ = ours.trace(x, state)
    torch.testing.assert_close(y_fast, y_slow, atol=1e-5, rtol=0)
    torch.testing.assert_close(s_fast, s_slow, atol=1e-5, rtol=0)
    (g_slow,) = torch.autograd.grad(y_slow.square().sum(), x)
    torch.testing.assert_close(g_fast, g_slow, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell", ["lstm-eq", "gru-eq"])
def test_inference_follows_weight_updates(cell: str) -> None:
    """Inference keeps the packed W_hh between calls; it must notice changed weights."""
    ours = stack(cell, nlayers=1).eval()
    x, state = torch.randn(T, B, E), random_state(ours.state_size, nlayers=1)
    with torch.inference_mode():
        before, _ = ours(x, state)
        assert torch.equal(ours(x, state)[0], before)
    with torch.no_grad():
        ours.cells[0].weight_hh.mul_(-1.0)
    with torch.inference_mode():
        after, _ = ours(x, state)
        expected, _, _ = ours.trace(x, state)
    assert not torch.allclose(after, before, atol=1e-3)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=0)


def test_the_fast_path_leaves_the_global_rng_alone() -> None:
    """Its first call probes oneDNN; drawing random numbers there would shift every later
    dropout mask, so a resumed run (which probes again) would not repeat the original."""
    onednn_works.cache_clear()
    cell = make_cell("lstm-eq", E, H)
    x, state = torch.randn(20, B, E), (torch.zeros(B, H), torch.zeros(B, H))
    rng = torch.get_rng_state()
    cell.scan(x, state)
    assert torch.equal(torch.get_rng_state(), rng)
