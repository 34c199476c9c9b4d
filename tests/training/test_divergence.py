"""Divergence is said, not hidden: a loss that runs away past max(log V, the start) + log 10
stops the run (or flags it at its last evaluation), exits 3 and says "diverged"; a normal
run, and a loss that merely starts high, are not flagged."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import Result

from lstmlm.config import RunConfig
from lstmlm.data.tokens import batchify
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import events
from lstmlm.runs import folder as run_folder
from lstmlm.training import loop as loop_module
from lstmlm.training import train as train_module
from lstmlm.training.loop import DIVERGED_IN_A_ROW, DIVERGENCE_MARGIN
from tests.conftest import TINY_FLAGS, invoke
from tests.conftest import events as records

pytestmark = pytest.mark.usefixtures("one_thread")

NTOKEN = 40
RUNAWAY = ["--lr", "1e4", "--clip", "0"]  # SGD without clipping: finite losses in the hundreds and up


def train_cli(corpus: Path, out: Path, *flags: str) -> Result:
    return invoke("train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, *flags)


def test_a_runaway_loss_stops_the_run_as_diverged_and_exits_3(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train_cli(tiny_corpus, out, *RUNAWAY)  # logs every 10 steps
    assert result.exit_code == 3, result.output
    assert "training diverged: train loss" in " ".join(result.stderr.split())
    assert "diverged" in result.stdout.split("Training summary")[1]  # the summary's result row
    (end,) = records(out, "end")
    assert end["diverged"] is True and end["reason"] == "diverged" and end["step"] == 3 * 10
    (found,) = records(out, "diverged")
    assert found["split"] == "train" and found["in_a_row"] == DIVERGED_IN_A_ROW
    assert found["loss"] > found["limit"]
    assert [e["step"] for e in records(out, "log")] == [10, 20, 30]  # stopped: the budget was 60
    assert ckpt.latest_checkpoint(out).step == 30  # evaluated and saved as at a deadline, kept
    assert (out / run_folder.BEST).exists()


def test_a_run_too_short_to_stop_is_flagged_at_its_last_evaluation(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train_cli(tiny_corpus, out, *RUNAWAY, "--max-steps", "20")  # two log intervals
    assert result.exit_code == 3, result.output
    assert "training diverged: valid loss" in " ".join(result.stderr.split())
    (end,) = records(out, "end")
    assert end["diverged"] is True and end["reason"] == "steps" and end["step"] == 20
    assert records(out, "diverged")[0]["split"] == "valid"


def test_the_tiny_default_run_is_not_flagged(trained_run: Path) -> None:
    (end,) = records(trained_run, "end")
    assert end["diverged"] is False and end["reason"] == "steps"
    assert not records(trained_run, "diverged")


# ---------------------------------------------------------------- the rule, on fixed random ids


def config(**train: object) -> RunConfig:
    raw = {
        "model": {"ntoken": NTOKEN, "emsize": 8, "nhid": 8, "nlayers": 1, "dropout": 0.0},
        "train": {"bptt": 6, "batch_size": 4, "eval_batch_size": 2, "log_every": 5, "max_steps": 30, **train},
    }
    return RunConfig.from_dict(raw)


def train(
    cfg: RunConfig, run_dir: Path, monkeypatch: pytest.MonkeyPatch, offset: Callable[[int], float]
) -> tuple[train_module.TrainState, list[events.Event]]:
    """Train a seeded tiny model; the loss each step reports is raised by ``offset(step)`` nats
    (the gradients are the true ones: only what the guard sees changes)."""
    real_step, calls = loop_module.train_step, [0]

    def raised(*args: object, **kwargs: object) -> object:
        loss, norm, hidden = real_step(*args, **kwargs)
        calls[0] += 1
        return loss + offset(calls[0]), norm, hidden

    monkeypatch.setattr(loop_module, "train_step", raised)
    ids = torch.randint(0, NTOKEN, (2000,), generator=torch.Generator().manual_seed(0))
    splits = train_module.Splits(
        batchify(ids, cfg.train.batch_size), batchify(ids[:400], cfg.train.eval_batch_size)
    )
    torch.manual_seed(cfg.train.seed)
    seen: list[events.Event] = []
    run_dir.mkdir()
    state = train_module.train(cfg, LanguageModel(cfg.model), splits, run_dir, on_event=seen.append)
    return state, seen


def test_a_demo_like_start_is_near_log_v_and_far_below_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(optimizer="adamw", lr=0.01, log_every=1, max_steps=10)  # the demo's optimizer, every step
    state, seen = train(cfg, tmp_path / "run", monkeypatch, lambda step: 0.0)
    assert abs(state.start_loss - math.log(NTOKEN)) < 0.1
    limit = math.log(NTOKEN) + DIVERGENCE_MARGIN
    assert all(e.loss < limit - 2 for e in seen if isinstance(e, events.Log))
    assert state.diverged is None and isinstance(seen[-1], events.End) and not seen[-1].diverged


def test_a_loss_that_starts_high_is_the_reference_not_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An xLSTM stack starts up to 12 nats above log V: the limit is measured from its start."""
    state, seen = train(config(), tmp_path / "run", monkeypatch, lambda step: 8.0)
    assert state.start_loss > math.log(NTOKEN) + DIVERGENCE_MARGIN
    assert state.diverged is None and not any(isinstance(e, events.Diverged) for e in seen)


def test_two_high_intervals_are_a_spike_three_are_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spike, _ = train(config(), tmp_path / "spike", monkeypatch, lambda step: 8.0 if 6 <= step <= 15 else 0.0)
    assert spike.diverged is None and spike.step == 30 and spike.high_losses_in_a_row == 0

    state, seen = train(config(), tmp_path / "away", monkeypatch, lambda step: 8.0 if step >= 6 else 0.0)
    assert state.step == 20  # the logs at 10, 15 and 20 were above the limit
    (found,) = [e for e in seen if isinstance(e, events.Diverged)]
    assert (found.step, found.split, found.in_a_row) == (20, "train", 3)
    assert found.limit == pytest.approx(max(math.log(NTOKEN), state.start_loss) + math.log(10))
    end = seen[-1]
    assert isinstance(end, events.End) and end.reason == "diverged" and end.diverged
    assert state.diverged is not None and "3 log intervals in a row" in state.diverged


def test_diverged_records_read_back() -> None:
    found = events.Diverged(step=30, epoch=1, split="train", loss=1e30, limit=5.1, in_a_row=3)
    assert events.from_record(found.to_record()) == found
    end = events.End(step=30, epoch=1, best_valid_ppl=9.0, tokens=9, elapsed=1.0, ranks_in_sync=True)
    assert events.from_record({**end.to_record(), "diverged": True}) == events.End(
        **{**end.__dict__, "diverged": True}
    )
    older = {k: v for k, v in end.to_record().items() if k != "diverged"}
    assert events.from_record(older) == end  # records before the guard read as not diverged
