"""Budgets and loop features: --max-time, deadline-aware schedules, warm-up, variable BPTT,
gradient accumulation and --patience, on tiny models driven through ``train.train``."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from lstmlm.config import RunConfig
from lstmlm.data.tokens import batchify
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs.events import End, Eval, Event, Save
from lstmlm.training import loop as loop_module
from lstmlm.training import step as step_module
from lstmlm.training import train as train_module
from lstmlm.training.optim import WeightAverage, nonmonotone_trigger
from lstmlm.training.schedule import MIN_WINDOW, epoch_windows, scheduled_lr, total_steps

pytestmark = pytest.mark.usefixtures("one_thread")

NTOKEN = 40


def config(**train: object) -> RunConfig:
    raw = {
        "model": {"ntoken": NTOKEN, "emsize": 8, "nhid": 8, "nlayers": 1, "dropout": 0.2},
        "train": {"bptt": 6, "batch_size": 4, "eval_batch_size": 2, "log_every": 5, "lr": 1.0, **train},
    }
    return RunConfig.from_dict(raw)


class StepClock:
    """A clock that moves ``seconds_per_step`` each training step (the loop's only time source)."""

    def __init__(self, seconds_per_step: float) -> None:
        self.now, self.per_step = 0.0, seconds_per_step

    def __call__(self) -> float:
        return self.now


def train(
    cfg: RunConfig,
    run_dir: Path,
    *,
    clock: StepClock | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    resume: bool = False,
) -> tuple[train_module.TrainState, list[Event], LanguageModel]:
    """Train a seeded tiny model on fixed random ids; each step advances ``clock``."""
    run_dir.mkdir(exist_ok=True)
    ids = torch.randint(0, NTOKEN, (2000,), generator=torch.Generator().manual_seed(0))
    splits = train_module.Splits(
        batchify(ids, cfg.train.batch_size), batchify(ids[:400], cfg.train.eval_batch_size)
    )
    if clock is not None and monkeypatch is not None:
        real_step = loop_module.train_step

        def timed_step(*args: object, **kwargs: object) -> object:
            clock.now += clock.per_step
            return real_step(*args, **kwargs)

        monkeypatch.setattr(loop_module, "train_step", timed_step)
    torch.manual_seed(cfg.train.seed)
    model = LanguageModel(cfg.model)
    seen: list[Event] = []
    checkpoint = ckpt.latest_checkpoint(run_dir) if resume else None
    state = train_module.train(
        cfg,
        model,
        splits,
        run_dir,
        on_event=seen.append,
        resume_from=checkpoint,
        **({"clock": clock} if clock else {}),
    )
    return state, seen, model


def test_max_time_stops_at_the_deadline_with_an_eval_and_a_save(tmp_path: Path, monkeypatch) -> None:
    clock = StepClock(seconds_per_step=10.0)
    state, seen, _ = train(
        config(epochs=50, max_time=1.0), tmp_path / "run", clock=clock, monkeypatch=monkeypatch
    )
    assert state.step == 6  # 6 steps x 10 s reach the 60 s budget
    end = seen[-1]
    assert isinstance(end, End) and end.reason == "time" and end.step == 6
    assert any(isinstance(e, Eval) and e.step == 6 for e in seen)
    assert any(isinstance(e, Save) and e.step == 6 for e in seen)


@pytest.mark.parametrize("eval_every, evals", [(0, [84, 168, 200]), (50, [50, 100, 150, 200])])
def test_evaluations_at_epoch_ends_or_every_n_steps_instead(
    eval_every: int, evals: list[int], tmp_path: Path
) -> None:
    _, seen, _ = train(config(eval_every=eval_every, max_steps=200, epochs=5), tmp_path / "run")  # 84 windows
    assert [e.step for e in seen if isinstance(e, Eval)] == evals


def test_resume_keeps_the_budget_spent(tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    train(config(epochs=50, max_steps=3), run_dir, clock=StepClock(10.0), monkeypatch=monkeypatch)
    state, seen, _ = train(
        config(epochs=50, max_time=1.0), run_dir, clock=StepClock(10.0), monkeypatch=monkeypatch, resume=True
    )
    assert state.step == 6 and seen[-1].reason == "time"  # 30 s were spent before the resume


def test_cosine_and_linear_anneal_to_the_deadline() -> None:
    cfg = config(schedule="cosine", max_time=10.0, epochs=1000)
    half_budget = 5 * 60.0
    assert scheduled_lr(cfg, 1.0, step=1, steps=10**6, elapsed=half_budget) == pytest.approx(0.5)
    assert scheduled_lr(cfg, 1.0, step=1, steps=10**6, elapsed=2 * half_budget) == pytest.approx(0.0)
    assert scheduled_lr(cfg, 1.0, step=5 * 10**5, steps=10**6, elapsed=0.0) == pytest.approx(
        0.5
    )  # steps first
    linear = config(schedule="linear", max_time=10.0)
    assert scheduled_lr(linear, 1.0, step=0, steps=100, elapsed=half_budget / 2) == pytest.approx(0.75)


def test_warmup_ramps_the_lr_linearly() -> None:
    cfg = config(schedule="constant", warmup_steps=4)
    lrs = [scheduled_lr(cfg, 1.0, step=s, steps=100, elapsed=0.0) for s in range(6)]
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_variable_windows_follow_awd_and_tile_the_split() -> None:
    plan = epoch_windows(200_001, 70, True, 1111, 0)
    assert plan == epoch_windows(200_001, 70, True, 1111, 0)  # a resume sees the same windows
    assert plan != epoch_windows(200_001, 70, True, 1111, 1)  # another epoch, other windows
    starts = [first for first, _ in plan]
    assert starts[0] == 0 and all(a + n == b for (a, n), b in zip(plan, starts[1:], strict=False))
    assert plan[-1][0] + plan[-1][1] == 200_000  # every row but the last is an input once
    lengths = [n for _, n in plan[:-1]]
    assert min(lengths) >= MIN_WINDOW
    long = [n for n in lengths if n > 52]  # the bptt-centred ones; the rest are centred on 35
    assert 0.93 < len(long) / len(lengths) < 0.97
    assert abs(statistics.mean(long) - 69.5) < 0.5 and abs(statistics.stdev(long) - 5.0) < 0.3
    fixed = epoch_windows(101, 35, False, 1111, 3)
    assert fixed == ((0, 35), (35, 35), (70, 30))


def test_variable_windows_scale_the_lr_by_their_length(tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[int, float]] = []
    real_step = loop_module.train_step

    def recording_step(model, optimizer, x, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((x.size(0), optimizer.param_groups[0]["lr"]))
        return real_step(model, optimizer, x, *args, **kwargs)

    monkeypatch.setattr(loop_module, "train_step", recording_step)
    cfg = config(bptt=20, variable_bptt=True, schedule="constant", max_steps=12)
    train(cfg, tmp_path / "run")
    assert len({length for length, _ in seen}) > 3
    for length, lr in seen:
        assert lr == pytest.approx(1.0 * length / 20)
    rows = 2000 // 4
    assert total_steps(cfg, rows) == 12
    assert total_steps(config(bptt=20, variable_bptt=True, epochs=2), rows) == sum(
        len(epoch_windows(rows, 20, True, 1111, e)) for e in range(2)
    )


@pytest.mark.parametrize("cell", ["lstm", "gru-eq"])
def test_gradient_accumulation_equals_the_whole_batch(tmp_path: Path, cell: str) -> None:
    """Same streams, same dropout masks; only the summation order of the gradients differs."""
    runs = {}
    for accum in (1, 2, 4):
        cfg = config(grad_accum=accum, max_steps=8, clip=0.0)
        cfg.model.cell = cell
        _, _, model = train(cfg, tmp_path / f"accum{accum}")
        runs[accum] = model.state_dict()
    for accum in (2, 4):
        for name, value in runs[1].items():
            # float32 sums in another order: ~1e-7 relative per step, a few steps of lr 1
            torch.testing.assert_close(runs[accum][name], value, rtol=1e-5, atol=1e-5)


def test_patience_stops_after_evaluations_without_improvement(tmp_path: Path, monkeypatch) -> None:
    losses = iter([3.0, 2.0, 2.5, 2.4, 2.2, 1.0, 0.5])
    monkeypatch.setattr(loop_module, "evaluate_loss", lambda *a, **k: next(losses))
    state, seen, _ = train(config(eval_every=2, patience=3, epochs=50), tmp_path / "run")
    evals = [e for e in seen if isinstance(e, Eval)]
    assert [e.improved for e in evals] == [True, True, False, False, False]
    assert seen[-1].reason == "patience" and state.step == 10


@pytest.mark.parametrize(
    "values, message",
    [({"max_time": 0.0}, "--max-time must be > 0"), ({"grad_accum": 0}, "--grad-accum must be > 0"),
     ({"grad_accum": 3}, "must divide --batch-size"), ({"patience": -1}, "--patience must be >= 0"),
     ({"warmup_steps": -2}, "--warmup-steps must be >= 0")],
)  # fmt: skip
def test_bad_budget_values_are_one_line_errors(values: dict, message: str) -> None:
    with pytest.raises(LstmlmError, match=message):
        config(**values)


def test_no_budget_means_no_deadline() -> None:
    assert config().train.max_time is None
    cfg: Callable[..., RunConfig] = config
    assert math.isclose(scheduled_lr(cfg(schedule="cosine"), 1.0, step=0, steps=10, elapsed=1e9), 1.0)


def test_nonmonotone_trigger_follows_its_condition() -> None:
    assert not nonmonotone_trigger([5.0, 4.0, 3.0], nonmono=2)  # improving
    assert not nonmonotone_trigger([5.0, 6.0], nonmono=2)  # worse, but nothing before the window yet
    assert nonmonotone_trigger([5.0, 4.0, 3.0, 3.5, 3.6, 3.1], nonmono=2)  # 3.1 > min(5, 4, 3, 3.5)
    assert not nonmonotone_trigger([5.0, 4.0, 3.0, 3.5, 3.6, 2.9], nonmono=2)  # a new best
    # 2.9 beats the best before the window (3.0): no switch, though 2.0 inside the window is better
    assert not nonmonotone_trigger([5.0, 4.0, 3.0, 2.0, 3.2, 2.9], nonmono=3)


def test_weight_average_is_the_mean_of_the_iterates() -> None:
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model)
    snapshots = [[p.detach().clone() for p in model.parameters()]]
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update()
        snapshots.append([p.detach().clone() for p in model.parameters()])
    raw = [p.detach().clone() for p in model.parameters()]
    with average.swapped_in():
        for p, *values in zip(model.parameters(), *snapshots, strict=True):
            torch.testing.assert_close(p, torch.stack(values).mean(0))
    assert all(torch.equal(p, r) for p, r in zip(model.parameters(), raw, strict=True))


def scripted_valid_losses(monkeypatch: pytest.MonkeyPatch, losses: list[float]) -> None:
    """Evaluations return ``losses`` in turn (the model's real loss is not what is tested)."""
    calls = iter(losses)
    monkeypatch.setattr(loop_module, "evaluate_loss", lambda *a, **k: next(calls))


def test_ntasgd_switches_then_keeps_and_resumes_the_average(tmp_path: Path, monkeypatch) -> None:
    losses = [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2]  # the switch: at the third evaluation
    cfg = config(optimizer="ntasgd", lr=0.5, nonmono=1, eval_every=3, max_steps=24, epochs=50)
    scripted_valid_losses(monkeypatch, losses)
    _, seen, _ = train(cfg, tmp_path / "whole")
    evals = [e for e in seen if isinstance(e, Eval)]
    assert [e.averaging_from_now for e in evals][:4] == [None, None, True, None]
    assert [e.averaged for e in evals][:4] == [None, None, None, True]

    scripted_valid_losses(monkeypatch, losses)
    train(config(**{**cfg.to_dict()["train"], "max_steps": 12}), tmp_path / "split")
    train(cfg, tmp_path / "split", resume=True)  # the average travels in the checkpoint
    for name in ("model.safetensors", "best.safetensors"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "split" / name).read_bytes()


def test_the_ar_tar_penalty_is_minimised_but_not_reported() -> None:
    cfg = RunConfig.from_dict(
        {
            "model": {
                "ntoken": NTOKEN,
                "emsize": 8,
                "nhid": 8,
                "nlayers": 1,
                "dropout": 0.0,
                "ar_alpha": 2.0,
                "tar_beta": 1.0,
            }
        }
    )
    torch.manual_seed(0)
    model = LanguageModel(cfg.model)
    x, y = torch.randint(0, NTOKEN, (2, 6, 3))
    hidden = model.init_state(3)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    loss, _, _ = step_module.train_step(model, optimizer, x, y, hidden, 0.0, penalty=True)
    ours = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    logits, _, penalty = model(x, hidden, with_penalty=True)
    cross_entropy = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.reshape(-1))
    assert float(penalty.detach()) > 0 and loss == pytest.approx(
        float(cross_entropy.detach())
    )  # reported: the cross-entropy
    (cross_entropy + penalty).backward()  # minimised: cross-entropy + AR + TAR
    for name, p in model.named_parameters():
        torch.testing.assert_close(ours[name], p.grad)
