"""AWD-LSTM's model-side regularisers (Merity, Keskar & Socher 2017): locked dropout,
embedding dropout, weight drop, AR/TAR, per-layer sizes; and all of them off changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from lstmlm.analysis.traces import EquationModel
from lstmlm.config import ModelConfig
from lstmlm.data.grammar.suites import generate_pairs, write_jsonl
from lstmlm.errors import LstmlmError
from lstmlm.model.dropout import StepMasks, StreamDropout, masks_for_step
from lstmlm.model.lm import LanguageModel
from lstmlm.model.recurrent import equation_stack
from lstmlm.model.regularize import EmbeddingDropout, WeightDrop, activation_penalty
from lstmlm.runs import load as runs
from tests.conftest import invoke

pytestmark = pytest.mark.usefixtures("one_thread")

AWD = dict(locked_dropout=True, dropouti=0.4, dropouth=0.3, dropout=0.4, dropoute=0.2, weight_drop=0.5)


def lm(cell: str = "lstm", *, seed: int = 0, **fields: object) -> LanguageModel:
    torch.manual_seed(seed)
    raw: dict = dict(cell=cell, ntoken=30, emsize=6, nhid=6, nlayers=2, dropout=0.0) | fields
    return LanguageModel(ModelConfig(**raw))


def tokens(steps: int = 7, batch: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 30, (steps, batch), generator=torch.Generator().manual_seed(seed))


def site_keep(seed: int, step: int, site: int, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """The keep-mask that site ``site`` of step ``step`` draws (shared by all streams)."""
    masks = StepMasks(seed, step, 0, 1)
    for _ in range(site):
        masks.key()
    return torch.rand(shape, generator=torch.Generator().manual_seed(masks.key())) >= p


# ---------------------------------------------------------------- locked dropout


def test_a_locked_mask_is_constant_over_time_differs_across_streams_and_slices_by_stream() -> None:
    drop = StreamDropout(0.5, locked=True).train()
    x = torch.ones(6, 8, 5)
    with masks_for_step(seed=7, step=3, first=0, total=8):
        whole = drop(x)
    assert torch.equal(whole, whole[:1].expand_as(whole))  # the same mask at every time step
    assert set(whole.unique().tolist()) == {0.0, 2.0}
    assert len({tuple(whole[0, b].tolist()) for b in range(8)}) > 1  # streams differ
    with masks_for_step(seed=7, step=3, first=4, total=8):
        second_half = drop(x[:, 4:])  # the second of two processes
    assert torch.equal(second_half, whole[:, 4:])
    with masks_for_step(seed=7, step=4, first=0, total=8):
        assert not torch.equal(drop(x), whole)
    free = drop(x)  # outside a step: torch's generator, still locked
    assert torch.equal(free, free[:1].expand_as(free))


def test_locked_dropout_reaches_every_site_and_a_split_batch_computes_the_whole_one() -> None:
    """All AWD-LSTM regularisers on: streams [2, 4) alone get the rows the whole batch gets."""
    for cell in ("lstm", "lstm-eq", "gru"):
        model = lm(cell, layer_sizes="10,6", **AWD).train()
        sites = [m for m in model.modules() if isinstance(m, StreamDropout)]
        assert len(sites) == 3 and all(site.locked for site in sites)
        x, state = tokens(), model.init_state(4)
        before = torch.get_rng_state()
        with masks_for_step(seed=5, step=2, first=0, total=4):
            whole, whole_state = model(x, state)
        assert torch.equal(torch.get_rng_state(), before)  # every mask from the step's generators
        with masks_for_step(seed=5, step=2, first=2, total=4):
            half, half_state = model(x[:, 2:], tuple(s[:, 2:] for s in state))
        torch.testing.assert_close(half, whole[:, 2:], rtol=1e-5, atol=1e-6)
        for a, b in zip(half_state, whole_state, strict=True):
            torch.testing.assert_close(a, b[:, 2:], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- embedding dropout


def test_embedding_dropout_zeroes_whole_words_and_scales_the_rest() -> None:
    drop = EmbeddingDropout(0.5, ntoken=10).train()
    ids = torch.arange(10).repeat(3).view(6, 5)  # every word at three positions
    vectors = torch.rand(6, 5, 4) + 0.5
    with masks_for_step(seed=1, step=0, first=0, total=5):
        out = drop(ids, vectors)
    dropped = set()
    for word in range(10):
        where = ids == word
        ratio = out[where] / vectors[where]
        if torch.all(ratio == 0):
            dropped.add(word)
        else:
            torch.testing.assert_close(ratio, torch.full_like(ratio, 2.0))
    assert 0 < len(dropped) < 10
    with masks_for_step(seed=1, step=0, first=3, total=5):  # another process: the same words
        assert torch.equal(drop(ids[:, 3:], vectors[:, 3:]), out[:, 3:])
    with masks_for_step(seed=1, step=1, first=0, total=5):
        assert not torch.equal(drop(ids, vectors), out)
    assert drop.eval()(ids, vectors) is vectors


# ---------------------------------------------------------------- weight drop


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-tanh", "lstm-eq", "gru-eq", "peephole"])
def test_weight_drop_masks_w_hh_while_training_only(cell: str) -> None:
    model = lm(cell, nlayers=1, weight_drop=0.5).train()
    plain = lm(cell, nlayers=1)
    assert list(model.state_dict()) == list(plain.state_dict())  # the same keys: runs load both ways
    plain.load_state_dict(model.state_dict())
    x, state = tokens(), model.init_state(4)

    with masks_for_step(seed=3, step=0, first=0, total=4):
        first, _ = model(x, state)
    with masks_for_step(seed=3, step=0, first=0, total=4):
        again, _ = model(x, state)
    with masks_for_step(seed=3, step=1, first=0, total=4):
        other, _ = model(x, state)
    assert torch.equal(first, again) and not torch.equal(first, other)

    # the same as the plain model with W_hh * mask / (1 - p), mask = site 0's draw
    rnn = plain.rnn.layers[0] if hasattr(plain.rnn, "layers") else plain.rnn.cells[0]
    name = "weight_hh_l0" if hasattr(plain.rnn, "layers") else "weight_hh"
    raw = getattr(rnn, name).detach().clone()
    with torch.no_grad():
        getattr(rnn, name).mul_(site_keep(3, 0, 0, tuple(raw.shape), 0.5) / 0.5)
    torch.testing.assert_close(plain.train()(x, state)[0], first, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        getattr(rnn, name).copy_(raw)

    model.eval(), plain.eval()
    with masks_for_step(seed=3, step=0, first=0, total=4):
        evaluated, _ = model(x, state)
    assert torch.equal(evaluated, model(x, state)[0])  # deterministic, raw weights
    torch.testing.assert_close(evaluated, plain(x, state)[0], rtol=0, atol=0)


def test_weight_drop_gradient_reaches_the_raw_weight_through_the_kept_entries() -> None:
    model = lm("lstm", nlayers=1, weight_drop=0.5).train()
    with masks_for_step(seed=3, step=0, first=0, total=4):
        logits, _ = model(tokens(), model.init_state(4))
    logits.pow(2).mean().backward()
    weight = model.rnn.layers[0].weight_hh_l0
    keep = site_keep(3, 0, 0, tuple(weight.shape), 0.5)
    assert weight.grad is not None and torch.all(weight.grad[~keep] == 0)
    assert torch.count_nonzero(weight.grad[keep]) > 0.9 * keep.sum()
    assert all(p.grad is not None for p in model.parameters())


def test_weight_drop_is_plain_outside_a_step_and_identity_when_off() -> None:
    weight = torch.rand(8, 4) + 0.5
    torch.manual_seed(0)
    dropped = WeightDrop(0.5).train()(weight)
    assert set((dropped / weight).unique().tolist()) == {0.0, 2.0}
    assert WeightDrop(0.5).eval()(weight) is weight and WeightDrop(0.0).train()(weight) is weight


# ---------------------------------------------------------------- AR / TAR


def test_activation_penalty_by_hand() -> None:
    hidden = torch.tensor([[[1.0, 2.0]], [[3.0, 5.0]]])  # (T=2, B=1, H=2)
    dropped = torch.tensor([[[0.0, 4.0]], [[6.0, 0.0]]])
    assert activation_penalty(hidden, dropped, 2.0, 0.0).item() == 2.0 * (16 + 36) / 4  # AR on dropped
    assert activation_penalty(hidden, dropped, 0.0, 1.0).item() == (2**2 + 3**2) / 2  # TAR on h
    assert activation_penalty(hidden, dropped, 2.0, 1.0).item() == 26.0 + 6.5
    assert activation_penalty(hidden[:1], dropped[:1], 0.0, 1.0).item() == 0.0  # one step: no pairs


def test_forward_with_penalty_is_ar_plus_tar_of_the_last_layer() -> None:
    model = lm("lstm", ar_alpha=2.0, tar_beta=1.0, dropout=0.5).train()
    seen: dict[str, torch.Tensor] = {}
    model.rnn.register_forward_hook(lambda m, i, o: seen.update(hidden=o[0]))
    model.drop.register_forward_hook(lambda m, i, o: seen.update(dropped=o))
    x, state = tokens(), model.init_state(4)
    with masks_for_step(seed=2, step=0, first=0, total=4):
        logits, _, penalty = model(x, state, with_penalty=True)
    h, d = seen["hidden"], seen["dropped"]
    assert not torch.equal(h, d)  # the output was dropped
    expected = 2.0 * (d**2).mean() + 1.0 * ((h[1:] - h[:-1]) ** 2).mean()
    torch.testing.assert_close(penalty, expected, rtol=1e-6, atol=0)
    with masks_for_step(seed=2, step=0, first=0, total=4):
        assert torch.equal(model(x, state)[0], logits)  # two values without the keyword
    assert len(model(x, state)) == 2
    penalty.backward()
    assert model.rnn.layers[-1].weight_hh_l0.grad is not None

    off = lm("lstm")
    _, _, zero = off(x, state, with_penalty=True)
    assert zero.shape == () and zero.item() == 0.0


# ---------------------------------------------------------------- layer sizes


@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm-eq", "coupled"])
def test_layer_sizes_give_each_layer_its_shapes(cell: str) -> None:
    model = lm(cell, layer_sizes="10, 8,6")
    cfg = model.cfg
    assert (cfg.layer_sizes, cfg.nlayers, cfg.nhid, cfg.hidden_sizes) == ("10,8,6", 3, 6, (10, 8, 6))
    rows = {"lstm": 4, "gru": 3, "lstm-eq": 4, "coupled": 3}[cell]
    layers = model.rnn.layers if hasattr(model.rnn, "layers") else model.rnn.cells
    for layer, (n_in, n_out) in zip(layers, [(6, 10), (10, 8), (8, 6)], strict=True):
        params = dict(layer.named_parameters())
        ih = params.get("weight_ih_l0", params.get("weight_ih"))
        hh = params.get("weight_hh_l0", params.get("weight_hh"))
        assert ih.shape == (rows * n_out, n_in) and hh.shape == (rows * n_out, n_out)
    assert model.decoder.weight.shape == (30, 6)
    state = model.init_state(3)
    assert all(s.shape == (3, 3, 10) for s in state)
    logits, state = model(tokens(5, 3), state)
    assert logits.shape == (5, 3, 30)
    assert torch.all(state[0][1, :, 8:] == 0) and torch.all(state[0][2, :, 6:] == 0)  # padding
    assert torch.count_nonzero(state[0][2, :, :6]) > 0
    logits2, _ = model(tokens(5, 3, seed=2), state)  # the carried state goes back in
    logits2.sum().backward()


def test_layer_sizes_through_the_equation_cells() -> None:
    model = lm("lstm", layer_sizes="10,8,6").eval()
    x = tokens(6, 2)
    expected, expected_state = model(x, model.init_state(2))
    runner = EquationModel(model, ablate={2: [0]})
    stack = equation_stack(model.rnn)
    assert [cell.hidden_size for cell in stack.cells] == [10, 8, 6]
    got, got_state = EquationModel(model)(x, model.init_state(2))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_state, expected_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    runner(x, model.init_state(2))
    assert [g["hidden"].shape[-1] for g in runner.traces] == [10, 8, 6]
    assert torch.all(runner.traces[2]["hidden"][..., 0] == 0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(layer_sizes="10,x"), "--layer-sizes must be positive integers"),
        (dict(layer_sizes="10,0,6"), "--layer-sizes must be positive integers"),
        (dict(layer_sizes="10,-6"), "--layer-sizes must be positive integers"),
        (dict(layer_sizes="10,,6"), "--layer-sizes must be positive integers"),
        (dict(layer_sizes="8,6", nlayers=3), "--nlayers 3 disagrees"),
        (dict(layer_sizes="8,6", nhid=8), "--nhid 8 disagrees"),
        (dict(layer_sizes="8,10"), "--tied needs --emsize equal to the last of --layer-sizes"),
        (dict(layer_sizes="8,6", cell="depth-gated"), "depth-gated needs equal --layer-sizes"),
        (dict(dropouti=1.0), "--dropouti must be in [0, 1)"),
        (dict(dropouth=-0.1), "--dropouth must be in [0, 1)"),
        (dict(dropoute=1.5), "--dropoute must be in [0, 1)"),
        (dict(weight_drop=float("nan")), "--weight-drop must be in [0, 1)"),
        (dict(ar_alpha=-1.0), "--ar-alpha must be >= 0"),
        (dict(tar_beta=float("inf")), "--tar-beta must be >= 0"),
    ],
)
def test_bad_values_are_one_line_errors(fields: dict, message: str) -> None:
    raw = dict(ntoken=30, emsize=6) | ({} if "layer_sizes" in fields else {"nhid": 6})
    with pytest.raises(LstmlmError) as error:
        ModelConfig(**(raw | fields))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_layer_sizes_override_the_default_shape() -> None:
    cfg = ModelConfig(emsize=400, layer_sizes="1150,1150,400")
    assert (cfg.nlayers, cfg.nhid, cfg.hidden_sizes) == (3, 400, (1150, 1150, 400))
    assert ModelConfig(emsize=6, nhid=6, nlayers=2, layer_sizes=" ").hidden_sizes == (6, 6)
    again = ModelConfig(**{k: getattr(cfg, k) for k in cfg.__dataclass_fields__})  # config.json round trip
    assert again == cfg


# ---------------------------------------------------------------- through the run folder


def test_a_run_with_every_regulariser_trains_saves_and_loads(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = ["--emsize", "16", "--layer-sizes", "24,16", "--locked-dropout", "--dropout", "0.3",
             "--dropouti", "0.3", "--dropouth", "0.2", "--dropoute", "0.1", "--weight-drop", "0.3",
             "--ar-alpha", "2", "--tar-beta", "1", "--bptt", "8", "--batch-size", "4",
             "--max-steps", "60", "--log-every", "20", "--eval-every", "30"]  # fmt: skip
    result = invoke("train", "--data", str(tiny_corpus), "--out", str(out), *flags)
    assert result.exit_code == 0, result.output + result.stderr
    config = json.loads((out / "config.json").read_text())["model"]
    assert (config["layer_sizes"], config["nlayers"], config["nhid"]) == ("24,16", 2, 16)
    assert (config["weight_drop"], config["dropouti"], config["locked_dropout"]) == (0.3, 0.3, True)

    run = runs.load_run(out)
    assert run.model.rnn.layers[0].weight_hh_l0.shape == (96, 24)
    plain = LanguageModel(ModelConfig(**(config | dict(weight_drop=0.0, dropoute=0.0))))
    plain.load_state_dict(run.model.state_dict())  # weights trained with weight drop, loaded without

    result = invoke("eval", str(out), "--split", "valid", "--json")
    assert result.exit_code == 0, result.stderr
    assert 1.0 < json.loads(result.stdout)["perplexity"] < config["ntoken"]
    result = invoke("info", str(out))
    assert result.exit_code == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert "lstm, layers 24/16, emsize 16" in shown and "locked dropout, dropouti 0.3" in shown
    assert "weight drop 0.3, AR 2.0, TAR 1.0" in shown
    result = invoke("generate", str(out), "--prompt", "the cat", "--seed", "1", "--max-tokens", "5")
    assert result.exit_code == 0 and result.stdout.startswith("the cat")
    result = invoke("inspect", str(out), "--text", "the cat sees the dog .", "--json")
    assert result.exit_code == 0, result.stderr
    layers = json.loads(result.stdout)["layers"]
    assert [len(layer["cell"][0]) for layer in layers] == [24, 16]
    suite = tmp_path / "suite.jsonl"
    write_jsonl(generate_pairs(2, seed=0), suite)
    result = invoke("inspect", str(out), "--find-units", "--suite", str(suite), "--ablate", "1,40")
    assert result.exit_code == 0, result.stderr
    result = invoke("inspect", str(out), "--find-units", "--suite", str(suite), "--ablate", "41")
    assert result.exit_code == 1 and "40 units" in result.stderr


# ---------------------------------------------------------------- everything off


def _old_forward(model: LanguageModel, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The forward pass before the AWD-LSTM options, written out: one dropout rate at three
    kinds of site (embeddings, between layers, output), masks in that order."""
    drop = StreamDropout(model.cfg.dropout).train(model.training)
    h = drop(model.encoder(x))
    for layer, rnn in enumerate(model.rnn.layers):
        if layer > 0:
            h = drop(h)
        h, _ = rnn(h, tuple(s[layer : layer + 1] for s in state))
    return model.decoder(drop(h))


def test_everything_off_is_the_model_as_it_was() -> None:
    model = lm("lstm", nlayers=3, dropout=0.3).train()
    assert list(model.state_dict()) == [
        "encoder.weight",
        *(
            f"rnn.layers.{n}.{w}_l0"
            for n in range(3)
            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ),
        "decoder.weight",
        "decoder.bias",
    ]
    x, state = tokens(), model.init_state(4)
    with masks_for_step(seed=9, step=4, first=0, total=4) as masks:
        logits, _ = model(x, state)
        assert masks.sites_drawn == 4  # input, two between layers, output: nothing new
    with masks_for_step(seed=9, step=4, first=0, total=4):
        assert torch.equal(_old_forward(model, x, state), logits)
    sites = [m for m in model.modules() if isinstance(m, (StreamDropout, EmbeddingDropout, WeightDrop))]
    assert not any(getattr(m, "locked", False) for m in sites)
    cfg = model.cfg
    assert (cfg.input_dropout, cfg.hidden_dropout, cfg.dropoute, cfg.weight_drop) == (0.3, 0.3, 0.0, 0.0)
    assert (cfg.ar_alpha, cfg.tar_beta, cfg.layer_sizes) == (0.0, 0.0, "")
    assert isinstance(model.rnn.layers[0], nn.LSTM)
