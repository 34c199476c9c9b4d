"""``lstmlm score`` on one long line: seconds per 1,000 words at growing lengths (linear: constant).

Trains a tiny run (16 units, a few dozen steps on a tiny generated corpus) into a temp
folder, then times the library call behind ``lstmlm score`` (``lstmlm.load(run).score``)
on one line of each ``--words`` length, fresh (the default) and with ``--context``, and
prints the seconds and seconds per 1,000 words. Scoring is linear in the line's length
when seconds per 1,000 words stay about the same from row to row.

The reference is the code before this benchmark existed, where grouping tokens into words
re-encoded every word's prefix (quadratic): one line of 5,000 words took 6.9 s (1.4 s per
1,000 words), 20,000 words 90 s (4.5 s per 1,000), 200,000 words had not finished after
120 s (2 cores, 1 thread).

    python -m scripts.bench.bench_score
    python -m scripts.bench.bench_score --words 5000 20000 200000 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from scripts.common import LSTMLM, thread_env

WORDS = ["the", "cat", "dog", "bird", "sees", "likes", "chases", "finds", "."]
TINY = ["--emsize", "16", "--nhid", "16", "--nlayers", "1", "--bptt", "8", "--batch-size", "4"]
T = TypeVar("T")
OLD_SECONDS = {5_000: "6.9", 20_000: "90", 200_000: "> 120 (unfinished)"}  # the quadratic code


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--words", type=int, nargs="+", default=[5_000, 20_000, 200_000], help="line lengths")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per length and mode (median)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--steps", type=int, default=40, help="training steps of the tiny run")
    return p.parse_args()


def train_tiny_run(folder: Path, steps: int, threads: int) -> Path:
    rng = random.Random(0)
    corpus = folder / "corpus.txt"
    lines = (" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(400))
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = folder / "run"
    train = [*LSTMLM, "train", "--data", str(corpus), "--out", str(run), *TINY, "--max-steps", str(steps)]
    env = thread_env(threads, LSTMLM_CACHE=str(folder / "cache"))
    subprocess.run(train, check=True, capture_output=True, env=env)
    return run


def timed(call: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``call()`` over ``repeats`` runs, and its (last) result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    args = parse_args()
    import torch

    import lstmlm

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="lstmlm-bench-score-") as tmp:
        lm = lstmlm.load(train_tiny_run(Path(tmp), args.steps, args.threads))
        rng = random.Random(1)
        print(f"tiny run: {lm!r}; torch threads {args.threads}; median of {args.repeats}")
        print(f"{'words':>8} {'mode':<8} {'seconds':>8} {'s / 1k words':>13}   before (quadratic), s")
        for n in args.words:
            line = " ".join(rng.choice(WORDS) for _ in range(n))
            for context in (False, True):
                took, [score] = timed(lambda: lm.score([line], context=context), args.repeats)  # noqa: B023
                assert len(score.words) == n  # every word of the line, one WordScore each
                before = "" if context else OLD_SECONDS.get(n, "")
                mode = "context" if context else "fresh"
                print(f"{n:>8,} {mode:<8} {took:>8.2f} {1000 * took / n:>13.4f}   {before}", flush=True)


if __name__ == "__main__":
    main()
