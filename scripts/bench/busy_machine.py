"""Training speed on a busy machine: two runs at once, and beside busy processes.

A laptop or a shared server is rarely idle. This benchmark trains the demo's model
(``configs/demo.toml``, ``--steps`` steps, no evaluation before the end) through the CLI,
as a user does, and measures its training throughput (``End.tokens / End.elapsed`` from
the run's ``metrics.jsonl``: tokens per training second, start-up and the final
evaluation excluded):

* **alone**, the machine otherwise quiet;
* **two at once**: two runs started together (a user comparing two settings); each
  run's training time against the time alone (sharing the cores fairly costs 2x);
* **beside k busy processes** (k = 1, 2): single-threaded busy loops started before the
  run and stopped after it; the throughput against the quiet one.

Each scenario runs once per ``--threads`` setting: ``default`` is no flag (lstmlm's own
thread policy), a number is ``--threads N``. ``--source DIR`` runs lstmlm from another
checkout (e.g. a ``git worktree`` of an older commit: the "before" table). The table
also checks the logged speed: the tokens over the time implied by the ``Log`` events'
``tokens_per_s`` (each interval's tokens / its rate) against the real training time.
Goals (issue 27): two at once within 2.2x the time alone; beside 2 busy processes on 2
cores at least 0.4x the quiet throughput; logged rate = real rate.

    python -m scripts.bench.busy_machine [--steps 600] [--threads default 1] [--busy 0 1 2]
        [--source DIR] [--timeout 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUSY_LOOP = "while True: pass"


@dataclass(frozen=True)
class Result:
    """One training run's figures, from its metrics.jsonl."""

    tokens: int
    train_s: float  # End.elapsed
    logged_s: float  # the sum over Log events of (interval tokens / logged tok/s)
    wall_s: float  # the process, start-up and final evaluation included

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.train_s


def train_command(args: argparse.Namespace, threads: str, out: Path) -> list[str]:
    command = [sys.executable, "-m", "lstmlm", "train", "--config", str(ROOT / "configs" / "demo.toml")]
    command += ["--out", str(out), "--max-steps", str(args.steps), "--log-every", str(args.log_every)]
    command += ["--eval-every", str(args.steps), "--max-time", str(args.timeout / 60)]
    return command + ([] if threads == "default" else ["--threads", threads])


def environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    source = str(Path(args.source).resolve()) if args.source else str(ROOT)
    env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_runs(args: argparse.Namespace, threads: str, folder: Path, count: int) -> list[subprocess.Popen]:
    runs = []
    for i in range(count):
        command = train_command(args, threads, folder / f"run{i}")
        runs.append(
            subprocess.Popen(
                command, env=environment(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        )
    return runs


def finish(run: subprocess.Popen, out: Path, started: float, timeout: float) -> Result:
    _, err = run.communicate(timeout=timeout)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"lstmlm train failed ({run.returncode}): {err.decode()[-500:]}")
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    end = next(e for e in events if e["event"] == "end")
    logs = [e for e in events if e["event"] == "log"]
    steps = [0] + [e["step"] for e in logs]
    tokens_per_step = end["tokens"] / steps[-1]
    logged = sum(
        (b - a) * tokens_per_step / e["tokens_per_s"] for a, b, e in zip(steps, steps[1:], logs, strict=False)
    )
    return Result(end["tokens"], end["elapsed"], logged, wall)


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` single-threaded busy loops, stopped on the way out whatever happens."""
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0.0)  # let them reach the scheduler
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def scenario(args: argparse.Namespace, threads: str, runs: int, busy: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp, busy_processes(busy):
        started = time.perf_counter()
        processes = start_runs(args, threads, Path(tmp), runs)
        try:
            return [
                finish(p, Path(tmp) / f"run{i}", started, args.timeout + 120) for i, p in enumerate(processes)
            ]
        finally:
            for p in processes:
                p.kill()


def report(threads: str, alone: Result, pair: list[Result], beside: dict[int, Result]) -> None:
    print(f"\n--threads {threads}")
    print(f"{'scenario':<22} {'train s':>8} {'wall s':>7} {'tok/s':>9} {'vs alone':>9} {'logged/real':>12}")
    rows = [("alone", alone)] + [(f"two at once, run {i + 1}", r) for i, r in enumerate(pair)]
    rows += [(f"beside {k} busy", r) for k, r in beside.items() if k]
    for name, r in rows:
        time_ratio = r.train_s / alone.train_s
        speed = (
            f"{time_ratio:.2f}x time" if name.startswith("two") else f"{r.tok_per_s / alone.tok_per_s:.2f}x"
        )
        print(
            f"{name:<22} {r.train_s:>8.1f} {r.wall_s:>7.1f} {r.tok_per_s:>9,.0f} {speed:>9} "
            f"{r.train_s / r.logged_s:>12.3f}"
        )
    if pair:
        worst = max(r.train_s for r in pair) / alone.train_s
        print(f"two at once: {worst:.2f}x the time alone (goal <= 2.2x; fair sharing: 2x)")
    if 2 in beside:
        print(f"beside 2 busy processes: {beside[2].tok_per_s / alone.tok_per_s:.2f}x quiet (goal >= 0.4x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps of each run")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--threads", nargs="+", default=["default", "1"], help="'default' or a number")
    parser.add_argument("--busy", nargs="+", type=int, default=[1, 2], help="busy processes beside a run")
    parser.add_argument("--no-pair", action="store_true", help="skip the two-at-once scenario")
    parser.add_argument("--source", help="run lstmlm from this checkout instead of this one")
    parser.add_argument("--timeout", type=float, default=300, help="seconds: each run's --max-time")
    args = parser.parse_args()
    print(
        f"demo model, {args.steps} steps a run, {os.cpu_count()} logical CPUs, "
        f"lstmlm from {args.source or ROOT}, load before: {os.getloadavg()[0]:.2f}"
    )
    for threads in args.threads:
        alone = scenario(args, threads, 1, 0)[0]
        pair = [] if args.no_pair else scenario(args, threads, 2, 0)
        beside = {k: scenario(args, threads, 1, k)[0] for k in args.busy if k}
        report(threads, alone, pair, beside)


if __name__ == "__main__":
    main()
