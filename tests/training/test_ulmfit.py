"""ULMFiT's pieces (Howard & Ruder 2018): the STLR curve, discriminative rates per parameter
group at each step, frozen parameters bit-identical, gradual unfreezing top first, exact resume."""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

import lstmlm
from lstmlm.config import RunConfig, replace
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import folder as run_folder
from lstmlm.runs.events import Event, Log
from lstmlm.runs.load import load_run
from lstmlm.runs.metrics import read_metrics
from lstmlm.runtime.signals import Interrupted
from lstmlm.training import loop as loop_module
from lstmlm.training.launch import plan_run, start_training
from lstmlm.training.layer_groups import Freezing, check_distributed, lr_scales, param_groups, part_of
from lstmlm.training.optim import make_optimizer
from lstmlm.training.schedule import scheduled_lr
from tests.conftest import tiny_config

# Rates computed here and in the loop take the same factors in another order (η·f/F^k against
# η·f·F^-k): they agree to a few ulps, far inside 1e-12 relative, and a wrong group or step
# is off by a factor of F (2.6) or by a whole step of the curve (≥ 1/cut of the range).
REL = 1e-12


def paper_stlr(eta_max: float, t: int, total: int, cut_frac: float, ratio: float) -> float:
    """Howard & Ruder 2018, eq. 3, as printed."""
    cut = math.floor(total * cut_frac)
    p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
    return eta_max * (1 + p * (ratio - 1)) / ratio


def stlr_config(**train: Any) -> RunConfig:
    return RunConfig.from_dict({"train": {"schedule": "stlr", "lr": 0.01, **train}})


def test_stlr_curve_equals_the_papers_formula() -> None:
    config = stlr_config(stlr_cut_frac=0.1, stlr_ratio=32.0)
    for t in (0, 1, 5, 9, 10, 11, 50, 99, 100):
        got = scheduled_lr(config, 0.0, t, 100, elapsed=0.0)
        assert math.isclose(got, paper_stlr(0.01, t, 100, 0.1, 32.0), rel_tol=REL), t
    assert math.isclose(scheduled_lr(config, 0.0, 10, 100, 0.0), 0.01, rel_tol=REL)  # the peak at cut
    assert math.isclose(scheduled_lr(config, 0.0, 0, 100, 0.0), 0.01 / 32, rel_tol=REL)  # η_max / ratio
    assert math.isclose(scheduled_lr(config, 0.0, 100, 100, 0.0), 0.01 / 32, rel_tol=REL)


def test_stlr_guards_runs_the_paper_never_meets() -> None:
    """T < 1/cut_frac (cut would be 0), and floor(T·cut_frac) < T·cut_frac (the fall would overshoot)."""
    for total, cut_frac in ((5, 0.1), (25, 0.1), (7, 0.3)):
        config = stlr_config(stlr_cut_frac=cut_frac, stlr_ratio=8.0)
        rates = [scheduled_lr(config, 0.0, t, total, 0.0) for t in range(total + 1)]
        assert min(rates) == pytest.approx(0.01 / 8, rel=REL) and max(rates) == pytest.approx(0.01, rel=REL)


def tiny_model(nlayers: int = 2, **model: Any) -> tuple[LanguageModel, RunConfig]:
    config = RunConfig.from_dict(
        {"model": {"emsize": 8, "nhid": 8, "nlayers": nlayers, "ntoken": 30, **model}}
    )
    torch.manual_seed(0)
    return LanguageModel(config.model), config


@pytest.mark.parametrize("cell", ["lstm", "lstm-eq", "mlstm"])
def test_every_parameter_is_in_one_group_with_its_parts_scale(cell: str) -> None:
    model, config = tiny_model(cell=cell, tied=False)
    config = replace(config, train={"layer_lr_decay": 2.6})
    groups = param_groups(model, config)
    assert [g["part"] for g in groups] == ["embedding", "rnn.0", "rnn.1", "decoder"]
    assert [g["lr_scale"] for g in groups] == [2.6**-3, 2.6**-2, 2.6**-1, 1.0]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    one = param_groups(model, replace(config, train={"layer_lr_decay": 1.0}))  # the old checkpoints' layout
    assert len(one) == 1 and [id(p) for p in one[0]["params"]] == [id(p) for p in model.parameters()]
    assert lr_scales(1, 2.0) == {"embedding": 0.25, "rnn.0": 0.5, "decoder": 1.0}


def test_a_tied_matrix_is_frozen_with_either_part() -> None:
    model, config = tiny_model(tied=True)
    for frozen, encoder_trains in (("decoder", False), ("embedding", False), ("rnn.0", True)):
        Freezing(model, replace(config, train={"freeze": frozen})).apply(0)
        trains = {name: p.requires_grad for name, p in model.named_parameters()}
        assert trains["encoder.weight"] is encoder_trains, frozen
        assert trains["decoder.bias"] is (frozen != "decoder"), frozen
    untied, config = tiny_model(tied=False)
    Freezing(untied, replace(config, train={"freeze": "decoder"})).apply(0)
    assert untied.encoder.weight.requires_grad and not untied.decoder.weight.requires_grad


@dataclass
class Recorder:
    """Wraps the loop's ``train_step``: each step's group rates and training parts, the weights before
    the first update, and the model (which holds the final weights once training returns)."""

    rates: list[dict[str, float]] = field(default_factory=list)
    training: list[set[str]] = field(default_factory=list)
    initial: dict[str, torch.Tensor] = field(default_factory=dict)
    model: torch.nn.Module | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_step = loop_module.train_step

        def recording(model: torch.nn.Module, optimizer: torch.optim.Optimizer, *args: Any, **kw: Any) -> Any:
            if self.model is None:
                self.model = model
                self.initial = {n: p.detach().clone() for n, p in model.named_parameters()}
            self.rates.append({g["part"]: g["lr"] for g in optimizer.param_groups})
            self.training.append({part_of(n) for n, p in model.named_parameters() if p.requires_grad})
            return real_step(model, optimizer, *args, **kw)

        monkeypatch.setattr(loop_module, "train_step", recording)

    def unchanged(self) -> set[str]:
        assert self.model is not None
        return {n for n, p in self.model.named_parameters() if torch.equal(p, self.initial[n])}


def test_param_groups_carry_stlr_times_the_layer_decay_and_thaw_top_first(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = {"schedule": "stlr", "lr": 2.0, "stlr_cut_frac": 0.2, "layer_lr_decay": 2.6, "unfreeze_every": 4,
             "max_steps": 20, "eval_every": 10}  # fmt: skip
    config = replace(tiny_config(tiny_corpus, **train), model={"nlayers": 2, "tied": False})
    recorder = Recorder()
    recorder.install(monkeypatch)
    start_training(tmp_path / "run", config, resume=False, overwrite=False)
    depth = {"decoder": 0, "rnn.1": 1, "rnn.0": 2, "embedding": 3}
    top_first = ["decoder", "rnn.1", "rnn.0", "embedding"]
    assert len(recorder.rates) == 20
    for step, (rates, training) in enumerate(zip(recorder.rates, recorder.training, strict=True)):
        for part, lr in rates.items():
            want = paper_stlr(2.0, step, 20, 0.2, 32.0) / 2.6 ** depth[part]
            assert math.isclose(lr, want, rel_tol=REL), (step, part, lr, want)
        assert training == set(top_first[: 1 + step // 4]), step
    assert recorder.unchanged() == set()  # the embedding thawed at step 12: everything trained since


@pytest.mark.parametrize(
    ("optimizer", "extra"),
    [("sgd", {}), ("adamw", {"lr": 0.01}), ("ntasgd", {"lr": 1.0, "nonmono": 1, "eval_every": 5})],
)
def test_frozen_parameters_stay_bit_identical(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, optimizer: str, extra: dict
) -> None:
    """Weight decay on (SGD's L2, AdamW's decoupled), clipping on, NT-ASGD's average once switched."""
    train = {
        "optimizer": optimizer,
        "weight_decay": 0.1,
        "freeze": "embedding,rnn.0",
        "max_steps": 30,
        **extra,
    }
    config = replace(tiny_config(tiny_corpus, **train), model={"nlayers": 2, "tied": True})
    recorder = Recorder()
    recorder.install(monkeypatch)
    start_training(tmp_path / "run", config, resume=False, overwrite=False)
    # tied: the shared matrix is the embedding's, frozen; the decoder's bias trains
    frozen = {n for n in recorder.initial if part_of(n) in ("embedding", "rnn.0")}
    assert frozen and recorder.unchanged() == frozen
    best = dict(load_run(tmp_path / "run", best=True).model.named_parameters())  # averaged for ntasgd
    assert all(torch.equal(best[n], recorder.initial[n]) for n in frozen)
    if optimizer == "ntasgd":
        evals = [r for r in read_metrics(tmp_path / "run" / run_folder.METRICS) if r["event"] == "eval"]
        assert any(r.get("averaged") for r in evals)  # the average did run over the frozen weights


def test_a_resumed_run_with_the_ulmfit_pieces_is_bit_identical(tiny_corpus: Path, tmp_path: Path) -> None:
    """What trains and each group's rate are functions of the step; the optimizer's groups reload."""
    train = {"optimizer": "adamw", "lr": 0.01, "schedule": "stlr", "layer_lr_decay": 2.6, "unfreeze_every": 9,
             "freeze": "rnn.0", "max_steps": 50, "eval_every": 10, "log_every": 5}  # fmt: skip
    config = replace(tiny_config(tiny_corpus, **train), model={"nlayers": 2})
    start_training(tmp_path / "whole", config, resume=False, overwrite=False)

    def interrupt_at_20(event: Event) -> None:  # a signal mid-run (a shorter first session would
        if isinstance(event, Log) and event.step == 20:  # change T, and so the STLR curve)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted):
        start_training(tmp_path / "cut", config, resume=False, overwrite=False, on_event=interrupt_at_20)
    for changed in ({"layer_lr_decay": 2.0}, {"unfreeze_every": 5}, {"freeze": ""}, {"stlr_ratio": 4.0}):
        with pytest.raises(LstmlmError, match="cannot resume .* with changed settings"):
            plan_run(tmp_path / "cut", {}, {"train": changed}, resume=True, overwrite=False)
    start_training(tmp_path / "cut", config, resume=True, overwrite=False)
    for name in (run_folder.MODEL, run_folder.BEST):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name


def test_lstmlm_train_takes_the_options_and_refuses_a_frozen_model(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = {"emsize": 16, "nhid": 16, "nlayers": 1, "bptt": 8, "batch_size": 4, "max_steps": 12}
    with pytest.raises(LstmlmError, match="freezes the whole model") as caught:
        lstmlm.train(data=tiny_corpus, out=tmp_path / "bad", freeze="embedding,rnn.0,decoder", **tiny)
    assert "\n" not in str(caught.value) and not (tmp_path / "bad").exists()
    recorder = Recorder()
    recorder.install(monkeypatch)
    lm = lstmlm.train(data=tiny_corpus, out=tmp_path / "run", freeze="rnn.0", **tiny)
    assert lm.run.config.train.freeze == "rnn.0"
    assert recorder.unchanged() == {n for n in recorder.initial if n.startswith("rnn.layers.0.")}


def test_gradual_unfreezing_is_refused_under_torchrun() -> None:
    config = RunConfig.from_dict({"train": {"unfreeze_every": 10}})
    with pytest.raises(LstmlmError, match="--unfreeze-every does not run under torchrun"):
        check_distributed(config.train, distributed=True)
    check_distributed(config.train, distributed=False)
    check_distributed(RunConfig.from_dict({"train": {"freeze": "embedding"}}).train, distributed=True)


def test_a_one_group_optimizer_state_of_an_older_run_loads_and_trains_at_the_lr() -> None:
    """Runs from before these options saved one group without ``lr_scale``: it still loads, scale 1."""
    model, config = tiny_model()
    older = torch.optim.SGD(model.parameters(), lr=20.0)  # make_optimizer before --layer-lr-decay
    optimizer = make_optimizer(model, config)
    optimizer.load_state_dict(older.state_dict())
    assert "lr_scale" not in optimizer.param_groups[0]  # the loop reads it with .get(..., 1.0)
    with pytest.raises(ValueError):  # a per-part layout is refused, not silently mixed up
        make_optimizer(model, replace(config, train={"layer_lr_decay": 2.6})).load_state_dict(
            older.state_dict()
        )
