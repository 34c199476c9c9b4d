"""Full vs adaptive softmax at a large vocabulary: training tokens/s and valid perplexity at equal steps.

The corpus is synthetic, so that the vocabulary is as large as asked (default 60,000 word
types) on a machine without big corpora: a Zipf(1.1) unigram stream in which, half of the
time, a word is followed by a fixed successor (word k -> a fixed random word), which a
recurrent model can learn. Word ids are the tokenizer's frequency order, as the adaptive
softmax wants. Each recipe is `lstmlm train` for the same steps, one after the other, the
same threads; tokens/s is the mean of the logged rates after the first log (warm-up),
perplexity the final valid evaluation.

    python -m scripts.bench.bench_softmax             # vocab 60k, 300 steps, 2 threads
    python -m scripts.bench.bench_softmax --steps 100 --vocab 50000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from scripts.common import LSTMLM, ROOT, thread_env

MODEL = ["--emsize", "256", "--nhid", "256", "--nlayers", "1", "--dropout", "0.1", "--no-tied"]
RECIPES = {
    "full": [],
    "adaptive": ["--softmax", "adaptive", "--cutoffs", "2000,10000"],
    "adaptive-tied": ["--softmax", "adaptive", "--cutoffs", "2000,10000", "--tied"],
}


def write_corpus(folder: Path, vocab: int, tokens: int, seed: int = 0) -> None:
    """Zipf(1.1) words over ``vocab`` types; with p = 0.5 a word's fixed successor follows instead."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1)
    probs = ranks**-1.1 / np.sum(ranks**-1.1)
    draws = rng.choice(vocab, size=tokens, p=probs)
    successor = rng.permutation(vocab)
    follow = rng.random(tokens) < 0.5
    ids = draws.copy()
    for t in range(1, tokens):
        if follow[t]:
            ids[t] = successor[ids[t - 1]]
    words = np.array([f"w{i}" for i in range(vocab)])[ids]
    cut = {"train": (0, int(0.9 * tokens)), "valid": (int(0.9 * tokens), int(0.95 * tokens)),
           "test": (int(0.95 * tokens), tokens)}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    for name, (a, b) in cut.items():
        lines = [" ".join(words[i : min(i + 20, b)]) for i in range(a, b, 20)]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf8")


def train(data: Path, out: Path, flags: list[str], steps: int, threads: int) -> dict[str, float]:
    env = thread_env(threads)
    cmd = [*LSTMLM, "train", "--data", str(data), "--out", str(out), "--device", "cpu",
           "--max-steps", str(steps), "--eval-every", str(steps), "--log-every", "25",
           *MODEL, *flags]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [e["tokens_per_s"] for e in events if e.get("event") == "log"][1:]
    valid = [e for e in events if e.get("event") == "eval"][-1]
    params = next(e for e in events if e.get("event") == "start").get("parameters")
    return {"tokens_per_s": float(np.mean(rates)), "valid_ppl": valid["valid_ppl"], "parameters": params}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, default=60_000)
    p.add_argument("--tokens", type=int, default=1_500_000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "zipf"
        write_corpus(data, args.vocab, args.tokens)
        print(f"synthetic Zipf corpus: {args.vocab:,} types, {args.tokens:,} tokens; 1x256 LSTM, B 20, "
              f"T 35, {args.steps} steps, {args.threads} threads", flush=True)  # fmt: skip
        results = {}
        for name in args.recipes:
            results[name] = train(data, Path(tmp) / name, RECIPES[name], args.steps, args.threads)
            r = results[name]
            print(f"  {name:14s} {r['tokens_per_s']:>9,.0f} tok/s   valid ppl {r['valid_ppl']:>9.1f}   "
                  f"params {r['parameters'] or 0:,}", flush=True)  # fmt: skip
    if "full" in results:
        base = results["full"]
        for name, r in results.items():
            if name != "full":
                speed = r["tokens_per_s"] / base["tokens_per_s"]
                ppl = r["valid_ppl"] / base["valid_ppl"] - 1
                print(
                    f"{name}: {speed:.2f}x the full softmax's tokens/s, valid ppl {ppl:+.1%} at equal steps"
                )


if __name__ == "__main__":
    main()
