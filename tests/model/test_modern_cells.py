"""The cells since the seed: xLSTM's sLSTM/mLSTM (xlstm.py) and minLSTM/minGRU (min_cells.py).

Their equations against straightforward reimplementations (unstabilized, sequential), their
fast forms against their step-by-step forms, gradients in float64, and the CLI end to end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lstmlm.config import MIN_CELLS, XLSTM_CELLS, ModelConfig
from lstmlm.model.lm import LanguageModel
from lstmlm.model.min_cells import g, log_g, log_space_scan
from lstmlm.model.recurrent import make_cell
from lstmlm.model.xlstm import MLSTM_CHUNK, MLSTMCell, SLSTMCell, mlstm_chunk
from tests.conftest import invoke, train_tiny_run

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")

NEW_CELLS = (*XLSTM_CELLS, *MIN_CELLS)


def double_cell(name: str, input_size: int = 5, hidden_size: int = 8, heads: int = 2):
    options = {"heads": heads} if name in XLSTM_CELLS else {}
    return make_cell(name, input_size, hidden_size, cfg=ModelConfig(cell=name, **options)).double()


def random_state(cell, batch: int) -> tuple[torch.Tensor, ...]:
    """A carried state such as a window leaves: normalizers positive, stabilizers moderate."""
    state = [0.3 * torch.randn_like(s) for s in cell.init_state(batch)]
    if isinstance(getattr(cell, "cell", None), SLSTMCell):
        state[2] = state[2].abs() + 0.5  # n′ ≥ i′ > 0 after any step
    return tuple(s.double() for s in state)


def weighted_sum(outputs, weights) -> torch.Tensor:
    return sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))


@pytest.mark.parametrize("cell_name", NEW_CELLS)
@pytest.mark.parametrize("length", [7, 2 * MLSTM_CHUNK + 9])  # the mLSTM's chunks: one, three
def test_training_form_equals_the_step_equations(cell_name: str, length: int) -> None:
    """``scan`` (parallel scan, chunkwise-parallel mLSTM, sLSTM's loop) == the loop over ``step``,
    values and gradients w.r.t. input, carried state and every parameter."""
    cell = double_cell(cell_name)
    x = torch.randn(length, 3, 5, dtype=torch.double, requires_grad=True)
    state = tuple(s.requires_grad_() for s in random_state(cell, 3))
    y_fast, s_fast, _ = cell.scan(x, state)
    y_slow, s_slow, _ = cell.scan_steps(x, state)
    torch.testing.assert_close(y_fast, y_slow, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s_fast, s_slow, atol=1e-10, rtol=1e-10)
    inputs = [x, *state, *cell.parameters()]
    weights = [torch.randn_like(y_fast), *(torch.randn_like(s) for s in s_fast)]
    fast = torch.autograd.grad(weighted_sum((y_fast, *s_fast), weights), inputs, allow_unused=True)
    slow = torch.autograd.grad(weighted_sum((y_slow, *s_slow), weights), inputs, allow_unused=True)
    for g_fast, g_slow in zip(fast, slow, strict=True):
        assert (g_fast is None) == (g_slow is None)
        if g_fast is not None:
            torch.testing.assert_close(g_fast, g_slow, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("cell_name", NEW_CELLS)
def test_gradcheck(cell_name: str) -> None:
    """Float64 gradcheck of the training form, w.r.t. input, carried state and parameters.

    Checked: the block's output (and the min cells' state, which is their output). The
    stabilizer m carries no gradient by design, and the stored c′ = c·e^{−m}, n′ = n·e^{−m}
    depend on m; the outputs, ratios of the two, do not."""
    cell = double_cell(cell_name, input_size=3, hidden_size=4)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.double, requires_grad=True)
    state = list(random_state(cell, 2))
    carried = [0, 1, 2] if cell_name == "slstm" else [0, 1] if cell_name == "mlstm" else [0]
    for k in carried:
        state[k].requires_grad_()

    class Scan(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = cell

        def forward(self, x, *state):
            return self.cell.scan(x, tuple(state))[0]

    wrapper = Scan()

    def run(x, *rest):
        st, ps = rest[: len(state)], rest[len(state) :]
        return functional_call(wrapper, {f"cell.{n}": p for n, p in zip(names, ps, strict=True)}, (x, *st))

    assert torch.autograd.gradcheck(run, (x, *state, *params))


def unstabilized_slstm(cell: SLSTMCell, x_proj: torch.Tensor) -> torch.Tensor:
    """eqs. 8-14 with i = exp(ĩ) as written, from a zero state: h per step."""
    batch, size = x_proj.shape[1], cell.hidden_size
    h, c, n = (torch.zeros(batch, size, dtype=x_proj.dtype) for _ in range(3))
    outputs = []
    for pre in x_proj:
        z, i, f, o = (pre + cell.recurrent_input(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.exp(i) * torch.tanh(z)
        n = torch.sigmoid(f) * n + torch.exp(i)
        h = torch.sigmoid(o) * c / n
        outputs.append(h)
    return torch.stack(outputs)


def unstabilized_mlstm(cell: MLSTMCell, x_proj: torch.Tensor) -> torch.Tensor:
    """eqs. 19-27 with i = exp(ĩ) as written, from a zero state: h per step."""
    convolved, _ = cell.convolve(
        x_proj[..., : cell.size], torch.zeros(x_proj.shape[1], 3 * cell.size).double()
    )
    q, k, v, pre_o, pre_i, log_f = cell.split(x_proj, convolved)
    batch, heads, d = q.shape[1:]
    memory = torch.zeros(batch, heads, d, d, dtype=q.dtype)
    normalizer = torch.zeros(batch, heads, d, dtype=q.dtype)
    outputs = []
    for t in range(len(q)):
        f, i = torch.exp(log_f[t])[..., None], torch.exp(pre_i[t])[..., None]
        memory = f[..., None] * memory + i[..., None] * v[t][..., :, None] * k[t][..., None, :]
        normalizer = f * normalizer + i * k[t]
        retrieved = (memory @ q[t][..., None]).squeeze(-1)
        denominator = torch.clamp((normalizer * q[t]).sum(-1).abs(), min=1.0)[..., None]
        outputs.append((torch.sigmoid(pre_o[t]) * retrieved / denominator).flatten(-2))
    return torch.stack(outputs)


@pytest.mark.parametrize("cell_name", XLSTM_CELLS)
def test_the_stabilizer_changes_nothing_but_overflow(cell_name: str) -> None:
    block = double_cell(cell_name)
    equations = block.cell
    x = block.norm(torch.randn(12, 2, 8, dtype=torch.double))
    x_proj = equations.project_input(x)
    reference = unstabilized_slstm if cell_name == "slstm" else unstabilized_mlstm

    def stabilized(x_proj: torch.Tensor) -> torch.Tensor:
        state = tuple(s.double() for s in block.init_state(2))
        outputs = []
        for pre in x_proj:
            h, state, gates = equations.step(pre, state)
            assert gates["input_gate"].max() <= 1 and gates["forget_gate"].max() <= 1  # i′, f′ ≤ 1
            outputs.append(h)
        return torch.stack(outputs)

    with torch.no_grad():
        torch.testing.assert_close(stabilized(x_proj), reference(equations, x_proj), atol=1e-12, rtol=1e-10)
        rows = slice(size := equations.hidden_size, 2 * size) if cell_name == "slstm" else None
        huge = x_proj.clone()
        if rows is not None:
            huge[..., rows] += 800.0  # ĩ: exp(800) overflows even float64
        else:
            start = equations.size + 2 * equations.inner_size
            huge[..., start : start + equations.heads] += 800.0
        assert not reference(equations, huge).isfinite().all()
        assert stabilized(huge).isfinite().all()


@pytest.mark.parametrize("cell_name", MIN_CELLS)
def test_log_space_scan_equals_the_loop_over_long_windows(cell_name: str) -> None:
    """Over 560 steps: float64 to rounding; float32 within what 560 summed logarithms allow."""
    for dtype, tolerance in ((torch.double, 1e-10), (torch.float32, 1e-3)):
        cell = make_cell(cell_name, 5, 8).to(dtype)
        x = torch.randn(560, 2, 5, dtype=dtype)
        state = (torch.randn(2, 8, dtype=dtype),)
        with torch.no_grad():
            y_fast, _, _ = cell.scan(x, state)
            y_slow, _, _ = cell.scan_steps(x, state)
        torch.testing.assert_close(y_fast, y_slow, atol=tolerance, rtol=tolerance)


def test_log_space_helpers() -> None:
    u = torch.linspace(-30, 30, 601, dtype=torch.double)
    # softplus returns x itself above 20, dropping log1p(e^-20) ≈ 2e-9
    torch.testing.assert_close(log_g(u), torch.log(g(u)), atol=1e-8, rtol=0)
    assert (g(u) > 0).all() and torch.allclose(g(torch.zeros(1)), torch.tensor([0.5]))
    # h_t = a_t h_{t-1} + b_t, written out
    a, b, h0 = torch.rand(9, 2, 3).double(), torch.rand(9, 2, 3).double(), torch.randn(2, 3).double()
    h, expected = h0, []
    for t in range(9):
        h = a[t] * h + b[t]
        expected.append(h)
    torch.testing.assert_close(log_space_scan(a.log(), b.log(), h0), torch.stack(expected))


@pytest.mark.parametrize("cell_name", NEW_CELLS)
def test_state_carried_across_windows_equals_one_long_sequence(cell_name: str) -> None:
    heads = {"heads": 2} if cell_name in XLSTM_CELLS else {}
    cfg = ModelConfig(
        cell=cell_name, ntoken=20, emsize=6, nhid=8, nlayers=2, tied=False, dropout=0.0, **heads
    )
    model = LanguageModel(cfg).double().eval()
    tokens = torch.randint(20, (2 * MLSTM_CHUNK + 30, 3))
    zeros = tuple(s.double() for s in model.init_state(3))
    with torch.no_grad():
        whole, whole_state = model(tokens, zeros)
        state, parts = zeros, []
        for window in tokens.split(35):  # BPTT windows
            logits, state = model(window, state)
            parts.append(logits)
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(state, whole_state, atol=1e-10, rtol=1e-10)


def test_mlstm_memory_is_a_matrix_per_head() -> None:
    block = make_cell("mlstm", 8, 8, cfg=ModelConfig(cell="mlstm", heads=2))
    memory, normalizer, stabilizer, window = block.init_state(3)
    d = 2 * 8 // 2  # inner width 2H, over 2 heads
    assert memory.shape == (3, 2 * d * d) and normalizer.shape == (3, 2 * d)
    assert stabilizer.shape == (3, 2) and window.shape == (3, 3 * 8)


def test_parameter_counts() -> None:
    """minGRU: 2H(E + 1), minLSTM: 3H(E + 1) (Feng et al.), against the LSTM's 4H(E + H + 2)."""
    assert sum(p.numel() for p in make_cell("mingru", 5, 8).parameters()) == 2 * 8 * (5 + 1)
    assert sum(p.numel() for p in make_cell("minlstm", 5, 8).parameters()) == 3 * 8 * (5 + 1)


@pytest.mark.parametrize("cell_name", NEW_CELLS)
def test_cli_end_to_end(cell_name: str, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cell_flags = ["--cell", cell_name, "--nlayers", "2"] + (
        ["--heads", "2"] if cell_name in XLSTM_CELLS else []
    )
    train_tiny_run(out, tiny_corpus, *cell_flags)
    evaluation = json.loads(invoke("eval", str(out), "--json").stdout)
    vocabulary = json.loads((out / "config.json").read_text())["model"]["ntoken"]
    assert 1.0 < evaluation["perplexity"] < vocabulary  # better than uniform: it learnt
    generated = invoke("generate", str(out), "--prompt", "the cat", "--seed", "1", "--max-tokens", "8")
    assert generated.exit_code == 0 and generated.stdout.startswith("the cat")
    inspected = invoke("inspect", str(out), "--text", "the cat sat", "--json")
    assert inspected.exit_code == 0, inspected.stderr
    layers = json.loads(inspected.stdout)["layers"]
    expected = {
        "slstm": {"input_gate", "forget_gate", "stabilizer", "normalizer", "cell", "output_gate"},
        "mlstm": {"input_gate", "forget_gate", "stabilizer", "normalizer", "memory_norm", "output_gate"},
        "minlstm": {"forget_gate", "input_gate", "candidate"},
        "mingru": {"update_gate", "candidate"},
    }[cell_name]
    assert expected | {"hidden"} <= set(layers[0])
    table = invoke("inspect", str(out), "--text", "the cat sat")
    assert table.exit_code == 0 and "the" in table.stdout
    agreement = invoke("agreement", str(out), "--json")
    assert agreement.exit_code == 0 and "overall" in json.loads(agreement.stdout), agreement.stderr
    resumed = invoke("train", "--out", str(out), "--resume", "--max-steps", "70")
    assert resumed.exit_code == 0 and "resuming at step 60" in resumed.stdout, resumed.stderr


def test_xlstm_gates_in_the_trace_table() -> None:
    from lstmlm.analysis.traces import Trace
    from lstmlm.cli import report

    layer = {name: torch.rand(2, 4).numpy() for name in ("input_gate", "forget_gate", "stabilizer", "hidden")}
    layer["memory_norm"] = torch.rand(2, 2).numpy()  # one per head
    table = report.trace_table(Trace(["a", "b"], [layer]), 0, top=2)
    headers = [column.header for column in table.columns]
    assert {"input", "forget", "m", "‖C‖"} <= set(headers)


def test_against_the_authors_mlstm_if_installed() -> None:
    """The authors' pure-PyTorch parallel mLSTM, where the ``xlstm`` package is installed."""
    backends = pytest.importorskip("xlstm.blocks.mlstm.backends")
    q, k, v = (torch.randn(3, 2, 10, 4, dtype=torch.double) for _ in range(3))
    pre_i, pre_f = torch.randn(3, 2, 10, 1).double(), 3 + torch.randn(3, 2, 10, 1).double()
    theirs = backends.parallel_stabilized_simple(q, k, v, pre_i, pre_f, eps=0.0)  # their eps: 1e-6 added
    zeros = (torch.zeros(3, 2, 4, 4).double(), torch.zeros(3, 2, 4).double(), torch.zeros(3, 2).double())
    ours, *_ = mlstm_chunk(q, k / math.sqrt(4), v, pre_i[..., 0], F.logsigmoid(pre_f[..., 0]), *zeros)
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-10)


def test_against_the_authors_slstm_if_installed() -> None:
    """The authors' pointwise sLSTM step (gate order i, f, z, o), where ``xlstm`` is installed;
    R = 0 on our side, so both see the same pre-activations."""
    vanilla = pytest.importorskip("xlstm.blocks.slstm.src.vanilla.slstm")
    cell = SLSTMCell(8, 8, heads=2).double()
    with torch.no_grad():
        cell.recurrent_weight.zero_()
    raw = 2 * torch.randn(10, 3, 32, dtype=torch.double)  # ours: rows z, i, f, o
    pre_z, pre_i, pre_f, pre_o = raw.chunk(4, dim=-1)
    their_raw = torch.cat([pre_i, pre_f, pre_z, pre_o], dim=-1)
    ours = tuple(torch.zeros(3, 8, dtype=torch.double) for _ in range(4))
    theirs = torch.zeros(4, 3, 8, dtype=torch.double)
    no_input = torch.zeros(3, 32, dtype=torch.double)
    for t in range(10):
        h, ours, _ = cell.step(raw[t], ours)
        theirs, _ = vanilla.slstm_forward_pointwise(their_raw[t], no_input, no_input[:1], theirs, {})
        torch.testing.assert_close(h, theirs[0], atol=1e-12, rtol=1e-10)


def test_against_a_reference_min_cell_package_if_installed() -> None:
    """``minGRU-pytorch``'s log-space minGRU and minLSTM (batch first, no bias, rows (h̃, gates)),
    where installed, with our weights copied and our biases zero; from a zero state, and for
    minGRU also from a positive one (that package takes log h₀)."""
    min_gru = pytest.importorskip("minGRU_pytorch.minGRU")
    min_lstm = pytest.importorskip("minGRU_pytorch.minLSTM")
    x = torch.randn(2, 30, 6, dtype=torch.double)  # (B, T, H)
    for name, theirs in (("mingru", min_gru.minGRU(6).double()), ("minlstm", min_lstm.minLSTM(6).double())):
        ours = make_cell(name, 6, 6).double()
        rows = theirs.to_hidden_and_gate if name == "mingru" else theirs.to_hidden_and_f_i_gate
        with torch.no_grad():
            candidate, *gates = rows.weight.chunk(len(ours.gate_order))
            ours.weight_ih.copy_(torch.cat([*gates, candidate]))  # ours: gates first, h̃ last
            ours.bias_ih.zero_()
        y, _, _ = ours.scan(x.transpose(0, 1), (torch.zeros(2, 6, dtype=torch.double),))
        torch.testing.assert_close(y.transpose(0, 1), theirs(x), atol=1e-12, rtol=1e-10)
        if name == "mingru":
            h0 = torch.rand(2, 6, dtype=torch.double) + 0.1
            y, _, _ = ours.scan(x.transpose(0, 1), (h0,))
            torch.testing.assert_close(y.transpose(0, 1), theirs(x, h0[:, None]), atol=1e-12, rtol=1e-10)
