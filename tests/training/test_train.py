"""Training loop: learning, determinism, exact resume after an interruption, NaN guard."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from lstmlm.config import replace
from lstmlm.errors import LstmlmError
from lstmlm.evaluation.perplexity import evaluate_split
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs import load as runs
from lstmlm.runs.events import Event, Log
from lstmlm.runs.load import run_split
from lstmlm.runs.metrics import read_metrics
from lstmlm.runtime.signals import Interrupted
from lstmlm.training import loop as loop_module
from lstmlm.training.launch import start_training
from tests.conftest import tiny_config


def test_training_lowers_perplexity_below_untrained_and_vocab(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_corpus, max_steps=80)
    outcome = start_training(tmp_path / "run", config, resume=False, overwrite=False)
    run = runs.load_run(tmp_path / "run")
    split = run_split(run, "valid", None)
    trained = evaluate_split(run.model, split, run.config, "valid", "word").perplexity
    torch.manual_seed(0)
    untrained = evaluate_split(LanguageModel(run.config.model), split, run.config, "valid", "word")
    assert trained < untrained.perplexity
    assert trained < run.tokenizer.vocab_size
    assert outcome.test is not None and outcome.test.perplexity < untrained.perplexity


def test_same_seed_gives_identical_weights(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_corpus, max_steps=25)
    for name in ("a", "b"):
        start_training(tmp_path / name, config, resume=False, overwrite=False)
    a = (tmp_path / "a" / run_folder.MODEL).read_bytes()
    assert a == (tmp_path / "b" / run_folder.MODEL).read_bytes()
    other = replace(config, train={"seed": 7})
    start_training(tmp_path / "c", other, resume=False, overwrite=False)
    assert a != (tmp_path / "c" / run_folder.MODEL).read_bytes()


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_interrupted_then_resumed_run_is_bit_identical(
    tiny_corpus: Path, tmp_path: Path, schedule: str
) -> None:
    config = tiny_config(tiny_corpus, max_steps=50, schedule=schedule, eval_every=15)
    start_training(tmp_path / "whole", config, resume=False, overwrite=False)

    def interrupt_at_20(event: Event) -> None:
        if isinstance(event, Log) and event.step == 20:  # a signal mid-run, handled between windows
            os.kill(os.getpid(), signal.SIGINT)

    config_log = replace(config, train={"log_every": 5})
    with pytest.raises(Interrupted) as stopped:
        start_training(tmp_path / "cut", config_log, resume=False, overwrite=False, on_event=interrupt_at_20)
    assert stopped.value.exit_code == 130
    assert ckpt.latest_checkpoint(tmp_path / "cut").step == 20
    start_training(tmp_path / "cut", config_log, resume=True, overwrite=False)
    whole = (tmp_path / "whole" / run_folder.MODEL).read_bytes()
    assert whole == (tmp_path / "cut" / run_folder.MODEL).read_bytes()
    steps = [r["step"] for r in read_metrics(tmp_path / "cut" / run_folder.METRICS) if r["event"] == "log"]
    assert steps == sorted(set(steps)) and steps[-1] == 50


def test_nonfinite_steps_are_skipped_and_the_good_checkpoint_kept(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tiny_corpus, max_steps=10, eval_every=10, max_bad_steps=3)
    start_training(tmp_path / "good", config, resume=False, overwrite=False)

    real_step = loop_module.train_step
    calls = {"n": 0}

    def poisoned_after_12(*args, **kwargs):  # NaN injection: every step from the 13th on
        loss, norm, hidden = real_step(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 12:
            loss = loss * float("nan")
        return loss, norm, hidden

    monkeypatch.setattr(loop_module, "train_step", poisoned_after_12)
    long = replace(config, train={"max_steps": 40})
    with pytest.raises(LstmlmError, match="3 non-finite steps in a row at step 15"):
        start_training(tmp_path / "bad", long, resume=False, overwrite=False)
    events = [r["event"] for r in read_metrics(tmp_path / "bad" / run_folder.METRICS)]
    assert events.count("nonfinite") == 3
    latest = ckpt.latest_checkpoint(tmp_path / "bad")
    assert latest is not None and latest.step == 10
    assert (tmp_path / "bad" / run_folder.MODEL).read_bytes() == (
        tmp_path / "good" / run_folder.MODEL
    ).read_bytes()


def test_resume_refuses_a_changed_model(tiny_corpus: Path, tmp_path: Path) -> None:
    from lstmlm.training.launch import plan_run

    config = tiny_config(tiny_corpus, max_steps=10)
    start_training(tmp_path / "run", config, resume=False, overwrite=False)
    with pytest.raises(LstmlmError, match="model.nhid"):
        plan_run(tmp_path / "run", {}, {"model": {"nhid": 32, "emsize": 32}}, resume=True, overwrite=False)
    ok = plan_run(tmp_path / "run", {}, {"train": {"max_steps": 20}}, resume=True, overwrite=False)
    assert ok.train.max_steps == 20
    with pytest.raises(LstmlmError, match="already holds a run"):
        plan_run(tmp_path / "run", {}, {}, resume=False, overwrite=False)


AWD_MODEL = {"locked_dropout": True, "dropouti": 0.2, "dropouth": 0.2, "dropoute": 0.1, "weight_drop": 0.3,
             "ar_alpha": 2.0, "tar_beta": 1.0, "nlayers": 2}  # fmt: skip
AWD_TRAIN = {"variable_bptt": True, "grad_accum": 2, "optimizer": "ntasgd", "lr": 1.0, "nonmono": 1}


def test_a_resumed_run_with_every_awd_piece_is_bit_identical(tiny_corpus: Path, tmp_path: Path) -> None:
    """Masks from (seed, step, site), windows from (seed, epoch), the average in the checkpoint."""
    config = replace(tiny_config(tiny_corpus, max_steps=50, eval_every=5), model=AWD_MODEL, train=AWD_TRAIN)
    start_training(tmp_path / "whole", config, resume=False, overwrite=False)
    start_training(tmp_path / "cut", replace(config, train={"max_steps": 20}), resume=False, overwrite=False)
    start_training(tmp_path / "cut", config, resume=True, overwrite=False)
    for name in (run_folder.MODEL, run_folder.BEST):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name
    evals = [r for r in read_metrics(tmp_path / "whole" / run_folder.METRICS) if r["event"] == "eval"]
    assert any(r.get("averaged") for r in evals)  # NT-ASGD switched, so the average was resumed
