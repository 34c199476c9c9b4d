"""Test perplexity at equal wall-clock budgets: pytorch/examples' word LM vs lstmlm recipes.

The peer (../shared/peers/pytorch-examples-word_language_model, run from a scratch copy) and
each lstmlm recipe train in turn on the same closed-vocabulary data (WikiText-2 valid.txt or
PTB ptb.valid.txt as train; test.txt as valid and test, words unseen in train -> <unk>) for
the same minutes and torch threads. The peer runs `main.py --epochs 1000`, gets SIGINT at the
deadline (its clock starts at its first output line), and its best model.pt is scored here on
test as its main.py does (batch 10, state carried, its data.py); lstmlm runs `train --max-time
MIN` (clock from its training loop) then `eval --split test --json`. "train CPU s": process
CPU up to the peer's SIGINT / lstmlm's `end` event (so with lstmlm's final valid evaluation,
which follows its deadline); "all CPU s": the whole process (getrusage).

    python -m scripts.bench.bench_quality                 # 2 and 10 minutes, WikiText-2
    python -m scripts.bench.bench_quality --minutes 5 --corpus ptb --recipes defaults
    python -m scripts.bench.bench_quality --minutes 10 --recipes best-cpu best-cpu-no-awd best-cpu-epoch-evals
    python -m scripts.bench.bench_quality --recipe awd-no-wd='--config configs/best-cpu.toml --weight-drop 0'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.common import (
    CORPORA,
    LSTMLM,
    PEER,
    ROOT,
    SHARED_DATA,
    copy_peer,
    prepare_data,
    thread_env,
    work_folder,
)

BEST = "--config configs/best-cpu.toml"
RECIPES = {  # the first two run unless --recipes says otherwise; the others toggle best-cpu's pieces
    "defaults": "",
    "best-cpu": BEST,
    "best-cpu-no-awd": f"{BEST} --no-locked-dropout --dropouti 0.4 --dropouth 0.4 --dropoute 0 "
    "--weight-drop 0",
    "best-cpu-no-weight-drop": f"{BEST} --weight-drop 0",
    "best-cpu-epoch-evals": f"{BEST} --eval-every 0",
    "best-cpu-plateau": f"{BEST} --schedule plateau",
}
DEFAULT_RECIPES = ["defaults", "best-cpu"]
BUDGET_FLAGS = {"epochs": "1000", "device": "cpu"}  # unless the recipe (flag or its TOML [train]) sets them

PEER_EVAL = """
import json, math, os, sys, torch
data_dir, model_path, bptt, threads = sys.argv[1:5]
import data  # the peer's data.py: this runs in its scratch copy
torch.set_num_threads(int(threads))
corpus = data.Corpus(data_dir)
out = {"vocab": len(corpus.dictionary), "train_tokens": len(corpus.train)}
if os.path.exists(model_path):
    model = torch.load(model_path, map_location="cpu", weights_only=False).eval()
    model.rnn.flatten_parameters()
    hidden, bptt, n, total = model.init_hidden(10), int(bptt), len(corpus.test) // 10, 0.0
    source = corpus.test[: n * 10].view(10, -1).t().contiguous()
    with torch.no_grad():
        for i in range(0, n - 1, bptt):
            x, y = source[i : i + bptt], source[i + 1 : i + 1 + bptt]
            output, hidden = model(x[: len(y)], hidden)
            total += torch.nn.functional.nll_loss(output, y.reshape(-1), reduction="sum").item()
    out["ppl"] = math.exp(total / ((n - 1) * 10))
print(json.dumps(out))
"""

Cpu = tuple[float | None, float]  # (train CPU s, all CPU s)


@dataclass
class Result:
    name: str
    ppl: float | None
    reached: str
    cpu_s: Cpu
    tokens: int | None = None
    note: str = ""
    vocab: int | None = None


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[2.0, 10.0], help="training minutes per run")
    p.add_argument("--corpus", choices=sorted(CORPORA), default="wikitext")
    p.add_argument("--data-dir", type=Path, help="folder of the corpus' files (default ../shared/data/...)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for every run")
    p.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES, help=f"from: {', '.join(RECIPES)}")
    p.add_argument("--recipe", action="append", default=[], metavar="NAME='FLAGS'", help="add (and run) one")
    p.add_argument("--peer-args", default="", help="extra flags for the peer's main.py")
    p.add_argument("--grace", type=float, default=5.0, help="seconds from the peer's SIGINT to SIGKILL")
    p.add_argument("--keep", type=Path, help="keep data and runs in this (new or empty) folder")
    return p.parse_args()


def all_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of a running process, from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(cmd: list[str], threads: int, cwd: Path, log: Path | None = None) -> subprocess.Popen[str]:
    env = thread_env(threads, PYTHONUNBUFFERED="1")
    with open(log, "w") if log else contextlib.nullcontext(subprocess.PIPE) as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_until(proc: subprocess.Popen[str], done: Callable[[], bool]) -> float | None:
    """Poll until ``done()`` or the process ends; returns its CPU seconds at that moment."""
    cpu = proc_cpu(proc.pid)
    while proc.poll() is None and not done():
        time.sleep(0.2)
        cpu = proc_cpu(proc.pid) or cpu
    return cpu


def watch_peer(proc: subprocess.Popen[str], log: Path, lines: list[str], seen: dict[str, float]) -> None:
    """Reader thread: keep the peer's stdout, note its first line and epoch ends, echo those."""
    with open(log, "w") as f:
        for line in proc.stdout or []:
            f.write(line)
            lines.append(line)
            seen.setdefault("first", time.monotonic())
            if "end of epoch" in line:
                seen["epoch_end"] = time.monotonic()
                print("    peer", " ".join(line.strip("| \n").split()), flush=True)


def train_peer(
    args: argparse.Namespace, cmd: list[str], scratch: Path, minutes: float
) -> tuple[list[str], Cpu]:
    """Run the peer for ``minutes`` after its first line; returns its stdout lines and CPU seconds."""
    lines: list[str] = []
    seen: dict[str, float] = {}
    cpu0, launch = all_cpu(), time.monotonic()
    proc = start(cmd, args.threads, scratch)
    reader = threading.Thread(target=watch_peer, args=(proc, scratch / "peer.log", lines, seen), daemon=True)
    reader.start()
    wait_until(proc, lambda: time.monotonic() >= seen.get("first", launch) + minutes * 60)
    late = time.monotonic() + 10.0

    def calm() -> bool:  # not during the torch.save that follows an epoch end (3 s, 10 s at most)
        return time.monotonic() - seen.get("epoch_end", -9.0) > 3 or time.monotonic() > late

    cpu = wait_until(proc, calm)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=args.grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
    reader.join(timeout=10)
    return lines, (cpu, all_cpu() - cpu0)


def peer_progress(lines: list[str], per_epoch: int) -> tuple[int, int, str]:
    """(epochs completed, batches trained, "" or "≥" if at least) from its epoch-end and batch logs."""
    epochs = sum("end of epoch" in line for line in lines)
    logs = [line.split("|") for line in lines if line.startswith("| epoch") and "batches" in line]
    epoch, batch = (int(logs[-1][1].split()[1]), int(logs[-1][2].split("/")[0])) if logs else (0, -1)
    return epochs, epochs * per_epoch + (batch + 1 if epoch > epochs else 0), "" if epoch > epochs else "≥"


def run_peer(args: argparse.Namespace, data: Path, minutes: float) -> Result:
    scratch = args.work / f"peer-{minutes:g}min"
    copy_peer(scratch)
    extra = shlex.split(args.peer_args)
    known = argparse.ArgumentParser(add_help=False)
    known.add_argument("--bptt", type=int, default=35)
    known.add_argument("--batch_size", type=int, default=20)
    opts = known.parse_known_args(extra)[0]
    model = scratch / "model.pt"
    cmd = [sys.executable, "main.py", "--data", str(data), "--epochs", "1000", "--save", str(model)]
    lines, cpu = train_peer(args, [*cmd, "--log-interval", "10", *extra], scratch, minutes)
    ev_args = [str(data.resolve()), str(model.resolve()), str(opts.bptt), str(args.threads)]
    ev = subprocess.run(
        [sys.executable, "-c", PEER_EVAL, *ev_args], cwd=scratch, capture_output=True, text=True
    )
    if ev.returncode != 0:
        return Result("peer", None, "?", cpu, note=f"eval failed: {ev.stderr.strip()[-300:]}")
    out = json.loads(ev.stdout.strip().splitlines()[-1])
    per_epoch = len(range(0, out["train_tokens"] // opts.batch_size - 1, opts.bptt))
    epochs, batches, at_least = peer_progress(lines, per_epoch)
    reached, tokens = f"{epochs} epochs, {at_least}{batches:,} steps", batches * opts.bptt * opts.batch_size
    own = [line.split("test ppl")[1].strip(" |\n") for line in lines if "End of training" in line]
    note = "no epoch completed" if "ppl" not in out else f"(its own final test: {own[-1]})" if own else ""
    return Result("peer", out.get("ppl"), reached, cpu, tokens, note, out["vocab"])


def lstmlm(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    cmd = [*LSTMLM, *args]
    return subprocess.run(cmd, cwd=ROOT, text=True, **kw)  # type: ignore[call-overload]


def recipe_flags(flags: str) -> list[str] | str:
    """The recipe's flags plus the ``BUDGET_FLAGS`` it does not set, or why it is skipped."""
    argv = shlex.split(flags)
    config: dict[str, dict[str, object]] = {}
    if "--config" in argv:
        path = ROOT / argv[argv.index("--config") + 1]
        if not path.is_file():
            return f"skipped: {path.relative_to(ROOT)} does not exist (yet)"
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    for key, value in BUDGET_FLAGS.items():
        if f"--{key}" not in argv and key not in config.get("train", {}):
            argv += [f"--{key}", value]
    return argv


def run_lstmlm(args: argparse.Namespace, name: str, argv: list[str], data: Path, minutes: float) -> Result:
    out = args.work / f"{name}-{minutes:g}min"
    budget = ["--max-time", f"{minutes:g}"]
    cmd = [*LSTMLM, "train", "--data", str(data), "--out", str(out), *budget, *argv]
    metrics, log = out / "metrics.jsonl", args.work / f"{out.name}.log"
    cpu0, proc = all_cpu(), start(cmd, args.threads, ROOT, log)
    train_cpu = wait_until(proc, lambda: metrics.is_file() and '"event": "end"' in metrics.read_text())
    rc, cpu = proc.wait(), (train_cpu, all_cpu() - cpu0)
    if rc != 0:
        return Result(name, None, "?", cpu, note=f"train exit {rc}: {log.read_text().strip()[-200:]}")
    end = [e for e in map(json.loads, metrics.read_text().splitlines()) if e["event"] == "end"][-1]
    reached = f"{end['epoch'] - 1} epochs, {end['step']:,} steps"
    ev = lstmlm("eval", str(out), "--split", "test", "--json", capture_output=True)
    if ev.returncode != 0:
        return Result(name, None, reached, cpu, note=f"eval failed: {ev.stderr.strip()[-200:]}")
    vocab = len(json.loads((out / "tokenizer.json").read_text())["model"]["vocab"])
    return Result(name, json.loads(ev.stdout)["perplexity"], reached, cpu, end["tokens"], "", vocab)


def fmt(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "—"


def ratio(r: Result, peer: Result) -> str:
    return f"{r.ppl / peer.ppl:.2f}×" if r.ppl is not None and peer.ppl is not None else "—"


def pad(text: str, width: int) -> str:
    return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"  # negative: left-aligned


def print_table(minutes: float, results: list[Result], expected_vocab: int) -> None:
    widths = (-14, 9, 7, 22, 11, 11, 9)
    head = ("run", "test ppl", "× peer", "reached", "tokens", "train CPU s", "all CPU s")
    print(f"\n{minutes:g} min  " + " ".join(map(pad, head, widths)))
    for r in results:
        cells = (r.name, fmt(r.ppl, ".1f"), ratio(r, results[0]), r.reached, fmt(r.tokens, ","))
        row = " ".join(map(pad, (*cells, fmt(r.cpu_s[0], ".0f"), fmt(r.cpu_s[1], ".0f")), widths))
        print(f"{'':6} {row}" + (f"  {r.note}" if r.note else ""))
    sizes = {r.name: r.vocab for r in results if r.vocab is not None}
    verdict = "same vocabulary size" if set(sizes.values()) == {expected_vocab} else "VOCABULARY SIZES DIFFER"
    listed = ", ".join(f"{name} {size:,}" for name, size in sizes.items())
    print(f"  {verdict}: {listed} (expected {expected_vocab:,})")


def markdown(table: dict[float, list[Result]], threads: int) -> str:
    rows = ["| budget | run | test ppl | vs peer | reached | train CPU s |", "|---|---|---:|---:|---|---:|"]
    for minutes, results in table.items():
        for r in results:
            ppl = fmt(r.ppl, ".1f") if r.ppl is not None else r.note or "—"
            cells = (f"{minutes:g} min, {threads} threads", r.name, ppl, ratio(r, results[0]), r.reached)
            rows.append("| " + " | ".join(cells) + f" | {fmt(r.cpu_s[0], '.0f')} |")
    return "\n".join(rows)


def say(r: Result) -> None:
    print(f"  {r.name}: test ppl {fmt(r.ppl, '.1f')} ({r.reached}) {r.note}", flush=True)


def budget_round(
    args: argparse.Namespace, recipes: dict[str, str], data: Path, minutes: float
) -> list[Result]:
    print(f"\n== {minutes:g} minutes per run, {args.threads} threads ==", flush=True)
    results = [run_peer(args, data, minutes)]
    say(results[0])
    for name, flags in recipes.items():
        argv = recipe_flags(flags)
        if isinstance(argv, str):
            print(f"  {name}: {argv}", flush=True)
            continue
        print(f"  {name}: lstmlm train {shlex.join(argv)}", flush=True)
        results.append(run_lstmlm(args, name, argv, data, minutes))
        say(results[-1])
    return results


def choose_recipes(args: argparse.Namespace) -> dict[str, str]:
    added = dict(item.split("=", 1) for item in args.recipe)
    known, names = {**RECIPES, **added}, list(dict.fromkeys([*args.recipes, *added]))
    if unknown := [name for name in names if name not in known]:
        sys.exit(f"unknown recipe(s) {', '.join(unknown)}: known {', '.join(known)} (add one with --recipe)")
    return {name: known[name] for name in names}


def main() -> None:
    args = parse_args()
    print("command:", shlex.join([sys.executable, "-m", __spec__.name, *sys.argv[1:]]), flush=True)
    recipes = choose_recipes(args)
    folder, train_name, test_name = CORPORA[args.corpus]
    src = args.data_dir or SHARED_DATA / folder
    if missing := [str(p) for p in (src / train_name, src / test_name, PEER) if not p.exists()]:
        print(f"skipped: not found: {', '.join(missing)} (--data-dir, --corpus choose the data)")
        return
    with work_folder(args.keep, "bench_quality-") as args.work:
        data = args.work / "data"
        vocab = prepare_data(src / train_name, src / test_name, data)
        table = {minutes: budget_round(args, recipes, data, minutes) for minutes in args.minutes}
        for minutes, results in table.items():
            print_table(minutes, results, vocab)
        print("\n" + markdown(table, args.threads), flush=True)


if __name__ == "__main__":
    main()
