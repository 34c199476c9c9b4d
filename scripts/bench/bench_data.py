"""Data path throughput and memory: tokenizer training, encoding into the token cache, reload.

Writes a synthetic corpus of about ``--mb`` MB (train/valid/test.txt, 90/5/5 by size; lines
of ~20 words drawn from a Zipf-like 50k-word vocabulary) to a temp folder. Then, for each
tokenizer, a fresh process loads the folder, trains the tokenizer on the train split and
encodes all splits into an empty token cache; its peak RSS is ``ru_maxrss``. A second fresh
process loads the folder again and gets every split from the cache (the tokenizer must not
run): "hit s" is that whole second run (for files of 16 MB and more an unchanged file is
not re-read: its scan and fingerprint are remembered; smaller files are read again to check
and fingerprint them; then memory-mapping), "mmap ms" the memory-mapping alone.
"import RSS MB" is the encoding process's RSS once lstmlm (and torch, which
lstmlm.data.tokens imports) is loaded.

    python -m scripts.bench.bench_data [--mb 100] [--tokenizers word,char,bpe] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.common import ROOT

SPLIT_SHARES = {"train": 0.90, "valid": 0.05, "test": 0.05}
VOCAB_WORDS = 50_000


def generate(folder: Path, megabytes: float, seed: int = 0) -> None:
    """Write train/valid/test.txt, about ``megabytes`` MB in all, chunk by chunk."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(
        ["".join(rng.choice(letters, rng.integers(2, 11))) for _ in range(VOCAB_WORDS)], dtype=object
    )
    weights = 1.0 / (np.arange(VOCAB_WORDS) + 2.7)  # Zipf-Mandelbrot ranks
    weights /= weights.sum()
    for split, share in SPLIT_SHARES.items():
        target, written = int(megabytes * 1e6 * share), 0
        with (folder / f"{split}.txt").open("w", encoding="utf-8", newline="\n") as f:
            while written < target:
                n_lines = max(20, min(2000, (target - written) // 120))  # little overshoot
                lengths = rng.integers(10, 31, size=n_lines)  # ~20 words a line
                words = vocab[rng.choice(VOCAB_WORDS, size=int(lengths.sum()), p=weights)]
                ends = np.cumsum(lengths)
                chunk = "".join(
                    " ".join(words[end - n : end]) + "\n" for n, end in zip(lengths, ends, strict=True)
                )
                f.write(chunk)
                written += len(chunk)


def encode_run(folder: Path, cache: Path, kind: str) -> dict:
    """Train ``kind`` on train and encode every split into ``cache`` (a fresh process)."""
    from lstmlm.config import DataConfig
    from lstmlm.data.corpus import load_corpus
    from lstmlm.data.tokenizer import train_tokenizer
    from lstmlm.data.tokens import encode_split

    imported = current_rss()
    start = time.perf_counter()
    corpus = load_corpus(DataConfig(data=str(folder)))
    loaded = time.perf_counter()
    tokenizer = train_tokenizer(kind, corpus.splits["train"], vocab_size=8192 if kind == "bpe" else 0)
    trained = time.perf_counter()
    encoded = {name: encode_split(lines, tokenizer, cache_dir=cache) for name, lines in corpus.splits.items()}
    done = time.perf_counter()
    tokenizer.save(cache / "tokenizer.json")
    return {
        "load_s": loaded - start,
        "train_s": trained - loaded,
        "encode_s": done - trained,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "import_rss": imported,
        "vocab": tokenizer.vocab_size,
        "dtype": str(encoded["train"].ids.dtype),
        "tokens": {name: int(split.ids.size) for name, split in encoded.items()},
    }


def current_rss() -> int | None:
    """This process's resident memory in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def reload_run(folder: Path, cache: Path) -> dict:
    """Load the corpus again and take every split from ``cache`` (a fresh process)."""
    from lstmlm.config import DataConfig
    from lstmlm.data import tokens
    from lstmlm.data.corpus import load_corpus
    from lstmlm.data.tokenizer import Tokenizer
    from lstmlm.data.tokens import cache_key, encode_split

    tokenizer = Tokenizer.load(cache / "tokenizer.json")
    calls = 0
    encode_lines = tokenizer.encode_lines

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return encode_lines(*args, **kwargs)

    tokenizer.encode_lines = counted  # type: ignore[method-assign]
    start = time.perf_counter()
    corpus = load_corpus(DataConfig(data=str(folder)))
    encoded = {name: encode_split(lines, tokenizer, cache_dir=cache) for name, lines in corpus.splits.items()}
    hit = time.perf_counter() - start
    keys = [cache_key(lines, tokenizer) for lines in corpus.splits.values()]  # fingerprints are memoised
    start = time.perf_counter()
    for key in keys:
        tokens._read_cache(cache, key)
    mmap = time.perf_counter() - start
    return {
        "hit_s": hit,
        "mmap_s": mmap,
        "tokenizer_calls": calls,
        "tokens": {name: int(split.ids.size) for name, split in encoded.items()},
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def in_child(*args: str) -> dict:
    """Run this script's ``--child`` mode in a fresh interpreter and return its JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", __spec__.name, "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"child {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


HEADER = [
    "tokenizer",
    "vocab",
    "dtype",
    "tokens",
    "load s",
    "train s",
    "train MB/s",
    "encode s",
    "encode MB/s",
    "import RSS MB",
    "peak RSS MB",
    "cache MB",
    "hit s",
    "mmap ms",
    "hit RSS MB",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100, help="corpus size in MB (1e6 bytes)")
    parser.add_argument("--tokenizers", default="word,char,bpe", help="comma-separated kinds")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (corpus and caches)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args()


def child(mode: str, *rest: str) -> None:
    """The ``--child`` mode: one step in this fresh process, its result as a JSON line."""
    if mode == "generate":
        generate(Path(rest[0]), float(rest[1]))
        result: dict = {}
    elif mode == "encode":
        result = encode_run(Path(rest[0]), Path(rest[1]), rest[2])
    else:
        result = reload_run(Path(rest[0]), Path(rest[1]))
    print(json.dumps(result))


def write_corpus(work: Path, megabytes: float) -> tuple[Path, float, float]:
    """Generate the corpus in a child, say so; returns its folder, total and train MB."""
    corpus = work / "corpus"
    corpus.mkdir()
    start = time.perf_counter()
    in_child("generate", str(corpus), str(megabytes))
    sizes = {split: (corpus / f"{split}.txt").stat().st_size for split in SPLIT_SHARES}
    total_mb, train_mb = sum(sizes.values()) / 1e6, sizes["train"] / 1e6
    print(
        f"corpus: {total_mb:.1f} MB ({train_mb:.1f} MB train) in {work}, "
        f"written in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs",
        flush=True,
    )
    return corpus, total_mb, train_mb


def bench_tokenizer(kind: str, work: Path, corpus: Path, total_mb: float, train_mb: float) -> list[str]:
    """Encode into a fresh cache, then reload from it (each a child); returns the table row."""
    cache = work / f"cache-{kind}"
    cache.mkdir()
    made = in_child("encode", str(corpus), str(cache), kind)
    again = in_child("reload", str(corpus), str(cache))
    if again["tokenizer_calls"] or again["tokens"] != made["tokens"]:
        sys.exit(f"{kind}: the reload did not come from the cache: {again}")
    cache_mb = sum(p.stat().st_size for p in cache.glob("*.bin")) / 1e6
    return [
        kind,
        f"{made['vocab']:,}",
        made["dtype"],
        f"{sum(made['tokens'].values()):,}",
        f"{made['load_s']:.1f}",
        f"{made['train_s']:.1f}",
        f"{train_mb / made['train_s']:.1f}",
        f"{made['encode_s']:.1f}",
        f"{total_mb / made['encode_s']:.1f}",
        "-" if made["import_rss"] is None else f"{made['import_rss'] / 2**20:.0f}",
        f"{made['peak_rss'] / 2**20:.0f}",
        f"{cache_mb:.0f}",
        f"{again['hit_s']:.2f}",
        f"{again['mmap_s'] * 1e3:.1f}",
        f"{again['peak_rss'] / 2**20:.0f}",
    ]


def main() -> None:
    args = parse_args()
    if args.child:
        child(*args.child)
        return
    kinds = [kind.strip() for kind in args.tokenizers.split(",") if kind.strip()]
    work = Path(tempfile.mkdtemp(prefix="lstmlm-bench-data-"))
    os.environ["LSTMLM_CACHE"] = str(work / "lstmlm-cache")  # the children's scan memos, cleaned up with it
    try:
        corpus, total_mb, train_mb = write_corpus(work, args.mb)
        rows = [HEADER]
        for kind in kinds:
            rows.append(bench_tokenizer(kind, work, corpus, total_mb, train_mb))
            print(f"{kind}: done", flush=True)
        print(table(rows))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
