"""Find where the same units fire elsewhere: LSTMVis's pattern match over a corpus split.

Strobelt et al. (2018, "LSTMVis: A tool for visual analysis of hidden state dynamics in
recurrent neural networks") let a user select a phrase and a threshold, take the units on
throughout it, and list the corpus spans where those units are on together. Here the
split is read as ``STREAMS`` parallel streams (the state carried, as ``eval`` batches
it), a window of ``WINDOW`` steps at a time, so a search reports progress and stops at
its time budget or its ``limit`` of matches, whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lstmlm.analysis.traces import EquationModel
from lstmlm.api import Model
from lstmlm.errors import BadText
from lstmlm.runs.load import run_split

STREAMS = 16  # parallel streams: one window traces STREAMS x WINDOW tokens in WINDOW steps
WINDOW = 128
CONTEXT = 8  # tokens shown on each side of a match


@dataclass(frozen=True)
class Pattern:
    """Units of one layer and quantity that must all be >= ``threshold`` for ``min_length`` tokens."""

    layer: int
    quantity: str
    units: tuple[int, ...]
    threshold: float
    min_length: int
    limit: int


def on_spans(on: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """(start, length) of each run of True in ``on`` (1-D) at least ``min_length`` long."""
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True) if e - s >= min_length]


@dataclass
class OpenRuns:
    """Per stream, the run of "on" steps reaching the end of the last window: its length and sum."""

    length: np.ndarray
    total: np.ndarray


def split_ids(model: Model, split: str, pattern: Pattern) -> np.ndarray:
    """The split's token ids (a memmap once in the token cache: windows are read as needed);
    encoding it the first time does not use the model, so the server reads it unlocked."""
    ids = run_split(model.run, split, None).ids
    if len(ids) // STREAMS < pattern.min_length:
        raise BadText(f"the {split} split has too few tokens to search ({len(ids):,})")
    return ids


def search(model: Model, pattern: Pattern, ids: np.ndarray, seconds: float) -> Iterator[dict[str, Any]]:
    """Progress objects while ``ids`` are read, then the result (docs/view.md, ``/api/search``)."""
    per_stream = len(ids) // STREAMS
    runner, device = EquationModel(model.module), model.device
    state = model.module.init_state(STREAMS, device)
    spans: list[tuple[int, int, int, float]] = []  # (stream, first step, length, sum of values)
    runs = OpenRuns(np.zeros(STREAMS, dtype=np.int64), np.zeros(STREAMS))
    deadline, stopped, scanned = time.monotonic() + seconds, None, 0
    for start in range(0, per_stream, WINDOW):
        _, state = runner(_window(ids, per_stream, start).to(device), state)
        values = runner.traces[pattern.layer][pattern.quantity][:, :, list(pattern.units)].float().cpu()
        spans += _ended_spans(values.numpy(), pattern, runs, start)
        scanned = min(start + WINDOW, per_stream) * STREAMS
        if len(spans) >= pattern.limit:
            stopped = "limit"
        elif time.monotonic() > deadline and scanned < per_stream * STREAMS:
            stopped = "time"
        if stopped:
            break
        yield {"progress": round(scanned / (per_stream * STREAMS), 4), "scanned": scanned, "total": len(ids)}
    if stopped is None:  # the runs still on at the split's end
        lengths = [int(n) for n in runs.length]
        spans += [
            (stream, per_stream - n, n, float(runs.total[stream]))
            for stream, n in enumerate(lengths)
            if n >= pattern.min_length
        ]
    spans.sort(key=lambda span: (-span[2], span[0] * per_stream + span[1]))  # longest first, as LSTMVis
    yield {
        "matches": [_match(model, ids, stream * per_stream + first, length, total)
                    for stream, first, length, total in spans[: pattern.limit]],
        "scanned": scanned,
        "total": len(ids),
        "complete": stopped is None,
        "stopped": stopped,
    }  # fmt: skip


def _window(ids: np.ndarray, per_stream: int, start: int) -> torch.Tensor:
    """Steps ``start``.. of every stream, (steps, STREAMS): stream s reads ids[s * per_stream:]."""
    steps = np.arange(start, min(start + WINDOW, per_stream))
    rows = np.arange(STREAMS)[None, :] * per_stream + steps[:, None]
    return torch.from_numpy(ids[rows].astype(np.int64))


def _ended_spans(
    values: np.ndarray, pattern: Pattern, runs: OpenRuns, start: int
) -> list[tuple[int, int, int, float]]:
    """The runs of "on" (every unit >= threshold) that end in this window (``values``: steps x
    streams x units) and are ``min_length`` long; those reaching its end go on in ``runs``."""
    on: np.ndarray = np.all(values >= pattern.threshold, axis=-1)  # (steps, streams)
    step_means = values.mean(-1)
    steps, found = on.shape[0], []
    for stream in range(on.shape[1]):
        before, before_total = int(runs.length[stream]), float(runs.total[stream])
        runs.length[stream], runs.total[stream] = 0, 0.0
        if before and not on[0, stream] and before >= pattern.min_length:  # it ended at the window's edge
            found.append((stream, start - before, before, before_total))
        for first, length in on_spans(on[:, stream], 1):
            total = float(step_means[first : first + length, stream].sum())
            reaches_end = first + length == steps
            if first == 0:  # joins the run carried from the window before
                first, length, total = first - before, length + before, total + before_total
            if reaches_end:
                runs.length[stream], runs.total[stream] = length, total
            elif length >= pattern.min_length:
                found.append((stream, start + first, length, total))
    return found


def _match(model: Model, ids: np.ndarray, position: int, length: int, total: float) -> dict[str, Any]:
    token = model.tokenizer.token
    return {
        "before": [token(int(i)) for i in ids[max(position - CONTEXT, 0) : position]],
        "match": [token(int(i)) for i in ids[position : position + length]],
        "after": [token(int(i)) for i in ids[position + length : position + length + CONTEXT]],
        "position": position,
        "length": length,
        "mean": round(total / length, 4),
    }
