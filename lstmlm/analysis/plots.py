"""Figures: training curves from runs' ``metrics.jsonl``, and what ``inspect`` records inside a model.

matplotlib is imported lazily and drawn through Agg (no display needed); files are written
atomically."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic
from lstmlm.runs.events import Eval, Event, Log
from lstmlm.runs.folder import METRICS, refuse_run_file
from lstmlm.runs.metrics import read_events

FORMATS = (".png", ".pdf", ".svg")


def training_curves(run_dirs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    """Draw train/valid loss, train/valid perplexity (log scale) and tokens/s for each run into ``out``.

    Several runs share the figure, one colour each, labelled by ``labels`` (default: the run
    folder names). ``out`` (.png, .pdf or .svg) is written atomically; missing parents are made.
    """
    if not run_dirs:
        raise LstmlmError("no run folder to plot")
    if labels is not None and len(labels) != len(run_dirs):
        raise LstmlmError(f"{len(labels)} label(s) for {len(run_dirs)} run folder(s); give one per run")
    if out.suffix.lower() not in FORMATS:
        raise LstmlmError(f"the plot file must end in {', '.join(FORMATS)} (got {out.name})")
    if out.is_dir():
        raise LstmlmError(f"{out} is a folder; give a file name such as {out / 'curves.png'}")
    refuse_run_file(out, "--out")
    runs = [_records(run_dir) for run_dir in run_dirs]
    labels = labels or _default_labels(run_dirs)

    fig = _figure(16, 4.5)
    from matplotlib.ticker import FuncFormatter, LogFormatter

    loss, ppl, speed = fig.subplots(1, 3)
    for index, (run_events, label) in enumerate(zip(runs, labels, strict=True)):
        color = f"C{index % 10}"
        log = [e for e in run_events if isinstance(e, Log)]
        evals = [e for e in run_events if isinstance(e, Eval)]
        for ax, train_key, valid_key in ((loss, "loss", "valid_loss"), (ppl, "ppl", "valid_ppl")):
            ax.plot(*_series(log, train_key), color=color, label=f"{label} train")
            ax.plot(
                *_series(evals, valid_key),
                color=color,
                linestyle="--",
                marker="o",
                markersize=3,
                label=f"{label} valid",
            )
        speed.plot(*_series(log, "tokens_per_s"), color=color, label=label)
    ppl.set_yscale("log")
    ppl.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ppl.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))  # 20 and 5, not 2 x 10^1
    for ax, title in ((loss, "loss (nats/token)"), (ppl, "perplexity"), (speed, "tokens/s")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")

    return _save(fig, out)


def _figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` on the Agg canvas, whatever the default backend."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise LstmlmError("plotting needs matplotlib: pip install 'lstmlm[plot]'") from e
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, out: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=out.suffix.lower()[1:], dpi=120)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, buffer.getvalue())
    except OSError as e:
        raise LstmlmError(f"cannot write {out}: {e.strerror or e}") from e
    return out


def _records(run_dir: Path) -> list[Event]:
    """The ``Log`` and ``Eval`` events of a run."""
    if not run_dir.is_dir():
        raise LstmlmError(f"{run_dir}: no such run folder")
    path = run_dir / METRICS
    if not path.is_file():
        raise LstmlmError(f"{run_dir} has no {METRICS}; is it a run folder written by `lstmlm train`?")
    found: list[Event] = [e for e in read_events(path) if isinstance(e, (Log, Eval))]
    if not found:
        raise LstmlmError(f"{path} has no log or eval records yet; nothing to plot")
    return found


def _default_labels(run_dirs: list[Path]) -> list[str]:
    """The folder names, or the whole paths where two names are the same."""
    names = [p.resolve().name or str(p) for p in run_dirs]
    return names if len(set(names)) == len(names) else [str(p) for p in run_dirs]


def _series(found: Sequence[Event], field: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the events whose ``field`` is a number; non-finite values become gaps."""
    points = [(e.step, float(v)) for e in found if isinstance(v := getattr(e, field), (int, float))]
    return [s for s, _ in points], [v if math.isfinite(v) else math.nan for _, v in points]


# ---------------------------------------------------------------- inside the model

HEATMAP_ORDER = (
    "cell",
    "hidden",
    "forget_gate",
    "input_gate",
    "output_gate",
    "depth_gate",
    "reset_gate",
    "update_gate",
    "candidate",
    "pre_activation",
    "normalizer",  # sLSTM
    "stabilizer",
)
GATES = {"forget_gate", "input_gate", "output_gate", "depth_gate", "reset_gate", "update_gate"}


def trace_heatmaps(trace: Any, layer: int, out: Path, max_units: int = 48) -> Path:
    """Heatmaps (units x tokens) of one layer's state and gates, tokens on the x axis.

    Shows the ``max_units`` units whose state (cell, else hidden) varies most over the text,
    in the same order in every panel. Gates use 0..1, states a symmetric scale around 0.
    """
    values = trace.layers[layer]
    state = values["cell"] if "cell" in values else values["hidden"]
    # per-unit quantities only (not the mLSTM's per-head gates or its wider normalizer)
    names = [name for name in HEATMAP_ORDER if name in values and values[name].shape[1] == state.shape[1]]
    units = sorted(np.argsort(-state.var(axis=0))[:max_units].tolist())
    ncols = 2 if len(names) > 1 else 1
    nrows = math.ceil(len(names) / ncols)
    width = max(8.0, 0.45 * len(trace.tokens) * ncols + 2)
    fig = _figure(width, 0.09 * len(units) * nrows + 1.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        grid = values[name][:, units].T  # (units, tokens)
        if name in GATES:
            image = ax.imshow(
                grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
            )
        else:
            limit = float(np.abs(grid).max()) or 1.0
            image = ax.imshow(
                grid, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
            )
        ax.set_title(f"layer {layer}: {name.replace('_', ' ')}", fontsize=9)
        ax.set_xticks(range(len(trace.tokens)), trace.tokens, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(units)), [str(u) for u in units], fontsize=5)
        ax.set_ylabel("unit", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return _save(fig, out)


def unit_trajectory_panels(rows: list[list[Any]], out: Path) -> Path:
    """One row per feature, one panel per ``units.Trajectory``: the units' carried state
    over the example's tokens, the agreeing word marked."""
    ncols = max(len(panels) for panels in rows)
    fig = _figure(6.5 * ncols, 3.4 * len(rows))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for row, panels in enumerate(rows):
        for col, panel in enumerate(panels):
            ax = axes[row][col]
            for index, (label, values) in enumerate(panel.lines):
                ax.plot(values, marker="o", markersize=3, color=f"C{index}", label=label)
            if panel.target is not None:
                ax.axvline(panel.target - 1, color="grey", linestyle=":", linewidth=1)
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_xticks(range(len(panel.tokens)), panel.tokens, rotation=60, ha="right", fontsize=8)
            ax.set_title(panel.title, fontsize=9)
            ax.legend(fontsize=7, loc="best")
        for col in range(len(panels), ncols):
            axes[row][col].set_visible(False)
    return _save(fig, out)
