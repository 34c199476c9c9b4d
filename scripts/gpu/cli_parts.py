"""The parts that run ``python -m lstmlm`` as a user does, each a child process with a timeout.

- ``real_run_rows``: ``lstmlm train`` on WikiText-2's valid.txt (cut 90/5/5 into
  train/valid/test as ``--data FILE`` is) on the device to a validation perplexity, then
  ``lstmlm eval --split test --json`` on the device. The run is kept for the eval and
  export parts (``ensure_run``: a small run on the default corpus where WikiText-2 is absent).
- ``compile_rows``: ``lstmlm train --compile`` against the same command without it: both
  run, their valid perplexities agree (within 5%), tokens/s after the first log interval
  (which holds the compilation) compared.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from lstmlm.runs.metrics import read_metrics
from scripts.common import LSTMLM
from scripts.gpu.context import DEFAULT_CORPUS, Context, last_line, read_lines
from scripts.gpu.table import Row, judged, number, one_line, skipped

COMPILE_PPL = 0.05  # compiled and eager valid perplexities within 5% of each other


def lstmlm(ctx: Context, *args: str, timeout: float) -> str:
    """Run ``python -m lstmlm ARGS`` with the device's threads; its stdout. A non-zero exit
    raises with the last line the command wrote on stderr (or stdout)."""
    done = ctx.child([*LSTMLM, *args], timeout)
    if done.returncode != 0:
        raise RuntimeError(f"lstmlm {args[0]} exited {done.returncode}: {one_line(last_line(done))}")
    return done.stdout


def events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [record for record in read_metrics(run_dir / "metrics.jsonl") if record["event"] == kind]


def corpus_folder(ctx: Context) -> Path:
    """train/valid/test.txt: the first lines of the default corpus's files (made once)."""
    if "corpus folder" not in ctx.shared:
        folder = ctx.scratch("corpus")
        sizes = {
            "train": ctx.sizes.corpus_lines,
            "valid": ctx.sizes.valid_lines,
            "test": ctx.sizes.valid_lines,
        }
        for name, lines in sizes.items():
            text = "\n".join(read_lines(DEFAULT_CORPUS / f"{name}.txt", lines)) + "\n"
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        ctx.shared["corpus folder"] = folder
    folder_: Path = ctx.shared["corpus folder"]
    return folder_


def device_flags(ctx: Context) -> list[str]:
    return ["--device", ctx.device.type]


def train_args(ctx: Context, data: Path, out: Path, nhid: int, steps: int, log_every: int) -> list[str]:
    """``lstmlm train`` of a 2-layer tied LSTM of ``nhid`` units (``steps`` 0: no step limit)."""
    limit = ["--max-steps", str(steps)] if steps else []
    model = ["--emsize", str(nhid), "--nhid", str(nhid), "--nlayers", "2", "--log-every", str(log_every)]
    return [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        *device_flags(ctx),
        "--seed",
        "1",
        *model,
        *limit,
    ]


def ensure_run(ctx: Context) -> Path:
    """A run trained on the device: the real run's, else a small one on the default corpus (made once)."""
    if "run" not in ctx.shared:
        out, s = ctx.scratch("fallback-run") / "run", ctx.sizes
        lstmlm(
            ctx, *train_args(ctx, corpus_folder(ctx), out, s.compile_nhid, s.compile_steps, 25), timeout=120
        )
        ctx.shared["run"] = out
    run: Path = ctx.shared["run"]
    return run


def eval_text(ctx: Context) -> Path:
    """The text the eval parts score whole: the first lines of WikiText-2's test.txt (else the
    default corpus's)."""
    source = ctx.data_dir / "test.txt"
    if not source.is_file():
        source = DEFAULT_CORPUS / "test.txt"
    path = ctx.scratch("eval-text") / "text.txt"
    path.write_text("\n".join(read_lines(source, ctx.sizes.eval_lines)) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- the real run


def real_run_rows(ctx: Context) -> list[Row]:
    """WikiText-2's valid.txt to a perplexity on the device, through the CLI."""
    s, data = ctx.sizes, ctx.data_dir / "valid.txt"
    lines = f"first {s.real_lines} lines of " if s.real_lines else ""
    what = f"{lines}WikiText-2 valid.txt, 2×{s.real_nhid} LSTM, CLI"
    if not data.is_file():
        return [Row("real run", what, goal="valid ppl < 1,000", verdict=skipped(f"{data} not found"))]
    folder = ctx.scratch("real-run")
    out = folder / "run"
    if s.real_lines:  # smoke: a slice, so that dynamic evaluation's gradient statistics are quick
        data = folder / "valid.txt"
        data.write_text(
            "\n".join(read_lines(ctx.data_dir / "valid.txt", s.real_lines)) + "\n", encoding="utf-8"
        )
    args = train_args(ctx, data, out, s.real_nhid, s.real_steps, 50 if s.real_minutes else 4)
    budget = ["--max-time", str(s.real_minutes), "--epochs", "40"] if s.real_minutes else []
    dropout = "0.5" if s.real_minutes else "0.1"
    run = [*budget, "--dropout", dropout, "--batch-size", str(s.real_batch), "--patience", "3"]
    lstmlm(ctx, *args, *run, timeout=60 * (s.real_minutes or 1) + 90)
    ctx.shared["run"] = out
    test = json.loads(
        lstmlm(ctx, "eval", str(out), "--split", "test", "--json", *device_flags(ctx), timeout=120)
    )
    end, start = events(out, "end")[-1], events(out, "start")[0]
    speed = statistics.median(log["tokens_per_s"] for log in events(out, "log"))
    ppl, vocab = end["best_valid_ppl"], json.loads((out / "config.json").read_text())["model"]["ntoken"]
    figure = (
        f"valid ppl {number(ppl)}, test {number(test['perplexity'])}; {end['step']} steps in "
        f"{end['elapsed']:.0f} s ({end['reason']}), {number(speed)} tok/s, {start['precision']}, V={vocab:,}"
    )
    goal = 1000.0 if s.real_minutes else float(vocab)  # smoke: a dozen steps, better than uniform
    verdict = judged(math.isfinite(ppl) and ppl < goal and not end["diverged"], f"ppl {number(ppl)}")
    data_ = {"valid_ppl": ppl, "test_ppl": test["perplexity"], "steps": end["step"], "vocab": vocab}
    return [Row("real run", what, figure, f"valid ppl < {number(goal)}", verdict, data=data_)]


# ---------------------------------------------------------------- torch.compile


def train_for_compile(ctx: Context, compiled: bool) -> dict[str, float]:
    """One CLI run on the small corpus: tok/s after the first log interval (median of the
    intervals), the first interval's seconds (compilation), the valid perplexity."""
    s = ctx.sizes
    out = ctx.scratch("compile" if compiled else "eager") / "run"
    args = train_args(ctx, corpus_folder(ctx), out, s.compile_nhid, s.compile_steps, s.compile_log_every)
    lstmlm(ctx, *args, *(["--compile"] if compiled else []), timeout=300 if compiled else 120)
    logs, end = events(out, "log"), events(out, "end")[-1]
    steady = [log["tokens_per_s"] for log in logs[1:]] or [logs[0]["tokens_per_s"]]
    return {
        "tokens_per_s": statistics.median(steady),
        "first_interval_s": logs[0]["elapsed"],
        "valid_ppl": end["best_valid_ppl"],
    }


def compile_rows(ctx: Context) -> list[Row]:
    eager = train_for_compile(ctx, compiled=False)
    compiled = train_for_compile(ctx, compiled=True)
    ratio = compiled["tokens_per_s"] / eager["tokens_per_s"]
    apart = abs(compiled["valid_ppl"] / eager["valid_ppl"] - 1)
    figure = (
        f"{number(compiled['tokens_per_s'])} tok/s = {ratio:.2f}× eager; "
        f"first {ctx.sizes.compile_log_every} steps "
        f"{compiled['first_interval_s']:.1f} s (eager {eager['first_interval_s']:.1f}); "
        f"ppl {number(compiled['valid_ppl'])} vs {number(eager['valid_ppl'])}"
    )
    goal, what = (
        f"runs; ppl within {COMPILE_PPL:.0%} of eager",
        f"lstm 2×{ctx.sizes.compile_nhid} --compile, CLI",
    )
    verdict = judged(apart <= COMPILE_PPL, f"ppl {apart:.1%} apart")
    data = {"ratio": ratio, "ppl_apart": apart, "eager": eager, "compiled": compiled}
    return [Row("compile", what, figure, goal, verdict, data=data)]
