"""The corpus search's span finding: runs of "on" cut by windows are found whole."""

from __future__ import annotations

import numpy as np
import pytest

from lstmlm.view.search import STREAMS, WINDOW, OpenRuns, Pattern, _ended_spans, _window, on_spans


def test_on_spans() -> None:
    on = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)
    assert on_spans(on, 1) == [(0, 2), (3, 1), (6, 3)]
    assert on_spans(on, 2) == [(0, 2), (6, 3)]
    assert on_spans(np.zeros(4, dtype=bool), 1) == []


@pytest.mark.parametrize("window", [1, 3, 7, 50])
def test_spans_across_windows_equal_the_whole_sequence(window: int) -> None:
    """Windowed search = every run of the whole stream (the runs still on at the end are the
    search's own last step, added here as it adds them), with each span's mean value."""
    rng = np.random.default_rng(window)
    steps, streams, units = 40, 3, 2
    values = rng.uniform(-1, 1, (steps, streams, units)) + 0.6  # on about half the time
    pattern = Pattern(0, "cell", (0, 1), threshold=0.0, min_length=2, limit=1000)
    runs = OpenRuns(np.zeros(streams, dtype=np.int64), np.zeros(streams))
    found = []
    for start in range(0, steps, window):
        found += _ended_spans(values[start : start + window], pattern, runs, start)
    found += [(s, steps - int(n), int(n), float(runs.total[s])) for s, n in enumerate(runs.length) if n >= 2]
    on = (values >= 0).all(-1)
    expected = [
        (stream, first, length, float(values[first : first + length, stream].mean(-1).sum()))
        for stream in range(streams)
        for first, length in on_spans(on[:, stream], 2)
    ]
    assert sorted((s, f, n) for s, f, n, _ in found) == sorted((s, f, n) for s, f, n, _ in expected)
    totals = {(s, f): t for s, f, _, t in found}
    for stream, first, _, total in expected:
        assert totals[(stream, first)] == pytest.approx(total)


def test_windows_read_the_streams_in_order() -> None:
    """Stream s reads ids[s * per_stream:] a window at a time; the tail past STREAMS x per_stream is left."""
    ids = np.arange(1000, dtype=np.uint16)
    per_stream = len(ids) // STREAMS
    windows = [_window(ids, per_stream, start).numpy() for start in range(0, per_stream, WINDOW)]
    whole = np.concatenate(windows)
    assert whole.shape == (per_stream, STREAMS)
    np.testing.assert_array_equal(whole.T.ravel(), ids[: per_stream * STREAMS])
