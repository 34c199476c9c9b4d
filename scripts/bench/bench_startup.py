"""Start-up time of the ``lstmlm`` commands, against bare Python and ``import torch``.

Trains a tiny run (a few steps on a tiny corpus, so that ``eval`` has little to compute)
into a temp folder, then times
each command as a fresh process, ``--repeats`` times, and prints the median wall time.
Targets (issue 12): ``lstmlm --help`` < 0.5 s and ``lstmlm info RUN`` < 1 s on a 2-core
machine; ``eval`` and ``generate`` pay for importing torch, and nothing else heavy.

    python -m scripts.bench.bench_startup
    python -m scripts.bench.bench_startup --repeats 10
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.common import LSTMLM

TINY = [
    "--nhid",
    "8",
    "--emsize",
    "8",
    "--nlayers",
    "1",
    "--max-steps",
    "3",
    "--bptt",
    "5",
    "--batch-size",
    "4",
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="timed runs per command")
    return p.parse_args()


def wall_time(command: list[str], repeats: int) -> float:
    """Median seconds of ``command`` as a fresh process (one untimed run first warms the disk cache)."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lstmlm-startup-"))
    run, corpus = folder / "run", folder / "corpus"
    corpus.mkdir()
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.txt").write_text("the keys to the cabinet are here .\n" * 40)
    try:
        train = [*LSTMLM, "train", "--data", str(corpus), "--out", str(run), *TINY]
        subprocess.run(train, check=True, capture_output=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "lstmlm --help": [*LSTMLM, "--help"],
            "lstmlm train --help": [*LSTMLM, "train", "--help"],
            "lstmlm info RUN": [*LSTMLM, "info", str(run)],
            "lstmlm eval RUN": [*LSTMLM, "eval", str(run)],
            "lstmlm generate RUN": [*LSTMLM, "generate", str(run), "--max-tokens", "5"],
        }
        torch_s = None
        print(f"{'command':<28} {'median s':>9} {'vs import torch':>16}")
        for name, command in commands.items():
            seconds = wall_time(command, args.repeats)
            torch_s = seconds if "import torch" in name else torch_s
            ratio = f"{seconds / torch_s:.2f}x" if torch_s else ""
            print(f"{name:<28} {seconds:>9.3f} {ratio:>16}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
