"""Crash safety: SIGKILL anywhere (even mid-save), resume, and end bit-identical; damaged files."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstmlm.files import WriteError
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs import load as runs
from lstmlm.runs.metrics import read_metrics
from tests.conftest import invoke, make_untrained_run

STEPS = 60
SETTINGS = {
    "emsize": 16, "nhid": 16, "nlayers": 1, "bptt": 8, "batch-size": 4, "max-steps": STEPS,
    "log-every": 5, "eval-every": 20, "save-every": 5, "dropout": 0.1, "device": "cpu",
}  # fmt: skip


def flags(**changes: object) -> list[str]:
    """The tiny run's flags, with some settings changed (``max_steps=20``)."""
    settings = {**SETTINGS, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return [item for key, value in settings.items() for item in (f"--{key}", str(value))]


def train_command(corpus: Path, out: Path, *extra: str, **changes: object) -> list[str]:
    command = [sys.executable, "-m", "lstmlm", "train", "--data", str(corpus), "--out", str(out)]
    return [*command, *flags(**changes), *extra]


def run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def logged_steps(out: Path) -> list[int]:
    return [r["step"] for r in read_metrics(out / run_folder.METRICS) if r["event"] == "log"]


def kill_when_step_reached(cmd: list[str], out: Path, step: int) -> None:
    """Start training and SIGKILL it once metrics show ``step`` (mid-step, mid-save: wherever)."""
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists() and any(s >= step for s in logged_steps(out)):
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_sigkill_at_random_points_and_mid_save_then_resume_is_bit_identical(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    assert run(train_command(tiny_corpus, reference)).returncode == 0

    crashed = tmp_path / "crashed"
    # 1. killed in the middle of the save at step 25 (between renaming the old and new files)
    result = run(train_command(tiny_corpus, crashed), LSTMLM_CRASH_AT="save:25")
    assert result.returncode == -signal.SIGKILL
    assert ckpt.latest_checkpoint(crashed).step == 20
    # 2. resumed, then killed from outside at a random later point
    kill_when_step_reached(train_command(tiny_corpus, crashed, "--resume"), crashed, random.randint(30, 50))
    # 3. resumed to the end
    result = run(train_command(tiny_corpus, crashed, "--resume"))
    assert result.returncode == 0, result.stderr

    assert (crashed / run_folder.MODEL).read_bytes() == (reference / run_folder.MODEL).read_bytes()
    assert (crashed / run_folder.BEST).read_bytes() == (reference / run_folder.BEST).read_bytes()
    assert logged_steps(crashed) == list(range(5, STEPS + 1, 5))  # none missing, none twice


@pytest.mark.slow
def test_sigterm_saves_and_exits_143(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        train_command(tiny_corpus, out, max_steps=100000, save_every=0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and logged_steps(out)) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "checkpoint saved" in stderr
    assert ckpt.latest_checkpoint(out).step >= 5


def test_damaged_latest_checkpoint_falls_back_to_previous(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    short = flags(max_steps=20)
    assert invoke("train", "--data", str(tiny_corpus), "--out", str(out), *short).exit_code == 0
    model = out / run_folder.MODEL
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # truncated by a full disk
    with pytest.raises(Exception, match="model.safetensors"):
        ckpt.read_weights(model)
    latest = ckpt.latest_checkpoint(out)
    assert latest.step == 15 and "model.safetensors" in latest.problems[0]

    resumed = invoke("train", "--out", str(out), "--resume", *flags(max_steps=25))
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming from step 15: the checkpoint of step 20 could not be used" in resumed.stderr
    assert "steps 16–20 will be trained again" in resumed.stderr
    assert ckpt.latest_checkpoint(out).step == 25

    (out / run_folder.BEST).write_bytes(b"garbage")
    result = invoke("eval", str(out))
    assert result.exit_code == 1 and "best.safetensors" in result.stderr
    (out / run_folder.STATE).write_bytes(b"\x00" * 10)
    (out / run_folder.PREV_STATE).write_bytes(b"\x00" * 10)
    result = invoke("train", "--out", str(out), "--resume")
    assert result.exit_code == 1 and "train_state" in result.stderr


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    tiny = flags(max_steps=5)
    with run_folder.run_lock(out):
        result = invoke("train", "--data", str(tiny_corpus), "--out", str(out), *tiny)
    assert result.exit_code == 1
    assert f"pid {os.getpid()}" in result.stderr and "another lstmlm train" in result.stderr
    assert not (out / run_folder.CONFIG).exists()  # the refused run wrote nothing

    (out / run_folder.LOCK).write_text("999999\n")  # left behind by a process that died
    result = invoke("train", "--data", str(tiny_corpus), "--out", str(out), *tiny)
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / run_folder.CONFIG).read_text())["train"]["max_steps"] == 5


def test_fallback_warning_names_the_lost_steps(tiny_corpus: Path, tmp_path: Path) -> None:
    out = make_untrained_run(tmp_path / "run", tiny_corpus)
    (out / run_folder.MODEL).write_bytes(b"garbage")
    damaged = f"{out / run_folder.MODEL}: damaged"
    previous = ckpt.Checkpoint({}, {}, 15, out / run_folder.PREV_MODEL, [damaged], fell_back=True)
    assert ckpt.fallback_warning(out, previous) == (
        f"resuming from step 15: the newest checkpoint could not be used ({damaged}); "
        "the steps after 15 will be trained again"
    )
    (out / run_folder.METRICS).write_text('{"event": "log", "step": 20}\n{"event": "log", "step": 25}\n{"ev')
    assert "steps 16–25 will be trained again" in ckpt.fallback_warning(out, previous)  # from metrics
    readable = ckpt.Checkpoint({}, {}, 15, out / run_folder.PREV_MODEL, [damaged], 30, fell_back=True)
    assert "the checkpoint of step 30 could not be used" in ckpt.fallback_warning(out, readable)
    assert "steps 16–30 will be trained again" in ckpt.fallback_warning(out, readable)  # the readable half


def saved_pairs(tiny_corpus: Path, out: Path) -> Path:
    """A run of 20 steps saved every 5: model/train_state of step 20, their .prev of step 15."""
    assert invoke("train", "--data", str(tiny_corpus), "--out", str(out), *flags(max_steps=20)).exit_code == 0
    return out


@pytest.mark.parametrize(
    "newest", ["state of another step", "state missing"], ids=["another-step", "missing-state"]
)
def test_a_newest_half_without_its_partner_falls_back_and_says_what_is_lost(
    tiny_corpus: Path, tmp_path: Path, newest: str
) -> None:
    out = saved_pairs(tiny_corpus, tmp_path / "run")
    if newest == "state missing":  # killed between renaming the new weights and the new state
        (out / run_folder.STATE).unlink()
    else:  # the newest weights belong to another step than the newest state
        (out / run_folder.STATE).write_bytes((out / run_folder.PREV_STATE).read_bytes())
    latest = ckpt.latest_checkpoint(out)
    assert (latest.step, latest.newest_step, latest.fell_back) == (15, 20, True)
    assert latest.problems == [
        f"{out / run_folder.MODEL} is of step 20, but no training state of that step exists"
    ]

    resumed = invoke("train", "--out", str(out), "--resume", *flags(max_steps=25))
    assert resumed.exit_code == 0, resumed.stderr
    warning = " ".join(resumed.stderr.split())  # the console wraps long lines
    assert "resuming from step 15: the checkpoint of step 20 could not be used" in warning
    assert "steps 16–20 will be trained again" in warning
    assert ckpt.latest_checkpoint(out).step == 25


def test_a_damaged_fallback_alone_loses_no_steps(tiny_corpus: Path, tmp_path: Path) -> None:
    out = saved_pairs(tiny_corpus, tmp_path / "run")
    (out / run_folder.PREV_MODEL).write_bytes(b"garbage")
    latest = ckpt.latest_checkpoint(out)
    assert (latest.step, latest.fell_back) == (20, False)
    warning = ckpt.fallback_warning(out, latest)
    assert "model.prev.safetensors" in warning and "resuming from the latest one, step 20" in warning
    assert "trained again" not in warning


def test_full_disk_while_saving_keeps_the_checkpoint(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = make_untrained_run(tmp_path / "run", tiny_corpus)
    run = runs.load_run(out)
    ckpt.save_checkpoint(out, run.model, {}, 5)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteError, match="No space") as failure:
        ckpt.save_checkpoint(out, run.model, {}, 10)
    assert failure.value.filename == str(out / run_folder.MODEL)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp files, nothing moved
