"""``metrics.jsonl``: one JSON object per training event, kept consistent across resumes.

The records are ``Event.to_record()`` (``lstmlm.runs.events``); ``read_events`` reads them back
as typed events, ``read_metrics`` as plain dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lstmlm.files import write_atomic, write_error
from lstmlm.runs.events import Event, from_record


class MetricsLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: Event) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event.to_record()) + "\n")
        except OSError as e:  # a torn last line is skipped by ``read_metrics``
            raise write_error(e, self.path) from e

    def truncate_after(self, step: int) -> None:
        """Drop events after ``step`` (and torn lines): a resumed run replays them exactly once.

        Every kind of record has a step, ``save`` ones included: a resume from the checkpoint
        at ``step`` keeps the record of that save and drops those of later ones.
        """
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All complete events in a metrics file (a torn last line from a crash is skipped)."""
    if not path.exists():
        return []
    records = []
    text = path.read_bytes().decode("utf-8", errors="replace")  # a damaged line is skipped below
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_events(path: Path) -> list[Event]:
    """The events of a metrics file, typed; records of unknown kinds or missing fields are skipped."""
    return [event for event in map(from_record, read_metrics(path)) if event is not None]
