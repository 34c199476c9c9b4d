"""Does `make demo` teach the seed's examples on every machine and seed?

Trains the demo config (``configs/demo.toml``) once per seed and CPU mode, each in its own
process, and checks what the demo shows: every demo prompt prefers the agreeing form, and
every (agreement type x attractors) cell of the default suite is at least 95% correct by
the sentence rule, and the long-range suite (``--suite long-range``, pronouns 6-268 tokens
from their referent) is at least 95% correct in every distance bin (``--by distance``:
0-9, 10-34, 35-69, 70-139, 140+ tokens): column ``long`` is its overall accuracy,
``long min`` its worst bin.
``avx2`` runs with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``, which makes an
AVX-512 CPU compute like an AVX2-only one (other rounding, no bf16 LSTM).

    python -m scripts.experiments.demo_sweep                    # seeds 1111 1 2 3 4, native and avx2
    python -m scripts.experiments.demo_sweep --seeds 1111 --modes avx2 --jobs 1

``--jobs 2`` runs two trainings at once with one thread each; ``--threads`` sets the threads
per training (default ``2 // jobs``); the thread count does not change the results (see
README "Determinism"). Prints one row per run and a last line with the verdict; the
figures go to ``--out/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lstmlm.runs import load as runs
from lstmlm.scoring.accuracy import DISTANCE_BINS, distance_bin
from scripts.common import ROOT

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
THRESHOLD = 0.95
BINS = [distance_bin(b) for b in DISTANCE_BINS]  # the long-range suite's distance bins


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[1111, 1, 2, 3, 4])
    p.add_argument("--modes", nargs="+", choices=("native", "avx2"), default=["native", "avx2"])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.toml")
    p.add_argument("--jobs", type=int, default=2, help="trainings at once")
    p.add_argument("--threads", type=int, help="threads per training (default: 2 // jobs, min 1)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "demo_sweep")
    p.add_argument("--rescore", action="store_true", help="score the runs already in --out; train none")
    p.add_argument("--worker", nargs=2, metavar=("SEED", "RUN"), help=argparse.SUPPRESS)
    return p.parse_args()


def worker(seed: int, out: Path, config: Path, rescore: bool) -> dict[str, Any]:
    """Train one demo run (unless ``rescore``) and score it, in the child process under its CPU mode."""
    import torch

    from lstmlm.config import load_toml
    from lstmlm.data.grammar.demo_prompts import demo_prompts
    from lstmlm.scoring.accuracy import accuracy_by
    from lstmlm.scoring.pairs import demo_rows, read_suite, resolve_suite, score_pairs
    from lstmlm.training.launch import plan_run, start_training

    trained: dict[str, Any] = {}
    if not rescore:
        flags: dict[str, dict[str, Any]] = {"train": {"seed": seed}}
        run_config = plan_run(out, load_toml(config), flags, resume=False, overwrite=True)
        start = time.monotonic()
        outcome = start_training(out, run_config, resume=False, overwrite=True)
        trained = {
            "steps": outcome.state.step,
            "train_seconds": time.monotonic() - start,
            "test_ppl": outcome.test.perplexity if outcome.test else None,
        }
    run = runs.load_run(out, best=True)
    scores = score_pairs(run.model, run.tokenizer, read_suite(resolve_suite("default")))
    cells = {
        f"{a.group['agreement']}:{a.group['attractors']}": a.sentence_accuracy
        for a in accuracy_by(scores, ["agreement", "attractors"])
    }
    rows = demo_rows(run.model, run.tokenizer, demo_prompts(), seed=1, temperature=0.8)
    long_range = score_pairs(run.model, run.tokenizer, read_suite(resolve_suite("long-range")))
    bins = {a.group["distance"]: a.sentence_accuracy for a in accuracy_by(long_range, ["distance"])}
    return {
        "seed": seed,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **trained,
        "prompts_right": sum(row.ok for row in rows),
        "prompts": len(rows),
        "cells": cells,
        "long_range": sum(r.sentence_correct for r in long_range) / len(long_range),
        "long_range_bins": bins,
    }


def launch(seed: int, mode: str, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """Run one (seed, mode) in a child process; returns its figures."""
    out = args.out / f"{mode}-{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), **(AVX2 if mode == "avx2" else {})}
    command = [sys.executable, "-m", __spec__.name, "--config", str(args.config)]
    command += ["--worker", str(seed), str(out)]
    if args.rescore:
        command.append("--rescore")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"demo_sweep: seed {seed} ({mode}) failed:\n{done.stderr[-2000:]}")
    return {"mode": mode, **json.loads(done.stdout.strip().splitlines()[-1])}


def passes(r: dict[str, Any]) -> bool:
    """Every prompt right, every default cell and every long-range distance bin >= 95%."""
    worst = min(*r["cells"].values(), *r["long_range_bins"].values())
    return r["prompts_right"] == r["prompts"] and worst >= THRESHOLD


def print_row(r: dict[str, Any], columns: list[str]) -> None:
    cells = " ".join(f"{100 * r['cells'][c]:6.1f}" for c in columns)
    ppl = f"{r['test_ppl']:7.2f}" if r.get("test_ppl") else " " * 7
    bins = " ".join(f"{100 * r['long_range_bins'][b]:6.1f}" for b in BINS)
    long = f"{100 * r['long_range']:6.1f} {100 * min(r['long_range_bins'].values()):8.1f}"
    print(
        f"{r['mode']:<7}{r['seed']:>5} {r['cpu_capability']:>7} {ppl} "
        f"{r['prompts_right']:>2}/{r['prompts']} {cells} {long} {bins} {'✓' if passes(r) else '✗'}",
        flush=True,
    )


def main() -> None:
    args = parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
        print(json.dumps(worker(int(args.worker[0]), Path(args.worker[1]), args.config, args.rescore)))
        return
    jobs = [(seed, mode) for mode in args.modes for seed in args.seeds]
    threads = args.threads or max(1, 2 // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: launch(job[0], job[1], args, threads), jobs))
    columns = sorted(results[0]["cells"], key=lambda c: (c.split(":")[0], int(c.split(":")[1])))
    print(f"\nconfig {args.config.name}; sentence-rule accuracy (%) by agreement:attractors")
    header = f"{'mode':<7}{'seed':>5} {'cpu':>7} {'ppl':>7} {'demo':>5} "
    header += " ".join(f"{c:>6}" for c in columns)
    print(header + "   long long min " + " ".join(f"{b:>6}" for b in BINS))
    for r in results:
        print_row(r, columns)
    passed = all(passes(r) for r in results)
    worst = min(min(r["cells"].values()) for r in results)
    worst_bin = min(min(r["long_range_bins"].values()) for r in results)
    print(
        f"\n{'all' if passed else 'NOT all'} {len(results)} runs: every prompt right, every cell and every "
        f"long-range bin >= 95% (worst cell {100 * worst:.1f}%, worst long-range bin {100 * worst_bin:.1f}%)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
