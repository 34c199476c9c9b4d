"""Precision on CPU: bf16 autocast (and its refusal where the CPU lacks the kernels), the fp16
rules and the loss scaler, and torch.compile."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lstmlm.config import ModelConfig, replace
from lstmlm.errors import LstmlmError
from lstmlm.evaluation.perplexity import evaluate_split
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs import load as runs
from lstmlm.runs.load import run_split
from lstmlm.runtime import precision as precision_module
from lstmlm.runtime.precision import Precision, native_bf16_rnn, resolve_precision
from lstmlm.training import loop as loop_module
from lstmlm.training import train as train_module
from lstmlm.training.launch import start_training
from lstmlm.training.step import step_verdict
from tests.conftest import TINY_FLAGS, error_lines, events, invoke, run_lstmlm, tiny_config

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


@pytest.mark.skipif(not native_bf16_rnn("lstm"), reason="no native bf16 on this CPU: refused (below)")
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


@pytest.mark.skipif(not native_bf16_rnn("lstm"), reason="no native bf16 on this CPU: refused (below)")
def test_bf16_trains_with_every_awd_piece_on(tiny_corpus: Path, tmp_path: Path) -> None:
    """Weight drop's own fused call, locked and word dropout and AR/TAR under bf16 autocast."""
    from tests.training.test_train import AWD_MODEL, AWD_TRAIN

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
    result = invoke(*args, "--precision", "fp16")
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
    result = run_lstmlm(*args, "--precision", "bf16", env=AVX2)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "no native bf16 kernels" in line and "use --precision fp32" in line
    assert not out.exists()
