"""A row of the GPU check's table, its verdicts, and the table as text and as JSON.

A verdict is ``ok``, ``FAIL: <why>`` (an exception's type and message, or the goal missed)
or ``skipped: <reason>``. Only a FAIL makes the check exit non-zero.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK = "ok"
MAX_REASON = 150  # characters of an error message kept in a verdict: one line of the table


@dataclass
class Row:
    """One check: which part, what it ran, the figure it measured against its goal, the verdict."""

    part: str
    what: str
    figure: str = ""
    goal: str = ""
    verdict: str = OK
    seconds: float | None = None
    peak_mib: float | None = None  # the device's peak allocated memory during the part
    data: dict[str, Any] = field(default_factory=dict)  # the figures as numbers (--json, tests)

    @property
    def failed(self) -> bool:
        return self.verdict.startswith("FAIL")

    @property
    def skipped(self) -> bool:
        return self.verdict.startswith("skipped")


def one_line(text: str) -> str:
    """``text``'s first non-empty line, cut to ``MAX_REASON`` characters."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= MAX_REASON else first[: MAX_REASON - 1] + "…"


def failure(error: BaseException) -> str:
    """The verdict for a part that raised: ``FAIL: Type: message`` on one line."""
    message = one_line(str(error))
    return f"FAIL: {type(error).__name__}: {message}" if message else f"FAIL: {type(error).__name__}"


def skipped(reason: str, limit: int = 70) -> str:
    """``skipped: reason``, a long reason cut at its last clause boundary before ``limit``."""
    reason = one_line(reason)
    if len(reason) > limit:
        cut = max(reason.rfind(mark, 0, limit) for mark in (" (", "; ", ", "))
        reason = reason[:cut] if cut > 20 else reason[: limit - 1] + "…"
    return f"skipped: {reason}"


def judged(passed: bool, why: str = "below the goal") -> str:
    """``ok`` when the goal is met, else ``FAIL: why``."""
    return OK if passed else f"FAIL: {one_line(why)}"


def number(value: float, digits: int = 3) -> str:
    """A figure for people: thousands separated, ``digits`` significant digits below 1,000."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


COLUMNS = (("part", 11), ("what", 34), ("figure", 64), ("goal", 30), ("verdict", 28), ("s", 6), ("MiB", 7))


def header() -> str:
    return "  ".join(f"{name:<{width}}" for name, width in COLUMNS).rstrip()


def rule() -> str:
    return "  ".join("-" * width for _, width in COLUMNS)


def format_row(row: Row) -> str:
    """One line: the columns padded to their widths; a longer cell widens its column for this line."""
    seconds = "" if row.seconds is None else f"{row.seconds:.1f}"
    peak = "" if row.peak_mib is None else f"{row.peak_mib:,.0f}"
    cells = (row.part, row.what, row.figure, row.goal, row.verdict, seconds, peak)
    return "  ".join(f"{cell:<{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True)).rstrip()


def table(rows: list[Row]) -> str:
    return "\n".join([header(), rule(), *(format_row(row) for row in rows)])


def summary(rows: list[Row], seconds: float, budget_s: float) -> str:
    failed = sum(row.failed for row in rows)
    skipped_ = sum(row.skipped for row in rows)
    ok = len(rows) - failed - skipped_
    return (
        f"gpu-check: {ok} ok, {failed} FAIL, {skipped_} skipped in {seconds:.0f} s (budget {budget_s:.0f} s)"
    )


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.write_text(json.dumps({**meta, "rows": [asdict(row) for row in rows]}, indent=1) + "\n")
