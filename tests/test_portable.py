"""Results and paths that hold on any machine: moved runs, changed data, signals, failed starts,
bf16 without the CPU kernel, and dropout masks independent of the process layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lstmlm.config import ModelConfig
from lstmlm.errors import LstmlmError
from lstmlm.model.dropout import StreamDropout, masks_for_step
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import folder as run_folder
from lstmlm.runs.metrics import read_metrics
from lstmlm.runs.provenance import DATA_RECORD
from lstmlm.runtime import precision as precision_module
from lstmlm.runtime.precision import resolve_precision
from lstmlm.training.launch import start_training

from .conftest import TINY_FLAGS, tiny_config, tiny_lines

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def lstmlm(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "lstmlm", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def write_corpus(path: Path, lines: int, seed: int) -> Path:
    path.write_text("\n".join(tiny_lines(lines, seed)) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- runs that move


def test_a_run_keeps_using_its_own_data_from_any_folder(tmp_path: Path) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    write_corpus(here / "corpus.txt", 400, seed=1)
    write_corpus(elsewhere / "corpus.txt", 60, seed=9)  # same name, other text
    run = tmp_path / "run"
    trained = lstmlm(
        "train", "--data", "corpus.txt", "--out", str(run), *TINY_FLAGS, "--device", "cpu", cwd=here
    )
    assert trained.returncode == 0, trained.stderr
    assert run_folder.read_config(run).data.data == str((here / "corpus.txt").resolve())
    scores = [lstmlm("eval", str(run), "--json", cwd=folder) for folder in (here, elsewhere)]
    assert all(s.returncode == 0 for s in scores), [s.stderr for s in scores]
    assert json.loads(scores[0].stdout) == json.loads(scores[1].stdout)

    resumed = lstmlm(
        "train", "--out", str(run), "--resume", "--max-steps", "70", "--device", "cpu", cwd=elsewhere
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in read_metrics(run / run_folder.METRICS) if r["event"] == "end"][-1] == 70


def test_changed_data_is_refused_by_resume_and_eval(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", 400, seed=1)
    run = tmp_path / "run"
    assert (
        lstmlm("train", "--data", str(corpus), "--out", str(run), *TINY_FLAGS, "--device", "cpu").returncode
        == 0
    )
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    write_corpus(corpus, 60, seed=9)

    resumed = lstmlm(
        "train", "--out", str(run), "--resume", "--max-steps", "80", "--device", "cpu", timeout=60
    )
    assert resumed.returncode == 1
    (line,) = error_lines(resumed)
    assert line.startswith(f"error: {corpus}: the train split changed since {run} was trained on it")
    scored = lstmlm("eval", str(run))
    assert scored.returncode == 1 and len(error_lines(scored)) == 1 and "--data" in scored.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert lstmlm("eval", str(run), "--data", str(corpus)).returncode == 0  # other text on purpose


def test_resume_beyond_the_epoch_is_an_error_not_a_loop(tmp_path: Path) -> None:
    """A run without ``data.json`` (written before it existed) whose text shrank."""
    corpus = write_corpus(tmp_path / "corpus.txt", 2000, seed=1)
    run = tmp_path / "run"
    flags = [*TINY_FLAGS, "--device", "cpu", "--max-steps", "200", "--save-every", "190"]
    assert lstmlm("train", "--data", str(corpus), "--out", str(run), *flags).returncode == 0
    (run / DATA_RECORD).unlink()
    write_corpus(corpus, 300, seed=1)  # about 60 windows per epoch, saved at window 200
    resumed = lstmlm(
        "train", "--out", str(run), "--resume", "--max-steps", "300", "--device", "cpu", timeout=60
    )
    assert resumed.returncode == 1, resumed.stderr
    assert len(error_lines(resumed)) == 1 and "the data changed" in resumed.stderr


# ---------------------------------------------------------------- signals during data preparation

STAGE_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from lstmlm.cli import train_display
    from lstmlm.cli import main

    stage, signum = sys.argv[1], getattr(signal, sys.argv[2])
    real = train_display.TrainDisplay.data

    def data(self, name, done, total):
        if name == stage and done:
            os.kill(os.getpid(), signum)
        return real(self, name, done, total)

    train_display.TrainDisplay.data = data
    train_display.TrainDisplay.live = property(lambda self: True, lambda self, value: None)
    sys.argv = ["lstmlm", "train", *sys.argv[3:]]
    main()
    """
)


@pytest.mark.parametrize(
    ("stage", "name", "code"),
    [
        ("read", "SIGTERM", 143),
        ("tokenizer", "SIGINT", 130),
        ("tokenizer", "SIGTERM", 143),
        ("encode train", "SIGTERM", 143),
    ],
)
def test_a_signal_during_data_preparation_stops_at_once(
    stage: str, name: str, code: int, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", 20_000, seed=1)
    out = tmp_path / "run"
    args = ["--data", str(corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-c", STAGE_KILLER, stage, name, *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == code, result.stderr
    assert error_lines(result) == [f"error: stopped by {name}"]
    assert not out.exists()


# ---------------------------------------------------------------- failed starts


def test_a_start_that_fails_before_its_first_checkpoint_leaves_nothing_behind(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", 400, seed=1)
    out = tmp_path / "run"
    diverging = [*TINY_FLAGS, "--device", "cpu", "--optimizer", "sgd", "--lr", "1e38", "--max-bad-steps", "1"]
    failed = lstmlm("train", "--data", str(corpus), "--out", str(out), *diverging)
    assert failed.returncode == 1 and "training diverged" in failed.stderr
    assert "run folder" not in failed.stdout and not out.exists()
    again = lstmlm("train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu")
    assert again.returncode == 0, again.stderr
    assert str(out) in again.stdout


# ---------------------------------------------------------------- bf16 without the CPU's kernel


def test_bf16_is_refused_in_one_line_where_the_cpu_lacks_native_kernels(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision_module, "_NATIVE_BF16_RNN", {"lstm": False})  # an injected probe
    out = tmp_path / "run"
    with pytest.raises(LstmlmError, match="no native bf16 kernels .*use --precision fp32"):
        start_training(out, tiny_config(tiny_corpus, precision="bf16"), resume=False, overwrite=False)
    assert not out.exists()
    assert resolve_precision("auto", torch.device("cpu")).name == "fp32"


def test_a_fused_cell_under_cpu_autocast_without_the_kernel_runs_its_recurrence_in_fp32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precision_module, "_NATIVE_BF16_RNN", {"lstm": False})
    model = LanguageModel(ModelConfig(ntoken=20, emsize=16, nhid=16, nlayers=2, dropout=0.0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, state = model(torch.zeros(3, 2, dtype=torch.long), model.init_state(2))
    assert logits.dtype == torch.bfloat16 and state[0].dtype == torch.float32  # decoder bf16, recurrence fp32


def test_bf16_on_an_avx2_cpu_is_one_clear_line(tiny_corpus: Path, tmp_path: Path) -> None:
    """The real thing: oneDNN limited to AVX2 has no bf16 LSTM (round one crashed here)."""
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu"]
    result = lstmlm(*args, "--precision", "bf16", env=AVX2)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "no native bf16 kernels" in line and "use --precision fp32" in line
    assert not out.exists()


# ---------------------------------------------------------------- dropout masks


def test_dropout_masks_depend_on_the_global_stream_not_the_process_layout() -> None:
    drop = StreamDropout(0.5).train()
    x = torch.ones(6, 8, 5)
    with masks_for_step(seed=7, step=3, first=0, total=8):
        whole = drop(x)
    with masks_for_step(seed=7, step=3, first=4, total=8):
        second_half = drop(x[:, 4:])
    torch.testing.assert_close(second_half, whole[:, 4:], rtol=0, atol=0)
    with masks_for_step(seed=7, step=4, first=0, total=8):
        assert not torch.equal(drop(x), whole)  # another step, another mask
    with masks_for_step(seed=7, step=3, first=0, total=8) as masks:
        drop(x), drop(x)
        assert masks.sites_drawn == 2  # each site draws its own mask


def test_a_model_trained_with_masks_draws_nothing_from_the_global_generator() -> None:
    model = LanguageModel(ModelConfig(ntoken=12, emsize=6, nhid=6, nlayers=2, dropout=0.3)).train()
    before = torch.get_rng_state()
    with masks_for_step(seed=1, step=0, first=0, total=2):
        model(torch.zeros(4, 2, dtype=torch.long), model.init_state(2))
    assert torch.equal(torch.get_rng_state(), before)


def test_checkpoints_of_a_multilayer_fused_module_still_load() -> None:
    model = LanguageModel(ModelConfig(ntoken=12, emsize=6, nhid=6, nlayers=2, dropout=0.0))
    old = torch.nn.LSTM(6, 6, num_layers=2)
    tensors = {k: v for k, v in model.state_dict().items() if not k.startswith("rnn.")}
    tensors.update({f"rnn.rnn.{k}": v for k, v in old.state_dict().items()})
    model.load_state_dict(tensors, strict=True)
    x = torch.randn(5, 3, 6)
    ours, _ = model.rnn(x, model.init_state(3))
    reference, _ = old(x)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_a_start_refused_by_the_lock_leaves_the_other_run_alone(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", 400, seed=1)
    out = tmp_path / "run"
    args = ["train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu"]
    assert lstmlm(*args, "--max-steps", "5", "--eval-every", "5").returncode == 0
    (out / run_folder.MODEL).unlink()  # as if the other run had not saved yet
    with run_folder.run_lock(out):  # another train is writing here (its pid in .lock)
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        refused = lstmlm(*args, "--overwrite")
        after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert refused.returncode == 1 and len(error_lines(refused)) == 1
    assert after == before
