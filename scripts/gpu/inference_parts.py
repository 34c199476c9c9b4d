"""The inference parts of the GPU check: sampling, evaluation-time methods and export.

- ``generation_rows``: batch-1 sampling (``lstmlm.generate.sample``, the ``FusedStep`` path)
  of a 2×650 tied LSTM at WikiText-2's vocabulary, against the memory-bandwidth bound:
  the device's copy bandwidth (a large device-to-device copy, read + write bytes over its
  time) over the weight bytes read per token (the stack, the decoder, one embedding row).
  Goal: at or below the bound (a figure above it means the measurement is wrong); the
  fraction is the figure.
- ``eval_rows``: ``evaluate_run`` (what ``lstmlm eval`` runs) on a run trained on the device:
  static, the continuous cache and dynamic evaluation (rms, its default), on a text read
  whole; on CUDA the same numbers on the CPU beside them (goal: equal to 1e-3), and
  dynamic evaluation at step size 0 against static (cuDNN off against cuDNN on).
- ``export_rows``: that run exported (TorchScript; ONNX where installed) and run on the CPU,
  its logits against the device's model (TF32 off, strict fp32): goal max |Δ| ≤ 1e-3.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from lstmlm.config import RunConfig
from lstmlm.evaluation.methods import evaluate_run
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.export.step_model import state_names
from lstmlm.export.writer import ONNX_PACKAGES, export_run
from lstmlm.generate import sample
from lstmlm.model.fast.fused_step import FusedStep
from lstmlm.model.lm import LanguageModel
from lstmlm.runs.folder import read_config
from lstmlm.runs.load import load_run
from scripts.gpu.cli_parts import ensure_run, eval_text
from scripts.gpu.context import Context, timed
from scripts.gpu.table import Row, judged, number, skipped

PARITY = 1e-3  # max |Δ logits| of an export, and relative Δ of device vs CPU perplexities
WARM_TOKENS = 20


# ---------------------------------------------------------------- generation vs bandwidth


def copy_bandwidth(ctx: Context, mib: int, repeats: int = 5) -> float:
    """Bytes/s moved by a device-to-device copy of ``mib`` MiB (read + write), best of ``repeats``."""
    source = torch.ones(mib * 2**20 // 4, device=ctx.device)
    target = torch.empty_like(source)
    target.copy_(source)  # warm-up
    best = math.inf
    for _ in range(repeats):
        with timed(ctx) as t:
            target.copy_(source)
        best = min(best, t[0])
    return 2 * source.numel() * 4 / best


def bytes_per_token(model: LanguageModel) -> int:
    """Weight bytes read for one sampled token: the stack and the output layer whole, one
    embedding row (the decoder's weight is the embedding when tied: counted once)."""
    stack = sum(p.numel() * p.element_size() for p in model.rnn.parameters())
    output = sum(p.numel() * p.element_size() for p in model.decoder.parameters())
    row = 0 if model.cfg.decoder_is_embedding else model.encoder.weight[0].numel() * 4
    return stack + output + row


def generation_rows(ctx: Context) -> list[Row]:
    s = ctx.sizes
    model_values = {
        "cell": "lstm",
        "ntoken": s.gen_vocab,
        "emsize": s.gen_nhid,
        "nhid": s.gen_nhid,
        "nlayers": 2,
        "tied": True,
    }
    config = RunConfig.from_dict({"model": model_values}).model
    torch.manual_seed(0)
    model = LanguageModel(config).to(ctx.device).eval()
    fused = FusedStep.of(model) is not None
    tokens = sample(model, [1], max_tokens=10**9, temperature=1.0, generator=torch.Generator().manual_seed(1))
    for _ in range(WARM_TOKENS):
        next(tokens)
    with timed(ctx) as t:
        for _ in range(s.gen_tokens):
            next(tokens)
    tok_s = s.gen_tokens / t[0]
    bandwidth, weight_bytes = copy_bandwidth(ctx, s.bandwidth_mib), bytes_per_token(model)
    bound = bandwidth / weight_bytes
    ratio = tok_s / bound
    path = "FusedStep" if fused else "forward (no FusedStep)"
    figure = (
        f"{number(tok_s)} tok/s = {ratio:.2f}× bound {number(bound)} ({weight_bytes / 1e6:.1f} MB/token, "
        f"{bandwidth / 1e9:.0f} GB/s copy), {path}"
    )
    data = {"tokens_per_s": tok_s, "bound": bound, "ratio": ratio, "bandwidth": bandwidth, "fused": fused}
    what = f"batch 1, 2×{s.gen_nhid} tied V={s.gen_vocab:,}"
    verdict = judged(ratio <= 1.05 and fused, "above the bound" if fused else "FusedStep not used")
    return [Row("generation", what, figure, "≤ 1× bound; fraction", verdict, t[0], data=data)]


# ---------------------------------------------------------------- the cache and dynamic evaluation


def eval_rows(ctx: Context) -> list[Row]:
    run_dir, text = ensure_run(ctx), str(eval_text(ctx))
    run = load_run(run_dir, device=ctx.device)
    with timed(ctx) as t:
        result = evaluate_run(run, None, text, dynamic=DynamicSettings(), cache=CacheSettings())
    static, cache, dynamic = result["perplexity"], result["cache"], result["dynamic"]
    where, tokens = ctx.device.type, result["tokens"]
    figure = f"static ppl {number(static)}, cache {number(cache['perplexity'])} ({cache['change']:+.1%})"
    figure += f", {tokens:,} tokens"
    finite = all(math.isfinite(v) for v in (static, cache["perplexity"], dynamic["perplexity"]))
    data = {"static": static, "cache": cache["perplexity"], "dynamic": dynamic["perplexity"]}
    rows = [
        Row("eval", f"static + cache on {where}", figure, "finite", judged(finite, "not finite"), data=data)
    ]
    figure = (
        f"ppl {number(dynamic['perplexity'])} ({dynamic['change']:+.1%} vs static), with cache "
        f"{number(dynamic['with_cache']['perplexity'])}, {number(dynamic['tokens_per_s'])} tok/s"
    )
    verdict = judged(finite and dynamic["perplexity"] <= static, "above static" if finite else "not finite")
    rows.append(Row("eval", f"dynamic (rms) on {where}", figure, "finite, ≤ static", verdict, t[0]))
    rows.append(step_zero_row(ctx, run_dir, text, static))
    rows.append(versus_cpu_row(ctx, run_dir, text))
    return rows


def step_zero_row(ctx: Context, run_dir: Path, text: str, static: float) -> Row:
    """Dynamic evaluation at step size 0 scores what static evaluation does (on CUDA: cuDNN off vs on)."""
    run = load_run(run_dir, device=ctx.device)
    with timed(ctx) as t:
        zero = evaluate_run(run, None, text, dynamic=DynamicSettings(method="sgd", lr=0.0))["dynamic"]
    change = abs(zero["perplexity"] / static - 1)
    how = "cuDNN off vs on" if ctx.cuda else "segments of 5 vs BPTT windows"
    figure = f"|ppl / static − 1| = {change:.1e} ({how})"
    return Row(
        "eval",
        "dynamic at step 0 = static",
        figure,
        f"≤ {PARITY:g}",
        judged(change <= PARITY),
        t[0],
        data={"change": change},
    )


def versus_cpu_row(ctx: Context, run_dir: Path, text: str) -> Row:
    """The device's static, cache and dynamic (sgd) perplexities against the CPU's, same run and text."""
    what = "device vs CPU: static, cache, dynamic"
    if not ctx.cuda:
        return Row("eval", what, goal=f"≤ {PARITY:g} relative", verdict=skipped("the device is the CPU"))
    dynamic, cache = DynamicSettings(method="sgd"), CacheSettings()
    with timed(ctx) as t:
        here = evaluate_run(load_run(run_dir, device=ctx.device), None, text, dynamic=dynamic, cache=cache)
        cpu = evaluate_run(load_run(run_dir, device="cpu"), None, text, dynamic=dynamic, cache=cache)
    pairs = {
        "static": (here["perplexity"], cpu["perplexity"]),
        "cache": (here["cache"]["perplexity"], cpu["cache"]["perplexity"]),
        "dynamic": (here["dynamic"]["perplexity"], cpu["dynamic"]["perplexity"]),
    }
    changes = {name: abs(a / b - 1) for name, (a, b) in pairs.items()}
    figure = ", ".join(f"{name} {change:.1e}" for name, change in changes.items()) + " (relative Δ ppl)"
    worst = max(changes.values())
    return Row("eval", what, figure, f"≤ {PARITY:g} relative", judged(worst <= PARITY), t[0], data=changes)


# ---------------------------------------------------------------- export parity


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off in cuDNN and cuBLAS (cuDNN's RNNs use TF32 by default on Ampere and later)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def device_logits(ctx: Context, run_dir: Path, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The device model's logits on ``tokens`` from the zero state: strict fp32, and with the defaults."""
    model = load_run(run_dir, device=ctx.device).model
    with torch.no_grad():
        with strict_fp32():
            strict = model(tokens.to(ctx.device), None)[0].float().cpu()
        default = model(tokens.to(ctx.device), None)[0].float().cpu()
    return strict, default


def exported_logits(fmt: str, path: Path, tokens: torch.Tensor, cell: str) -> torch.Tensor:
    """The exported sequence model's logits on ``tokens`` (T, B) from the zero state, on the CPU."""
    if fmt == "torchscript":
        module = torch.jit.load(str(path))
        with torch.no_grad():
            return module(tokens, module.init_state(tokens.size(1)))[0]
    import onnxruntime  # type: ignore[import-untyped]  # the export extra; no stubs

    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    state = {
        name: torch.zeros(part["shape"][0], tokens.size(1), part["shape"][2]).numpy()
        for name, part in zip(state_names(cell), sidecar["state"], strict=True)
    }
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"tokens": tokens.numpy(), **state})[0])


def export_rows(ctx: Context) -> list[Row]:
    run_dir = ensure_run(ctx)
    config = read_config(run_dir)
    tokens = torch.randint(config.model.ntoken, (40, 3), generator=torch.Generator().manual_seed(3))
    strict, default = device_logits(ctx, run_dir, tokens)
    folder, rows = ctx.scratch("export"), []
    for fmt, suffix in (("torchscript", ".pt"), ("onnx", ".onnx")):
        what, goal = f"{fmt} of a {ctx.device.type} run, on CPU", f"max |Δ logits| ≤ {PARITY:g}"
        missing = [name for name in (*ONNX_PACKAGES, "onnxruntime") if importlib.util.find_spec(name) is None]
        if fmt == "onnx" and missing:
            rows.append(
                Row("export", what, goal=goal, verdict=skipped(f"{', '.join(missing)} not installed"))
            )
            continue
        with timed(ctx) as t:
            path = folder / f"{fmt}{suffix}"  # its own stem: the tokenizer copy is STEM.tokenizer.json
            export_run(run_dir, fmt, path)
            got = exported_logits(fmt, path, tokens, config.model.cell)
        diff, loose = (got - strict).abs().max().item(), (got - default).abs().max().item()
        figure = f"{diff:.1e} vs the {ctx.device.type} model (strict fp32)"
        figure += f", {loose:.1e} with TF32 defaults" if ctx.cuda else ""
        figure += f"; logits up to {strict.abs().max().item():.1f}"
        verdict = judged(diff <= PARITY, f"max |Δ| {diff:.1e}")
        rows.append(Row("export", what, figure, goal, verdict, t[0], data={"diff": diff, "tf32_diff": loose}))
    return rows
