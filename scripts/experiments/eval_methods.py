"""Evaluation-time methods on WikiText-2: dynamic evaluation and the continuous cache vs static.

The model: `configs/best-cpu.toml` trained for a fixed CPU budget on WikiText-2's valid.txt
(closed vocabulary, as `python -m scripts.bench.bench_quality` prepares it), or an existing run
(`--run`). Its test.txt is cut in two halves by line: the first is the methods' valid split
(where `--cache-tune` and the SGD step size are searched), the second is scored. Every
method scores the same second half; times are wall-clock seconds in this process.

    python -m scripts.experiments.eval_methods --run /tmp/bq/final/best-cpu-10min   # a trained run
    python -m scripts.experiments.eval_methods --minutes 10                         # train one first
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from lstmlm.evaluation import methods as eval_methods
from lstmlm.evaluation.perplexity import evaluate_split
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.runs.load import load_run, run_split
from scripts.common import CORPORA, LSTMLM, ROOT, SHARED_DATA, prepare_data


def train_run(folder: Path, minutes: float, threads: int) -> Path:
    corpus, train_name, test_name = CORPORA["wikitext"]
    data = folder / "data"
    prepare_data(SHARED_DATA / corpus / train_name, SHARED_DATA / corpus / test_name, data)
    out = folder / "run"
    cmd = [*LSTMLM, "train", "--config", "configs/best-cpu.toml", "--data", str(data),
           "--out", str(out), "--max-time", str(minutes), "--device", "cpu"]  # fmt: skip
    env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return out


def halves(run_dir: Path, folder: Path) -> Path:
    """valid = the first half of the run's test split (by line), test = the second half."""
    lines = (run_dir.parent / "data" / "test.txt").read_text(encoding="utf8").splitlines(keepends=True)
    cut = len(lines) // 2
    folder.mkdir()
    for name, part in (("train", lines[:cut]), ("valid", lines[:cut]), ("test", lines[cut:])):
        (folder / f"{name}.txt").write_text("".join(part), encoding="utf8")
    return folder


Row = tuple[str, float, float, str]  # method, test ppl, seconds, note


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def cache_rows(run, read) -> tuple[list[Row], object, CacheSettings]:
    """Static, the cache at its defaults (and its time against static's), the cache tuned on valid."""
    test = read["test"]
    static, static_s = timed(lambda: evaluate_split(run.model, test, run.config, "test", "word"))
    rows = [("static", static.perplexity, static_s, "")]
    (_, cached), cache_s = timed(lambda: eval_methods.static_and_cache(run, test, "test", CacheSettings()))
    rows.append(
        ("cache, defaults", cached["perplexity"], cache_s, f"{cache_s / static_s:.2f}x static's time")
    )
    (tuned, _), tune_s = timed(
        lambda: eval_methods.tuned_cache(run, read.__getitem__, CacheSettings().window)
    )
    _, cached = eval_methods.static_and_cache(run, test, "test", tuned)
    name = f"cache, tuned θ {tuned.theta:g} λ {tuned.lam:g}"
    rows.append((name, cached["perplexity"], tune_s, "seconds: the tuning"))
    return rows, static, tuned


def dynamic_rows(run, read, static, tuned: CacheSettings, sgd_lrs: list[float]) -> list[Row]:
    """Dynamic evaluation, RMS at its defaults and SGD at each step size, alone and with the tuned cache."""
    rows = []
    for settings in [DynamicSettings()] + [DynamicSettings(method="sgd", lr=lr) for lr in sgd_lrs]:
        on_valid = eval_methods.dynamic_evaluation(
            run, read["valid"], "valid", static, settings, read.__getitem__
        )
        result = eval_methods.dynamic_evaluation(
            run, read["test"], "test", static, settings, read.__getitem__, tuned
        )
        note = f"valid ppl {on_valid['perplexity']:.1f}; {result['tokens_per_s']:,.0f} tok/s"
        rows.append((f"dynamic {settings.method} lr {settings.step_size:g}", result["perplexity"],
                     result["seconds"], note))  # fmt: skip
        rows.append(("  + cache (tuned)", result["with_cache"]["perplexity"], result["seconds"], ""))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="a trained run whose ../data holds its closed-vocabulary files")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget when there is no --run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sgd-lrs", type=float, nargs="+", default=[0.003, 0.01, 0.03, 0.1])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or train_run(Path(tmp), args.minutes, args.threads)
        split_dir = halves(run_dir, Path(tmp) / "halves")
        run = load_run(run_dir)
        read = {name: run_split(run, name, str(split_dir)) for name in ("valid", "test")}
        read["train"] = run_split(run, "train", None)
        print(f"run {run_dir} (step {run.step}); scoring {len(read['test'].ids):,} test tokens, "
              f"tuning on {len(read['valid'].ids):,}", flush=True)  # fmt: skip
        rows, static, tuned = cache_rows(run, read)
        rows += dynamic_rows(run, read, static, tuned, args.sgd_lrs)
    print(f"{'method':34s} {'test ppl':>9s} {'change':>8s} {'seconds':>8s}")
    for name, ppl, seconds, note in rows:
        print(f"{name:34s} {ppl:9.2f} {ppl / static.perplexity - 1:+8.1%} {seconds:8.1f}  {note}")


if __name__ == "__main__":
    main()
