"""Typed training events: metrics.jsonl records, reading them back, and the save records."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import events
from lstmlm.runs import folder as run_folder
from lstmlm.runs.events import Eval, Log, Save, Start, from_record
from lstmlm.runs.metrics import MetricsLog, read_events, read_metrics
from lstmlm.training.launch import start_training
from tests.conftest import tiny_config

EXAMPLES = [
    events.Resume(step=50, epoch=1, lr=20.0),
    Start(step=0, epoch=1, total_steps=60, windows_per_epoch=66, parameters=2465, device="cpu"),
    Log(step=5, epoch=1, loss=3.1, ppl=22.2, lr=20.0, tokens_per_s=98.0, total_steps=60, elapsed=0.4),
    Log(
        step=5,
        epoch=1,
        loss=3.1,
        ppl=22.2,
        lr=20.0,
        tokens_per_s=98.0,
        total_steps=60,
        elapsed=0.4,
        loss_scale=128.0,
        overflow_skips=3,
    ),
    events.NonFinite(step=8, epoch=1, loss=math.inf, grad_norm=math.inf, lr=1.0),
    Eval(
        step=15,
        epoch=1,
        valid_loss=2.4,
        valid_ppl=11.0,
        best_valid_ppl=11.0,
        lr=20.0,
        improved=True,
        annealed=False,
    ),
    Save(step=15, epoch=1),
    events.Unsaved(step=16, epoch=1, reason="non-finite weights; the previous checkpoint is kept"),
    events.End(step=60, epoch=1, best_valid_ppl=3.4, tokens=1920, elapsed=2.0, ranks_in_sync=True),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_every_kind_reads_back_from_its_record(event: events.Event) -> None:
    record = event.to_record()
    assert list(record)[:3] == ["event", "step", "epoch"] and record["event"] == event.kind
    assert from_record(record) == event
    assert events.KINDS[event.kind] is type(event)


def test_records_keep_the_keys_older_readers_know() -> None:
    plain, scaled = EXAMPLES[2], EXAMPLES[3]
    assert list(plain.to_record()) == [
        "event",
        "step",
        "epoch",
        "loss",
        "ppl",
        "lr",
        "tokens_per_s",
        "total_steps",
        "elapsed",
    ]
    assert list(scaled.to_record())[-2:] == ["loss_scale", "overflow_skips"]
    assert Save(step=3, epoch=2).to_record() == {"event": "save", "step": 3, "epoch": 2}


def test_from_record_skips_what_it_cannot_type() -> None:
    assert from_record({"event": "start", "step": 0}) is None  # fields missing
    assert from_record({"event": "party", "step": 1, "epoch": 1}) is None
    assert from_record({"event": ["log"], "step": 1}) is None
    assert from_record({"step": 1}) is None
    old = {
        "event": "start",
        "step": 0,
        "epoch": 1,
        "total_steps": 9,
        "windows_per_epoch": 3,
        "parameters": 10,
        "device": "cpu",
        "later_field": 1,
    }
    assert from_record(old) == Start(
        step=0, epoch=1, total_steps=9, windows_per_epoch=3, parameters=10, device="cpu"
    )


def test_truncating_keeps_the_save_of_the_resume_step(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in (5, 10, 15):
        log.write(Save(step=step, epoch=1))
    log.truncate_after(10)
    assert read_events(log.path) == [Save(step=5, epoch=1), Save(step=10, epoch=1)]


def test_saves_reach_metrics_and_match_the_checkpoints(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen: list[events.Event] = []
    config = tiny_config(tiny_corpus, max_steps=20, save_every=5, eval_every=10)
    start_training(out, config, resume=False, overwrite=False, on_event=seen.append)
    recorded = read_events(out / run_folder.METRICS)
    assert len(recorded) == len(read_metrics(out / run_folder.METRICS))  # every record is typed
    assert [e.kind for e in recorded] == [e.kind for e in seen]  # one emit: the file and the callback
    assert [e.step for e in recorded if isinstance(e, Save)] == [5, 10, 15, 20]
    assert ckpt.latest_checkpoint(out).step == 20
