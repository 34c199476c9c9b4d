"""The GPU check: every CUDA path of lstmlm in one run, one table (``make gpu-check``; docs/gpu.md).

    python -m scripts.gpu.check [--smoke] [--device cuda] [--budget-minutes 8] [--only PART,...]
        [--cells all|CELL,...] [--data-dir FOLDER] [--json FILE] [--tracebacks FILE]

Parts, in order: the device; each cell family × fp32/bf16/fp16; a 2×650 and an AWD-size
LSTM against a bare cuDNN loop; weight drop on cuDNN; batch-1 generation against the
memory-bandwidth bound; a real run on WikiText-2 (CLI); the cache and dynamic evaluation;
export parity; a 1-process NCCL group; ``--compile``; peak memory. Each part runs under a
guard: one that raises gives a FAIL row with its error on one line (the traceback goes to
``--tracebacks``, default stderr) and the others still run. A part that would not fit in
what is left of the budget is skipped, one that runs past its share is stopped (SIGALRM),
and each row gives its seconds and the device's peak memory. Rows print as they finish;
the whole table and a summary print at the end. Exit status 1 if any row failed.

``--smoke`` runs the same code paths at tiny sizes on the CPU (one thread) in about a
minute; what cannot run there says ``skipped: <reason>`` (fp16, bf16 without native
kernels) or runs its CPU equivalent (gloo for NCCL, resident memory for allocated).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

import torch

from lstmlm.config import CELLS
from scripts.gpu import table
from scripts.gpu.cli_parts import compile_rows, real_run_rows
from scripts.gpu.context import FAMILIES, REAL, SMOKE, WIKITEXT, Context
from scripts.gpu.inference_parts import eval_rows, export_rows, generation_rows
from scripts.gpu.system_parts import device_rows, memory_rows, nccl_rows
from scripts.gpu.table import Row, failure, skipped
from scripts.gpu.training_parts import cell_rows, speed_rows, weight_drop_rows


@dataclass(frozen=True)
class Part:
    """One guarded unit of the check: ``run`` gives its rows."""

    name: str
    what: str
    run: Callable[[Context], list[Row]]


class PartTimeout(Exception):
    """A part ran past its share of the budget."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (the test)")
    parser.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda, or cpu with --smoke")
    parser.add_argument("--budget-minutes", type=float, help="default: 8, or 5 with --smoke")
    parser.add_argument("--only", default="", help="comma-separated part names (device always runs)")
    parser.add_argument(
        "--cells", default="", help="'all' or comma-separated cells (default: one per family)"
    )
    parser.add_argument("--data-dir", type=Path, default=WIKITEXT, help="WikiText-2: valid.txt, test.txt")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--tracebacks", type=Path, help="write failing parts' tracebacks here (default: stderr)"
    )
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.budget_minutes = args.budget_minutes or (5.0 if args.smoke else 8.0)
    return args


def chosen_cells(option: str) -> tuple[str, ...]:
    if not option:
        return tuple(FAMILIES)
    if option == "all":
        return CELLS
    cells = tuple(cell.strip() for cell in option.split(","))
    unknown = [cell for cell in cells if cell not in CELLS]
    if unknown:
        raise SystemExit(f"--cells: unknown {', '.join(unknown)} (cells: {', '.join(CELLS)})")
    return cells


def families_row(cells: tuple[str, ...]) -> Row:
    """Which cells stand for which: one per family unless ``--cells`` says otherwise."""
    if cells == tuple(FAMILIES):
        figure = "one per family (9 of 13): lstm-eq for peephole, coupled, depth-gated; rnn-tanh for rnn-relu"
    else:
        figure = f"{len(cells)} of {len(CELLS)}: {', '.join(cells)}"
    return Row("cells", "cells run", figure, "--cells all: every cell", table.OK)


def plan(ctx: Context, cells: tuple[str, ...]) -> list[Part]:
    """Every part, in the order they run: the cheap and fundamental first, ``--compile`` last."""
    s = ctx.sizes
    parts = [
        Part("device", "the device", device_rows),
        Part("cells", "cells run", lambda _: [families_row(cells)]),
    ]
    parts += [
        Part("cells", f"{cell} {p}", functools.partial(cell_rows, cell=cell, precision=p))
        for cell in cells
        for p in s.precisions
    ]
    parts += [
        Part("speed", f"{shape.name} {p} vs bare", functools.partial(speed_rows, shape=shape, precision=p))
        for shape in s.speed_shapes
        for p in s.speed_precisions
    ]
    return [
        *parts,
        Part("weight drop", "AWD recipe on cuDNN", weight_drop_rows),
        Part("generation", "batch 1 vs bandwidth", generation_rows),
        Part("real run", "WikiText-2, CLI", real_run_rows),
        Part("eval", "cache, dynamic evaluation", eval_rows),
        Part("export", "parity of a device run", export_rows),
        Part("NCCL", "1-process group", nccl_rows),
        Part("compile", "--compile, CLI", compile_rows),
    ]


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise ``PartTimeout`` in this (main) thread after ``seconds``."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise PartTimeout(f"stopped after {seconds:.0f} s, its share of the budget")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_part(ctx: Context, part: Part) -> list[Row]:
    """``part`` under the guard: budget, time limit, errors as FAIL rows, seconds and peak memory."""
    estimate = ctx.sizes.estimates.get(part.name, 10.0)
    if ctx.left() < estimate:
        reason = f"out of budget ({max(ctx.left(), 0):.0f} s left, the part needs ~{estimate:.0f} s)"
        return [Row(part.name, part.what, verdict=skipped(reason))]
    ctx.reset_peak()
    start = time.perf_counter()
    try:
        with alarm(min(ctx.left(), max(60.0, 4 * estimate))):
            rows = part.run(ctx)
    except Exception as e:  # the guard: one part's failure is its row, the others still run
        print(f"== {part.name}: {part.what}", file=ctx.tracebacks)
        traceback.print_exc(file=ctx.tracebacks)
        ctx.tracebacks.flush()
        rows = [Row(part.name, part.what, verdict=failure(e))]
    finally:
        gc.collect()
        if ctx.cuda:
            with contextlib.suppress(RuntimeError):  # a broken context: the next part says so
                torch.cuda.empty_cache()
    seconds, peak = time.perf_counter() - start, None
    with contextlib.suppress(RuntimeError):
        peak = ctx.peak_mib()
    for row in rows:
        row.seconds = seconds if row.seconds is None else row.seconds
        if row.peak_mib is None and not row.skipped:
            row.peak_mib = peak
    return rows


def run_all(ctx: Context, parts: list[Part], only: set[str]) -> list[Row]:
    """Every part in order, each row printed as it comes; nothing runs after a missing device."""
    rows: list[Row] = []
    for part in parts:
        if only and part.name not in only and part.name != "device":
            continue
        if ctx.missing_device and part.name != "device":
            new = [Row(part.name, part.what, verdict=skipped("no device: see the device row"))]
        else:
            new = run_part(ctx, part)
        for row in new:
            print(table.format_row(row), flush=True)
        rows += new
    if not ctx.missing_device:
        rows += run_part(ctx, Part("memory", "peak", lambda c: memory_rows(c, rows)))
        print(table.format_row(rows[-1]), flush=True)
    return rows


@contextlib.contextmanager
def traceback_file(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stderr
        return
    with open(path, "w", encoding="utf-8") as f:
        yield f


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        torch.set_num_threads(1)  # tiny tensors; OpenMP threads spinning on a shared CPU cost 100x
    cells, only = chosen_cells(args.cells), {name.strip() for name in args.only.split(",") if name.strip()}
    budget = 60 * args.budget_minutes
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="lstmlm-gpu-check-") as tmp,
        traceback_file(args.tracebacks) as log,
    ):
        ctx = Context(
            args.smoke,
            torch.device(args.device),
            SMOKE if args.smoke else REAL,
            Path(tmp),
            args.data_dir,
            started + budget,
            log,
        )
        mode = "smoke (tiny sizes)" if args.smoke else "real sizes"
        print(f"lstmlm GPU check: {mode} on {args.device}, budget {budget:.0f} s", flush=True)
        print(table.header(), table.rule(), sep="\n", flush=True)
        rows = run_all(ctx, plan(ctx, cells), only)
    seconds = time.monotonic() - started
    print(f"\n{table.table(rows)}\n{table.summary(rows, seconds, budget)}", flush=True)
    if args.json:
        meta = {"smoke": args.smoke, "device": args.device, "budget_s": budget, "seconds": seconds}
        table.write_json(args.json, rows, meta)
    return 1 if any(row.failed for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
