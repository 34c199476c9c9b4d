"""Character level: lstmlm against nanoGPT on tiny-shakespeare, val nats/char at equal training time.

The peer (../shared/peers/nanogpt, karpathy/nanoGPT; its SOURCE.md) runs from a scratch copy:
its prepare.py makes the 90/10 character split (val = the last 111,540 characters), its
train.py trains. lstmlm trains on the same split as text files (train.txt = the first 90% of
input.txt's characters, valid.txt = test.txt = the rest; checked against the peer's val.bin
character for character) with `--tokenizer char`.

Budgets (`--budgets`, default both):
  wall  the README's CPU recipe for the peer (flags in SOURCE.md, 2,000 iterations), lstmlm
        with `--max-time` = the peer's training-loop time;
  10    (any number: minutes) the best peer configuration found for 10 minutes (`PEER_10MIN`),
        its `max_iters` (and `lr_decay_iters`) set from its measured seconds per iteration so
        that its loop lasts the budget; lstmlm with `--max-time 10`.
The peer's evals cost little (`--eval_iters=20`, `--eval_interval` = its `max_iters`: at
iteration 0 and at the end) and `--always_save_checkpoint=True` saves its model at the end,
whatever its noisy 20-window val estimate says. Its training-loop time is the sum of the
per-iteration times it logs (`--log_interval=1`): from just before its loop to its last
step, its two evals included, as lstmlm's `--max-time` clock counts evaluations. A short
pilot of the peer (`--pilot-iters`, beside the same neighbour load as the real run) gives
its seconds per iteration where the time must be known before it runs (side by side, and
every minutes budget); the table gives the loop times both sides really had.

Scoring, every character of val but the first (111,539), nats/char: the peer's checkpoint
with sliding windows of block_size, stride block_size/2, each character scored once, with
at least block_size/2 characters of context except in the first window (`score_windows`;
run inside the scratch copy with its model.py); lstmlm with `lstmlm eval --split valid
--last --json`, trained with `--eval-batch-size 1` so that valid is one stream with the
state carried (its first character starts the stream and is not scored, as the peer's first
window does not score val's first character: the same 111,539 characters, and the script
checks both counts). lstmlm evaluates only at its last step (`--eval-every` beyond the
budget), after its deadline: the scoring pass, as the peer's.

`--side-by-side` (default): the peer and an lstmlm recipe train at the same time, 1 thread
each (both see the same background load on 2 cores); each recipe gets its own peer run.
`--no-side-by-side`: one run at a time with `--threads` (default 2) each.

Generation: `sample.py` (from the first budget's checkpoint, `--num_samples=1
--max_new_tokens=N --compile=False --device=cpu`) against `lstmlm generate RUN --max-tokens
N`, whole processes, `--gen-repeats` times each alternately, median, tokens/s and the ratio.

The peer configurations tried for 10 minutes (1 thread, one at a time, 10 CPU-minutes on a
loaded machine, val nats/char scored as above; docs/benchmarks.md "lstmlm vs nanoGPT,
character level"): the README recipe's model (4x128, block 64, batch 12, dropout 0) with its
iterations scaled to 7,637: 1.5634 (`PEER_10MIN`); 6 layers x 192 (6 heads), the same block
and batch, 2,857 iterations: 1.6793. (6 x 192 with block 128 and dropout 0.1, as the
config file's bigger model, measured 0.53 CPU-s an iteration: ~1,100 iterations in 10
minutes, not run.) The README recipe itself, 2,001 iterations: 1.8691.

    python -m scripts.bench.bench_nanogpt                       # both budgets, side by side
    python -m scripts.bench.bench_nanogpt --budgets wall --no-side-by-side --threads 2
    python -m scripts.bench.bench_nanogpt --budgets 0.3 --pilot-iters 20 --gen-tokens 50   # a quick look
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import statistics
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.nanogpt_peer import (
    INPUT,
    NANOGPT,
    PEER_10MIN,
    PEER_RECIPE,
    iter_times,
    peer_cmd,
    prepare,
    score_peer,
)
from scripts.common import LSTMLM, ROOT, thread_env, work_folder

RECIPES = {"defaults": "", "char-cpu": "--config configs/char-cpu.toml"}
#: what every lstmlm run adds: char tokens, valid as one stream, evaluated at the end only
LSTMLM_FIXED = ["--tokenizer", "char", "--eval-batch-size", "1", "--eval-every", "100000000"]
LSTMLM_BUDGET = {"epochs": "1000", "device": "cpu"}  # unless the recipe sets them


@dataclass
class Result:
    name: str
    loss: float | None = None  # val nats/char
    chars: int | None = None  # characters scored
    steps: int | None = None
    loop_s: float | None = None  # training-loop seconds
    wall_s: float | None = None  # process start to exit
    note: str = ""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", nargs="+", default=["wall", "10"], help="'wall' and/or minutes")
    p.add_argument("--side-by-side", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--threads", type=int, default=2, help="threads per run without --side-by-side")
    p.add_argument("--recipes", nargs="+", default=["char-cpu"], help=f"from: {', '.join(RECIPES)}")
    p.add_argument("--peer-args", default="", help="extra --key=value flags for both peer configs")
    p.add_argument("--pilot-iters", type=int, default=60, help="peer iterations timed before a run")
    p.add_argument("--gen-tokens", type=int, default=500, help="characters per generation")
    p.add_argument("--gen-repeats", type=int, default=3, help="generations per side (0: none)")
    p.add_argument("--keep", type=Path, help="keep data and runs in this (new or empty) folder")
    return p.parse_args()


def start(cmd: list[str], threads: int, cwd: Path, log: Path) -> subprocess.Popen[str]:
    """``cmd`` with ``threads`` OpenMP/MKL threads whose idle workers sleep (lstmlm's default; the
    peer's two spinning threads took 5 s an iteration instead of 0.07 s on a busy 2-core machine)."""
    env = thread_env(threads, PYTHONUNBUFFERED="1", OMP_WAIT_POLICY="PASSIVE")
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def lstmlm_cmd(recipe: str, data: Path, out: Path, minutes: float, threads: int) -> list[str]:
    argv = shlex.split(RECIPES[recipe])
    config = {}
    if "--config" in argv:
        config = tomllib.loads((ROOT / argv[argv.index("--config") + 1]).read_text(encoding="utf-8"))
    for key, value in LSTMLM_BUDGET.items():
        if f"--{key}" not in argv and key not in config.get("train", {}):
            argv += [f"--{key}", value]
    budget = ["--max-time", f"{minutes:.4f}", "--threads", str(threads)]
    return [*LSTMLM, "train", "--data", str(data), "--out", str(out), *budget, *argv, *LSTMLM_FIXED]


def pilot(args: argparse.Namespace, config: dict[str, str], recipe: str, tag: str) -> tuple[float, float]:
    """The peer's seconds per iteration (median) and per eval, beside the real run's neighbour."""
    out = args.work / f"pilot-{tag}"
    cmd = [*peer_cmd(config, max_iters=str(args.pilot_iters)), f"--out_dir={out}"]
    neighbour = None
    if args.side_by_side:  # an lstmlm run of the recipe, stopped when the pilot ends
        train = lstmlm_cmd(recipe, args.data, out / "lstmlm", 30.0, 1)
        neighbour = start(train, 1, ROOT, args.work / f"pilot-{tag}-lstmlm.log")
        training_started(neighbour, out / "lstmlm")
    peer = start(cmd, args.run_threads, args.scratch, args.work / f"pilot-{tag}.log")
    peer.wait()
    if neighbour is not None:
        neighbour.kill()
        neighbour.wait()
    times = iter_times((args.work / f"pilot-{tag}.log").read_text())
    if len(times) < 10:
        sys.exit(f"the peer's pilot logged {len(times)} iterations: see {args.work}/pilot-{tag}.log")
    step = statistics.median(times[5:-1])
    return step, max(times[-1] - step, 0.0)  # the last iteration's time holds the final eval


def finish_peer(args: argparse.Namespace, name: str, out: Path, wall: float, block: int) -> Result:
    times = iter_times((out.parent / f"{out.name}.log").read_text())
    result = Result(name, steps=len(times), loop_s=sum(times), wall_s=wall)
    if not (out / "ckpt.pt").is_file():
        result.note = f"no checkpoint: see {out}.log"
        return result
    scored = score_peer(args.scratch, out, block, args.run_threads)
    result.loss, result.chars = scored["loss"], int(scored["tokens"])
    return result


def finish_lstmlm(args: argparse.Namespace, name: str, out: Path, wall: float, rc: int) -> Result:
    if rc != 0:
        return Result(name, wall_s=wall, note=f"train exit {rc}: see {out}.log")
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    end = [e for e in events if e["event"] == "end"][-1]
    result = Result(name, steps=end["step"], loop_s=end["elapsed"], wall_s=wall)
    scoring = ["eval", str(out), "--split", "valid", "--last", "--json", "--threads", str(args.run_threads)]
    ev = subprocess.run([*LSTMLM, *scoring], cwd=ROOT, capture_output=True, text=True)
    if ev.returncode != 0:
        result.note = f"eval failed: {ev.stderr.strip()[-200:]}"
        return result
    scored = json.loads(ev.stdout)
    result.loss, result.chars = scored["loss"], scored["tokens"]
    return result


def wait(procs: dict[str, tuple[subprocess.Popen[str], float]]) -> dict[str, float]:
    """Wait for every process; each one's seconds from its start (``began``) to its exit."""
    ended: dict[str, float] = {}
    while len(ended) < len(procs):
        for key, (proc, began) in procs.items():
            if key not in ended and proc.poll() is not None:
                ended[key] = time.perf_counter() - began
        time.sleep(0.1)
    return ended


def training_started(proc: subprocess.Popen[str], out: Path, timeout: float = 300.0) -> None:
    """Wait until the lstmlm run in ``out`` has started training (its metrics.jsonl exists): its
    start-up (imports, tokenizing) is not the neighbour load the peer should see."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not (out / "metrics.jsonl").is_file() and time.monotonic() < deadline:
        time.sleep(0.1)


def run_pair(
    args: argparse.Namespace, tag: str, recipe: str, peer: list[str], minutes: float | None
) -> list[Result]:
    """The peer (its full command) and one lstmlm recipe for ``minutes`` (None: the peer's loop
    time, measured first): at once, or one after the other."""
    peer_out, lm_out = args.work / f"peer-{tag}", args.work / f"lstmlm-{tag}"
    peer_argv, peer_log = [*peer, f"--out_dir={peer_out}"], args.work / f"peer-{tag}.log"
    procs: dict[str, tuple[subprocess.Popen[str], float]] = {}
    walls: dict[str, float] = {}
    if not args.side_by_side:  # the peer first: its loop time is lstmlm's budget
        procs["peer"] = (start(peer_argv, args.run_threads, args.scratch, peer_log), time.perf_counter())
        walls = wait(procs)
        del procs["peer"]
        minutes = minutes or sum(iter_times(peer_log.read_text())) / 60
    lm_cmd = lstmlm_cmd(recipe, args.data, lm_out, minutes or 0.0, args.run_threads)
    print(f"  {tag}: lstmlm {shlex.join(lm_cmd[3:])}", flush=True)
    procs["lstmlm"] = (
        start(lm_cmd, args.run_threads, ROOT, args.work / f"lstmlm-{tag}.log"),
        time.perf_counter(),
    )
    if args.side_by_side:  # both training loops start together
        training_started(procs["lstmlm"][0], lm_out)
        procs["peer"] = (start(peer_argv, args.run_threads, args.scratch, peer_log), time.perf_counter())
    walls |= wait(procs)
    lm_proc = procs["lstmlm"][0]
    block = int(next(f for f in peer if f.startswith("--block_size=")).split("=")[1])
    results = [finish_peer(args, "nanoGPT", peer_out, walls["peer"], block)]
    results.append(finish_lstmlm(args, recipe, lm_out, walls["lstmlm"], lm_proc.returncode or 0))
    for r in results:
        print(f"    {r.name}: val {fmt(r.loss, '.4f')} nats/char, {fmt(r.steps, ',')} steps, "
              f"loop {fmt(r.loop_s, '.1f')} s {r.note}", flush=True)  # fmt: skip
    return results


def budget_round(args: argparse.Namespace, budget: str) -> tuple[str, list[Result]]:
    """One budget: the peer's config and iterations, then each recipe beside its own peer run."""
    wall = budget == "wall"
    extra = dict(flag.lstrip("-").split("=", 1) for flag in shlex.split(args.peer_args))
    config = {**(PEER_RECIPE if wall else PEER_10MIN), **extra}
    minutes: float | None = None if wall else float(budget)
    if not wall or args.side_by_side:  # the peer's speed must be known before it runs
        step, eval_s = pilot(args, config, args.recipes[0], budget)
        if wall:
            minutes = ((int(config["max_iters"]) + 1) * step + 2 * eval_s) / 60
        else:
            config["max_iters"] = config["lr_decay_iters"] = str(
                int((float(budget) * 60 - 2 * eval_s) / step) - 1
            )
        print(f"  pilot: the peer at {step * 1000:.1f} ms/iteration, {eval_s:.1f} s per eval", flush=True)
    if int(config["lr_decay_iters"]) <= int(config.get("warmup_iters", "100")):  # its get_lr divides by 0
        config["warmup_iters"] = str(int(config["lr_decay_iters"]) // 10)  # tiny budgets only
    label = "README recipe" if wall else f"{float(budget):g} min"
    print(f"\n== {label}: nanoGPT {peer_flags_text(config)} ==", flush=True)
    peer = peer_cmd(config)
    results: list[Result] = []
    for recipe in args.recipes:
        results += run_pair(args, f"{budget}-{recipe}", recipe, peer, minutes)
    return label, results


def peer_flags_text(config: dict[str, str]) -> str:
    keys = (
        "n_layer",
        "n_head",
        "n_embd",
        "block_size",
        "batch_size",
        "dropout",
        "learning_rate",
        "max_iters",
    )
    return " ".join(f"{k}={config[k]}" for k in keys if k in config)


def generation(args: argparse.Namespace, peer_out: Path, lm_out: Path) -> tuple[float, float]:
    """Median whole-process seconds of ``sample.py`` and of ``lstmlm generate``, alternating."""
    n, threads = str(args.gen_tokens), str(args.run_threads)
    peer = [sys.executable, "sample.py", f"--out_dir={peer_out}", "--device=cpu", "--compile=False"]
    peer += ["--num_samples=1", f"--max_new_tokens={n}"]
    lm = [*LSTMLM, "generate", str(lm_out), "--max-tokens", n, "--num-samples", "1", "--threads", threads]
    times: dict[str, list[float]] = {"peer": [], "lstmlm": []}
    for _ in range(args.gen_repeats):
        for key, cmd, cwd in (("peer", peer, args.scratch), ("lstmlm", lm, ROOT)):
            began = time.perf_counter()
            env = thread_env(args.run_threads, OMP_WAIT_POLICY="PASSIVE")
            subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
            times[key].append(time.perf_counter() - began)
    return statistics.median(times["peer"]), statistics.median(times["lstmlm"])


def fmt(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "—"


def print_table(table: dict[str, list[Result]], threads: int, side: bool) -> None:
    how = f"{threads} thread{'s' * (threads > 1)} each, " + ("side by side" if side else "one at a time")
    print(f"\nval nats/char (every character of val but the first), {how}")
    widths = (-14, -9, 9, 7, 8, 7, 7, 7)
    head = ("budget", "run", "nats/char", "× peer", "chars", "steps", "loop s", "wall s")
    print(" ".join(f"{h:>{w}}" if w > 0 else f"{h:<{-w}}" for h, w in zip(head, widths, strict=True)))
    for label, results in table.items():
        peer = results[0]
        for r in results:
            peer = r if r.name == "nanoGPT" else peer
            ratio = f"{r.loss / peer.loss:.3f}" if r.loss and peer.loss else "—"
            cells = (label, r.name, fmt(r.loss, ".4f"), ratio, fmt(r.chars, ","), fmt(r.steps, ","))
            cells += (fmt(r.loop_s, ".1f"), fmt(r.wall_s, ".1f"))
            row = " ".join(f"{c:>{w}}" if w > 0 else f"{c:<{-w}}" for c, w in zip(cells, widths, strict=True))
            print(row + (f"  {r.note}" if r.note else ""))
    counts = {r.chars for results in table.values() for r in results if r.chars is not None}
    print("the same characters scored on both sides" if len(counts) == 1 else f"COUNTS DIFFER: {counts}")


def print_generation(args: argparse.Namespace) -> None:
    tag = f"{args.budgets[0]}-{args.recipes[0]}"
    peer_s, lm_s = generation(args, args.work / f"peer-{tag}", args.work / f"lstmlm-{tag}")
    n, runs = args.gen_tokens, f"{args.run_threads} thread(s), median of {args.gen_repeats}"
    print(f"\ngeneration of {n} characters, whole processes, {runs}:")
    print(f"  nanoGPT sample.py  {peer_s:6.2f} s  {n / peer_s:7.1f} chars/s")
    print(f"  lstmlm generate    {lm_s:6.2f} s  {n / lm_s:7.1f} chars/s  ({peer_s / lm_s:.2f}× its speed)")


def main() -> None:
    args = parse_args()
    print("command:", shlex.join([sys.executable, "-m", __spec__.name, *sys.argv[1:]]), flush=True)
    if missing := [str(p) for p in (INPUT, NANOGPT) if not p.exists()]:
        print(f"skipped: not found: {', '.join(missing)}")
        return
    if missing := [name for name in ("requests", "tiktoken") if importlib.util.find_spec(name) is None]:
        print(f"skipped: the peer's scripts import {' and '.join(missing)}: pip install -e '.[bench]'")
        return
    if unknown := [r for r in args.recipes if r not in RECIPES]:
        sys.exit(f"unknown recipe(s) {', '.join(unknown)}: known {', '.join(RECIPES)}")
    args.run_threads = 1 if args.side_by_side else args.threads
    with work_folder(args.keep, "bench_nanogpt-") as args.work:
        args.scratch, args.data = prepare(args.work)
        table = dict(budget_round(args, budget) for budget in args.budgets)
        print_table(table, args.run_threads, args.side_by_side)
        if args.gen_repeats:
            print_generation(args)


if __name__ == "__main__":
    main()
