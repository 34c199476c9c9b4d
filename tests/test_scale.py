"""Speed and scale on CPU: bf16 autocast, the fp16 rules, torch.compile, 2-process gloo DDP."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lstmlm import cli
from lstmlm.cli import app
from lstmlm.config import replace
from lstmlm.evaluation.perplexity import evaluate_split
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs import load as runs
from lstmlm.runs.load import run_split
from lstmlm.runs.metrics import read_metrics
from lstmlm.runtime import distributed
from lstmlm.runtime.precision import Precision, native_bf16_rnn, resolve_precision
from lstmlm.training import loop as loop_module
from lstmlm.training import train as train_module
from lstmlm.training.launch import start_training
from lstmlm.training.step import step_verdict

from .conftest import TINY_FLAGS, tiny_config

runner = CliRunner()


def events(run: Path, kind: str) -> list[dict]:
    return [r for r in read_metrics(run / run_folder.METRICS) if r["event"] == kind]


@pytest.mark.skipif(not native_bf16_rnn("lstm"), reason="no native bf16 on this CPU: refused (test_portable)")
def test_bf16_autocast_on_cpu_trains_resumes_in_fp32_and_loads(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tiny_config(tiny_corpus, precision="bf16", max_steps=60)
    start_training(out, config, resume=False, overwrite=False)
    assert events(out, "start")[0]["precision"] == "bf16"
    losses = [r["loss"] for r in events(out, "log")]
    assert losses[-1] < losses[0] - 0.5
    state = ckpt.latest_checkpoint(out).state
    assert all(h.dtype == torch.float32 for h in state["hidden"])

    start_training(
        out, replace(config, train={"precision": "fp32", "max_steps": 70}), resume=True, overwrite=False
    )
    assert events(out, "start")[-1]["precision"] == "fp32" and events(out, "end")[-1]["step"] == 70
    run = runs.load_run(out)
    ppl = evaluate_split(run.model, run_split(run, "valid", None), run.config, "valid", "word").perplexity
    assert ppl < run.tokenizer.vocab_size / 2


@pytest.mark.skipif(not native_bf16_rnn("lstm"), reason="no native bf16 on this CPU: refused (test_portable)")
def test_bf16_trains_with_every_awd_piece_on(tiny_corpus: Path, tmp_path: Path) -> None:
    """Weight drop's own fused call, locked and word dropout and AR/TAR under bf16 autocast."""
    from .test_train import AWD_MODEL, AWD_TRAIN

    finals = {}
    for precision in ("bf16", "fp32"):
        out = tmp_path / precision
        base = tiny_config(tiny_corpus, precision=precision, max_steps=60)
        start_training(out, replace(base, model=AWD_MODEL, train=AWD_TRAIN), resume=False, overwrite=False)
        losses = [r["loss"] for r in events(out, "log")]
        assert (
            all(math.isfinite(loss) for loss in losses)
            and losses[-1] < losses[0]
            and not events(out, "nonfinite")
        )
        finals[precision] = losses[-1]
    # bf16 rounds the embedding, the matmuls and the logits (~0.4% each); the fp32 sums and
    # weights keep the runs close over 60 steps (measured here: 0.0001 nats apart)
    assert finals["bf16"] == pytest.approx(finals["fp32"], abs=0.15)


def test_fp16_needs_cuda_and_says_so_before_writing(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_corpus), "--out", str(out), *TINY_FLAGS, "--device", "cpu"]
    result = runner.invoke(app, [*args, "--precision", "fp16"])
    assert result.exit_code == 1
    other = "bf16 or fp32" if native_bf16_rnn("lstm") else "fp32"  # bf16 is refused without the kernels
    assert result.stderr.strip().splitlines() == [
        f"error: --precision fp16 needs a CUDA GPU (here: cpu); use {other} on this device"
    ]
    assert not (out / run_folder.CONFIG).exists()
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu).name == "fp32"
    if native_bf16_rnn("lstm"):
        assert resolve_precision("bf16", cpu).name == "bf16"


@pytest.mark.parametrize("cell", ["lstm-eq", "gru-eq"])
def test_equation_cells_under_bf16_autocast_keep_an_fp32_recurrence(cell: str) -> None:
    from lstmlm.config import ModelConfig
    from lstmlm.model.lm import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(cell=cell, ntoken=20, emsize=8, nhid=8, nlayers=2, dropout=0.0))
    tokens = torch.randint(0, 20, (6, 3))
    reference, _ = model(tokens, model.init_state(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, state = model(tokens, model.init_state(3))
    assert logits.dtype == torch.bfloat16 and all(s.dtype == torch.float32 for s in state)
    torch.testing.assert_close(logits.float(), reference, atol=0.1, rtol=0.05)  # bf16 decoder
    logits.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_fp16_overflow_is_the_scalers_business_not_a_nonfinite_step() -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    finite, inf, nan = torch.tensor(1.5), torch.tensor(math.inf), torch.tensor(math.nan)
    verdict = step_verdict(finite, inf, scaler=scaler, signal_received=None, timed_save=False)
    assert not verdict.step and verdict.overflow  # skipped, not counted
    verdict = step_verdict(nan, inf, scaler=scaler, signal_received=None, timed_save=False)
    assert not verdict.step and not verdict.overflow  # counted: the loss itself is not finite
    low = torch.amp.GradScaler("cpu", init_scale=0.5)
    verdict = step_verdict(finite, inf, scaler=low, signal_received=None, timed_save=False)
    assert not verdict.overflow  # counted: scaling below 1 is not what overflowed
    plain = torch.amp.GradScaler("cpu", enabled=False)
    verdict = step_verdict(finite, inf, scaler=plain, signal_received=None, timed_save=False)
    assert not verdict.step and not verdict.overflow
    assert step_verdict(finite, finite, scaler=plain, signal_received=None, timed_save=False).step


def test_loss_scaler_in_the_loop_skips_overflows_and_is_checkpointed(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ScaledFp32(Precision):  # fp16's loss scaling on CPU arithmetic (CPU has no fp16 LSTM)
        def autocast(self):  # type: ignore[override]
            return Precision("fp32", "cpu").autocast()

        def scaler(self) -> torch.amp.GradScaler:
            return torch.amp.GradScaler("cpu", init_scale=1024.0)

    monkeypatch.setattr(train_module, "resolve_precision", lambda *args: ScaledFp32("fp16", "cpu"))
    real_step, calls = loop_module.train_step, {"n": 0}

    def overflow_on_steps_5_to_7(model, *args, **kwargs):
        calls["n"] += 1
        if not 5 <= calls["n"] <= 7:
            return real_step(model, *args, **kwargs)
        hook = model.decoder.bias.register_hook(lambda grad: grad * math.inf)
        try:
            return real_step(model, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(loop_module, "train_step", overflow_on_steps_5_to_7)
    out = tmp_path / "run"
    config = tiny_config(tiny_corpus, max_steps=20, max_bad_steps=2, log_every=10, eval_every=10)
    state = start_training(out, config, resume=False, overwrite=False).state
    assert state.step == 20 and not events(out, "nonfinite")
    first = events(out, "log")[0]
    assert first["overflow_skips"] == 3 and first["loss_scale"] == 1024.0 / 8
    assert state.tokens == 17 * 8 * 4  # the three skipped steps trained nothing
    assert ckpt.latest_checkpoint(out).state["scaler"]["scale"] == 1024.0 / 8


@pytest.mark.slow  # compiling takes ~25 s on a cold inductor cache
def test_compiled_model_trains_and_saves_plain_keys(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private kernel cache: inductor's shared one may hold kernels built under another
    # ATEN_CPU_CAPABILITY (the suite also runs under AVX2 emulation), which crash here.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    out = tmp_path / "run"
    config = tiny_config(tiny_corpus, compile=True, max_steps=20, eval_every=20, log_every=5)
    start_training(out, config, resume=False, overwrite=False)
    losses = [r["loss"] for r in events(out, "log")]
    assert losses[-1] < losses[0]
    for name in (run_folder.MODEL, run_folder.BEST):
        tensors, _ = ckpt.read_weights(out / name)
        assert not any("_orig_mod" in key for key in tensors)
    fresh = subprocess.run(
        [sys.executable, "-m", "lstmlm", "eval", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr
    vocab = run_folder.read_config(out).model.ntoken
    assert json.loads(fresh.stdout)["perplexity"] < vocab / 2


# ---------------------------------------------------------------- two processes, gloo

# Dropout on (two layers: embedding, between-layer and output sites) and SGD at lr 1: two
# processes differ from one only in the order of fp32 sums (the gradient all-reduce, the
# split matmuls), ~1e-7 relative per step. At lr 1 with clipping at 0.25 a step moves the
# weights by at most 0.25, and the map from weights to weights is close to non-expansive,
# so 80 steps keep that far below 1e-4. (At the default lr 20 the same rounding grows to
# percent-size differences: it then depends on the CPU, which a test must not.)
DDP_FLAGS = [
    *TINY_FLAGS,
    *("--device", "cpu", "--nlayers", "2", "--dropout", "0.3", "--optimizer", "sgd", "--lr", "1"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, *args: str) -> subprocess.CompletedProcess:
    """``lstmlm train`` under torchrun with ``nproc`` CPU processes (1: plain ``python -m lstmlm``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        command = [sys.executable, "-m", "lstmlm"]
    else:
        run = ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]
        command = [sys.executable, *run, "-m", "lstmlm"]
    return subprocess.run([*command, "train", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_two_gloo_processes_match_one_and_resume_with_one(
    cpu: str, tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cpu == "avx2":  # another CPU's numerics (see README "Determinism")
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    data = ["--data", str(tiny_corpus)]
    two, one = tmp_path / "two", tmp_path / "one"
    result = launch(2, *data, "--out", str(two), *DDP_FLAGS)  # 60 steps
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Training summary") == 1  # rank 0 alone reports
    end = events(two, "end")[-1]
    assert end["ranks_in_sync"] is True and events(two, "start")[0]["world_size"] == 2
    assert end["tokens"] == 60 * 8 * 4  # global batch 4: 2 streams on each rank
    assert ckpt.latest_checkpoint(two).state["hidden"][0].shape[1] == 4  # all streams, not rank 0's

    more = [*DDP_FLAGS, "--max-steps", "80"]
    result = launch(1, "--out", str(two), "--resume", *more)
    assert result.returncode == 0, result.stderr
    assert "resuming at step 60" in result.stdout
    steps = [r["step"] for r in events(two, "log")]
    assert steps == sorted(set(steps)) and steps[-1] == 80

    assert launch(1, *data, "--out", str(one), *more).returncode == 0  # evaluates at the same steps
    valid_two = {r["step"]: r["valid_loss"] for r in events(two, "eval")}
    valid_one = {r["step"]: r["valid_loss"] for r in events(one, "eval")}
    assert sorted(valid_two) == sorted(valid_one) == [30, 60, 80]
    for step, loss in valid_one.items():
        assert valid_two[step] == pytest.approx(loss, rel=1e-4), step


AWD_FLAGS = [
    *DDP_FLAGS,
    *("--locked-dropout", "--dropouti", "0.2", "--dropouth", "0.2", "--dropoute", "0.1"),
    *("--weight-drop", "0.3", "--ar-alpha", "2", "--tar-beta", "1", "--variable-bptt", "--grad-accum", "2"),
    *("--optimizer", "ntasgd", "--lr", "1", "--nonmono", "1", "--eval-every", "5", "--max-steps", "120"),
]


@pytest.mark.slow
def test_two_gloo_processes_match_one_with_every_awd_piece_on(tiny_corpus: Path, tmp_path: Path) -> None:
    """Locked, word and weight dropout, AR/TAR, variable BPTT, accumulation and NT-ASGD: the
    masks and windows do not depend on the process layout, so 2 processes compute what 1 does
    (fp32 sums aside, as above)."""
    data = ["--data", str(tiny_corpus)]
    two, one = tmp_path / "two", tmp_path / "one"
    for processes, out in ((2, two), (1, one)):
        result = launch(processes, *data, "--out", str(out), *AWD_FLAGS)
        assert result.returncode == 0, result.stderr
    valid_two = {r["step"]: r for r in events(two, "eval")}
    valid_one = {r["step"]: r for r in events(one, "eval")}
    assert sorted(valid_two) == sorted(valid_one) and len(valid_one) >= 4
    assert any(r.get("averaged") for r in valid_one.values())  # NT-ASGD switched within the run
    for step, record in valid_one.items():
        assert valid_two[step]["valid_loss"] == pytest.approx(record["valid_loss"], rel=1e-4), step
        assert valid_two[step].get("averaged") == record.get("averaged")


@pytest.mark.slow
def test_two_gloo_processes_match_one_with_the_adaptive_softmax(tiny_corpus: Path, tmp_path: Path) -> None:
    """A rank whose targets miss a cluster still uses that cluster's weights (zero rows), so
    DDP's all-reduce sees every parameter, and 2 processes compute what 1 does."""
    adaptive = [*DDP_FLAGS, "--softmax", "adaptive", "--cutoffs", "4,10"]
    valid = {}
    for processes in (2, 1):
        out = tmp_path / str(processes)
        result = launch(processes, "--data", str(tiny_corpus), "--out", str(out), *adaptive)
        assert result.returncode == 0, result.stderr
        valid[processes] = {r["step"]: r["valid_loss"] for r in events(out, "eval")}
    assert sorted(valid[2]) == sorted(valid[1]) == [30, 60]
    for step, loss in valid[1].items():
        assert valid[2][step] == pytest.approx(loss, rel=1e-4), step


class Left(Exception):
    pass


@pytest.mark.parametrize("in_a_group", [False, True])
def test_a_process_that_was_in_a_group_exits_without_finalizing(
    in_a_group: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """DDP keeps gloo's threads alive into Python's finalization, where one can abort the
    process; so a process that joined a group leaves by ``os._exit`` with the command's code."""

    def leave(code: int) -> None:
        raise Left(code)

    monkeypatch.setattr(distributed, "joined_a_group", in_a_group)
    monkeypatch.setattr(cli.os, "_exit", leave)
    monkeypatch.setattr(sys, "argv", ["lstmlm", "info", "no-such-run"])
    with pytest.raises(Left if in_a_group else SystemExit) as ended:
        cli.main()
    assert (ended.value.args[0] if in_a_group else ended.value.code) == 1
    assert "no-such-run" in capsys.readouterr().err


def test_batch_size_not_divisible_by_processes_is_one_clear_error(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = launch(3, "--data", str(tiny_corpus), "--out", str(out), *DDP_FLAGS)  # batch size 4
    assert result.returncode == 1
    ours = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert ours == [
        "error: --batch-size 4 is the global number of streams and must be divisible by the 3 processes; "
        "use a multiple of 3"
    ]
    assert not (out / run_folder.CONFIG).exists()
