"""The GPU check (``scripts/gpu``): its smoke mode runs every part on the CPU and passes, so the
script a lent GPU will run once cannot rot; and its guard turns a failing part into one row."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scripts.gpu import check, table
from scripts.gpu.context import SMOKE, WIKITEXT, Context
from scripts.gpu.table import Row
from tests.conftest import ROOT

PARTS = {
    "device",
    "cells",
    "speed",
    "weight drop",
    "generation",
    "real run",
    "eval",
    "export",
    "NCCL",
    "compile",
    "memory",
}
SMOKE_TIMEOUT = 600  # seconds; the smoke run takes about a minute on 2 cores


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``python -m scripts.gpu.check --smoke`` once, as a user runs it: its output and its JSON rows."""
    out = tmp_path_factory.mktemp("gpu-check") / "rows.json"
    command = [sys.executable, "-m", "scripts.gpu.check", "--smoke", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SMOKE_TIMEOUT)
    return done, json.loads(out.read_text()) if out.is_file() else {}


@pytest.mark.slow
def test_smoke_mode_runs_every_part_and_passes(smoke: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    done, report = smoke
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [Row(**row) for row in report["rows"]]
    assert {row.part for row in rows} == PARTS
    for row in rows:  # every verdict ok or a skip with its reason; no FAIL, no budget skip
        assert row.verdict.startswith(("ok", "skipped: ")), table.format_row(row)
        assert "out of budget" not in row.verdict, table.format_row(row)
    assert "0 FAIL" in done.stdout.splitlines()[-1] and table.header() in done.stdout


@pytest.mark.slow
def test_smoke_rows_hold_sane_figures(smoke: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    rows = smoke[1]["rows"]

    def row(part: str, what: str = "") -> dict:
        return next(r for r in rows if r["part"] == part and r["what"].startswith(what))

    for cell in check.chosen_cells(""):  # every family trains in fp32 on the CPU, and learns
        data = row("cells", f"{cell} fp32")["data"]
        assert data["last_loss"] < 0.95 * data["first_loss"] and math.isfinite(data["valid_ppl"]), cell
    for precision in ("bf16", "fp16"):  # run where the CPU can, otherwise lstmlm's reason
        verdict = row("cells", f"lstm {precision}")["verdict"]
        assert verdict == "ok" or verdict.startswith(f"skipped: --precision {precision}"), verdict
    assert row("export", "torchscript")["data"]["diff"] < 1e-4
    assert row("weight drop", "AWD recipe: weight-copy")["data"]["warnings"] == 0
    assert 0 < row("generation")["data"]["ratio"] <= 1
    nccl = row("NCCL")["data"]
    assert nccl["ddp_wrapped"] and nccl["ranks_in_sync"] and nccl["backend"] == "gloo"
    real = row("real run")["verdict"]
    assert real == "ok" if (WIKITEXT / "valid.txt").is_file() else real.startswith("skipped: ")


def context(tmp_path: Path, seconds_left: float) -> Context:
    return Context(
        True, torch.device("cpu"), SMOKE, tmp_path, WIKITEXT, time.monotonic() + seconds_left, sys.stderr
    )


def test_a_failing_part_is_one_fail_row_and_the_others_run(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def broken(ctx: Context) -> list[Row]:
        raise ValueError("the kernel said no\nand a second line")

    parts = [
        check.Part("cells", "broken", broken),
        check.Part("export", "fine", lambda c: [Row("export", "fine")]),
    ]
    rows = check.run_all(context(tmp_path, 600), parts, only=set())
    assert [row.verdict for row in rows[:2]] == ["FAIL: ValueError: the kernel said no", "ok"]
    assert rows[-1].part == "memory" and rows[1].seconds is not None
    assert "Traceback" in capsys.readouterr().err  # the traceback goes to --tracebacks (stderr)


def test_a_part_that_does_not_fit_the_budget_is_skipped(tmp_path: Path) -> None:
    ran: list[Context] = []

    def compile_part(ctx: Context) -> list[Row]:
        ran.append(ctx)
        return []

    part = check.Part("compile", "x", compile_part)
    [row] = check.run_part(context(tmp_path, 5), part)  # compile's smoke estimate is 30 s
    assert row.verdict.startswith("skipped: out of budget") and not ran
