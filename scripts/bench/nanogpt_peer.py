"""nanoGPT's side of ``bench_nanogpt``: its scratch copy and split, its command lines, its log,
and scoring its checkpoint on every character of val with sliding windows (``score_windows``).

Nothing of nanoGPT's code is copied here: its scripts run from the scratch copy (the scoring
script imports its model.py there)."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from scripts.common import PEERS, SHARED_DATA, copy_peer

NANOGPT = PEERS / "nanogpt"
INPUT = SHARED_DATA / "tinyshakespeare" / "input.txt"
PEER_DATA = Path("data") / "shakespeare_char"  # inside the scratch copy
#: the README's CPU recipe (SOURCE.md), on top of config/train_shakespeare_char.py
PEER_RECIPE = {
    "device": "cpu", "compile": "False", "eval_iters": "20", "log_interval": "1", "block_size": "64",
    "batch_size": "12", "n_layer": "4", "n_head": "4", "n_embd": "128", "max_iters": "2000",
    "lr_decay_iters": "2000", "dropout": "0.0",
}  # fmt: skip
#: the 10-minute peer: the recipe's model and batch, its iterations scaled to the budget (the
#: best of those tried at 10 CPU-minutes, 1 thread, val nats/char scored as the benchmark does:
#: this, 7,637 iterations, 1.5634; 6 layers x 192 (6 heads), 2,857 iterations, 1.6793)
PEER_10MIN = {**PEER_RECIPE}


def score_windows(n: int, block: int, stride: int) -> list[tuple[int, int]]:
    """The windows that score every token of ``n`` but the first once: (start, first scored).

    A window at ``start`` reads tokens start..start+block-1 and predicts start+1..start+block;
    it scores its predictions from offset ``first`` on (the target start+1+first). The first
    window scores all of its own; each later one (``stride`` on, the last flush with the end)
    only those no window scored, each with at least block-stride+1 tokens of context.
    """
    if not 0 < stride <= block or n < block + 1:
        raise ValueError(f"need 0 < stride <= block < n (got n={n}, block={block}, stride={stride})")
    last = n - 1 - block  # the last start: its targets end at token n-1
    plan, scored_to = [], 0  # tokens 1..scored_to are scored
    for begin in [*range(0, last, stride), last]:
        plan.append((begin, scored_to - begin))
        scored_to = begin + block
    return plan


PEER_SCORE = """
import json, sys, numpy as np, torch, torch.nn.functional as F
from model import GPT, GPTConfig  # the peer's model.py: this runs in its scratch copy
ckpt_path, val_path, plan_path, threads = sys.argv[1:5]
torch.set_num_threads(int(threads))
ckpt = torch.load(ckpt_path, map_location="cpu")
model = GPT(GPTConfig(**ckpt["model_args"]))
model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
model.eval()
data = torch.from_numpy(np.fromfile(val_path, dtype=np.uint16).astype(np.int64))
plan, block = json.load(open(plan_path)), model.config.block_size
total, count = 0.0, 0
with torch.no_grad():
    for i in range(0, len(plan), 32):
        chunk = plan[i : i + 32]
        x = torch.stack([data[s : s + block] for s, _ in chunk])
        y = torch.stack([data[s + 1 : s + 1 + block] for s, _ in chunk])
        logits, _ = model(x, y)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(len(chunk), block)
        for row, (_, first) in zip(loss.double(), chunk):
            total, count = total + row[first:].sum().item(), count + block - first
print(json.dumps({"loss": total / count, "tokens": count, "iters": ckpt["iter_num"], "block": block}))
"""


def peer_cmd(config: dict[str, str], **override: str) -> list[str]:
    """The peer's train.py with ``config`` and ``override``; --out_dir to add."""
    flags = {**config, **override}
    flags.setdefault("eval_interval", flags["max_iters"])  # evals at 0 and at the end
    flags["always_save_checkpoint"] = "True"  # the final model, whatever the noisy estimate says
    config_file = "config/train_shakespeare_char.py"  # the recipe's base, as SOURCE.md runs it
    return [sys.executable, "train.py", config_file, *(f"--{k}={v}" for k, v in flags.items())]


def iter_times(log: str) -> list[float]:
    """The seconds of each iteration the peer logged (``iter N: loss L, time T ms, ...``)."""
    lines = [line for line in log.splitlines() if line.startswith("iter ")]
    return [float(line.split("time ")[1].split("ms")[0]) / 1000 for line in lines]


def prepare(work: Path) -> tuple[Path, Path]:
    """The peer's scratch copy with its prepared split, and lstmlm's data folder of the same text."""
    scratch = copy_peer(work / "nanogpt", NANOGPT)
    shutil.copy(INPUT, scratch / PEER_DATA / "input.txt")
    subprocess.run([sys.executable, "prepare.py"], cwd=scratch / PEER_DATA, check=True, capture_output=True)
    text = INPUT.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)  # prepare.py's rule: the first 90% of characters is train
    data = work / "data"
    data.mkdir()
    for name, part in (("train.txt", text[:cut]), ("valid.txt", text[cut:]), ("test.txt", text[cut:])):
        (data / name).write_text(part, encoding="utf-8")
    itos = pickle.loads((scratch / PEER_DATA / "meta.pkl").read_bytes())["itos"]
    val = "".join(itos[int(i)] for i in np.fromfile(scratch / PEER_DATA / "val.bin", dtype=np.uint16))
    if val != text[cut:]:
        sys.exit("the peer's val.bin is not the last 10% of input.txt: the splits differ")
    print(f"tiny-shakespeare: {len(text):,} characters, train {cut:,}, val {len(val):,}", flush=True)
    return scratch, data


def score_peer(scratch: Path, out: Path, block: int, threads: int) -> dict[str, float]:
    """The checkpoint in ``out`` on every character of val but the first (``score_windows``,
    stride block/2): its mean loss (nats/char), the characters scored, its iterations."""
    val = scratch / PEER_DATA / "val.bin"
    plan = out / "windows.json"
    plan.write_text(json.dumps(score_windows(val.stat().st_size // 2, block, block // 2)))
    cmd = [sys.executable, "-c", PEER_SCORE, str(out / "ckpt.pt"), str(val), str(plan), str(threads)]
    done = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"scoring the peer failed: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
