"""Peak memory of training on a folder of shards against the same bytes as one file.

Writes ``--size-mb`` MB of random words (lines of 6-20 words drawn from a 5,000-word
vocabulary) into a temp folder twice: as ``--shards`` files ``part-0000.txt ...`` and as
one file holding the same bytes in the same order. Then, for each layout, a fresh process
runs ``lstmlm train --data LAYOUT --max-steps 1`` with a tiny model (scan, tokenizer
training on the 90% train split, encoding every split into an empty token cache, one step,
evaluation of valid and test) and reports its peak RSS, read with
``resource.getrusage(RUSAGE_CHILDREN)`` by a wrapper process that runs nothing else. Each
run gets its own empty cache (``LSTMLM_CACHE``), so neither reuses the other's token ids.
Text is streamed, so the folder's peak should match the file's: the ratio should be ~1.

    python -m scripts.bench.bench_shards [--size-mb 1000] [--shards 1000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.common import LSTMLM, ROOT, thread_env

VOCAB_WORDS = 5_000
POOL_LINES = 20_000  # distinct lines drawn from; shards sample them (fast to write a GB)
TRAIN_FLAGS = {  # a tiny model, one step; wide evaluation batches, so that few windows score valid and test
    "--emsize": "8", "--nhid": "8", "--nlayers": "1", "--bptt": "32", "--batch-size": "4",
    "--vocab-size": "1000", "--eval-batch-size": "256", "--max-steps": "1", "--log-every": "1",
    "--device": "cpu",
}  # fmt: skip


def line_pool(seed: int = 0) -> list[bytes]:
    """``POOL_LINES`` lines of random words, each ending in a newline."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(VOCAB_WORDS)]
    return [
        (" ".join(vocab[i] for i in rng.integers(0, VOCAB_WORDS, rng.integers(6, 21))) + "\n").encode()
        for _ in range(POOL_LINES)
    ]


def write_layouts(work: Path, megabytes: float, shards: int) -> tuple[Path, Path]:
    """The shard folder and the single file, the same bytes in the same order."""
    import numpy as np

    pool = np.array(line_pool(), dtype=object)
    rng = np.random.default_rng(1)
    folder, single = work / "shards", work / "single.txt"
    folder.mkdir()
    per_shard = int(megabytes * 1e6 / shards)
    mean_line = sum(map(len, pool)) / len(pool)
    with single.open("wb") as whole:
        for i in range(shards):
            lines = pool[rng.integers(0, len(pool), max(1, int(per_shard / mean_line)))]
            chunk = b"".join(lines)
            (folder / f"part-{i:04d}.txt").write_bytes(chunk)
            whole.write(chunk)
    return folder, single


def measure(data: Path, work: Path, threads: int) -> dict:
    """``lstmlm train`` on ``data`` in a wrapper process: wall time and the child's peak RSS."""
    name = data.name
    out, cache = work / f"run-{name}", work / f"cache-{name}"
    flags = [arg for pair in TRAIN_FLAGS.items() for arg in pair]
    train = [*LSTMLM, "train", "--data", str(data), "--out", str(out), *flags]
    env = thread_env(threads, LSTMLM_CACHE=str(cache), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", __spec__.name, "--child", json.dumps(train)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"{name}: the measuring process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(train: list[str]) -> None:
    """The ``--child`` mode: run ``train`` and print its wall time and peak RSS as JSON."""
    start = time.perf_counter()
    done = subprocess.run(train, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"lstmlm train failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_kib * 1024 / 1e6}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1000, help="text size in MB (1e6 bytes)")
    parser.add_argument("--shards", type=int, default=1000, help="number of shard files")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP/MKL threads of lstmlm train")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    work = Path(tempfile.mkdtemp(prefix="bench_shards-"))
    try:
        start = time.perf_counter()
        folder, single = write_layouts(work, args.size_mb, args.shards)
        size, wrote_s = single.stat().st_size / 1e6, time.perf_counter() - start
        print(f"wrote {size:,.0f} MB as {args.shards:,} shards and as one file ({wrote_s:.0f} s)")
        rows = {
            "one file": measure(single, work, args.threads),
            "shard folder": measure(folder, work, args.threads),
        }
        print(f"{'layout':<14}{'wall s':>8}{'peak RSS MB':>13}")
        for layout, row in rows.items():
            print(f"{layout:<14}{row['wall_s']:>8.1f}{row['peak_rss_mb']:>13.0f}")
        ratio = rows["shard folder"]["peak_rss_mb"] / rows["one file"]["peak_rss_mb"]
        print(f"peak RSS, shard folder / one file: {ratio:.2f} (flat: ~1)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
