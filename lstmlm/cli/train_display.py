"""``lstmlm train``'s display: a live bar on a terminal, one line per event otherwise, and
the summary after training. It matches on the loop's typed events (``lstmlm.runs.events``).

A run that diverged is never shown as a success: a red line when the loop finds it, a
"diverged" row in the summary, a line on stderr and exit code ``DIVERGED_EXIT`` (3).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from lstmlm.cli.report import console, err_console, fmt, info, key_value_table, layers_text
from lstmlm.runs import events


class _RateColumn(ProgressColumn):
    """Units per second, in the task's own unit (bytes, lines)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if not speed else f"{speed:,.0f} {task.fields['unit']}/s")


STOP_REASONS = {
    "time": "the --max-time budget is spent",
    "patience": "--patience evaluations without improvement",
    "diverged": "the loss ran away (diverged)",
}
DIVERGED_EXIT = 3  # ``lstmlm train``'s exit code for a run that diverged (1: error, 130/143: signal)


class TrainDisplay:
    """Receives training ``events``: a live bar on a terminal, one line per event otherwise."""

    def __init__(self) -> None:
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss [cyan]{task.fields[loss]}[/] ppl [cyan]{task.fields[ppl]}[/]"),
            TextColumn("{task.fields[tps]} tok/s  lr {task.fields[lr]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
        )
        self.task: Any = None
        self.last: dict[str, events.Event] = {}  # the latest event of each kind
        self.data_progress = Progress(
            TextColumn("{task.description:>14}"),
            BarColumn(),
            TextColumn("{task.completed:,} {task.fields[unit]}"),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not self.live,
            transient=True,
        )
        self.data_tasks: dict[str, Any] = {}

    def __enter__(self) -> TrainDisplay:
        return self

    def data(self, stage: str, done: int, total: int | None) -> None:
        """Data preparation progress (``runs.DataProgress``): a bar per stage on a terminal."""
        if not self.live:
            return
        unit = "bytes" if stage == "read" else "lines"
        task = self.data_tasks.get(stage)
        if task is None:
            self.data_progress.start()
            task = self.data_tasks[stage] = self.data_progress.add_task(stage, total=total, unit=unit)
        self.data_progress.update(task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
        self.data_progress.stop()

    def __call__(self, event: events.Event) -> None:
        self.last[event.kind] = event
        say = self.progress.console.print
        if isinstance(event, events.Start):
            self._start(event)
        elif isinstance(event, events.Log):
            self._log(event)
        elif isinstance(event, events.Eval):
            if event.improved:
                mark = "[green]best[/]"
            elif event.annealed:
                mark = f"[yellow]no improvement, lr -> {event.lr:.3g}[/]"
            else:
                mark = "[yellow]no improvement[/]"
            say(f"step {event.step:>6}  valid ppl [bold]{fmt(event.valid_ppl)}[/]  {mark}")
            if event.averaging_from_now:
                say(f"step {event.step:>6}  NT-ASGD: averaging the weights from now on")
        elif isinstance(event, events.Diverged):
            say(f"[bold red]step {event.step}: diverged: {escape(_diverged_text(event))}[/]")
        elif isinstance(event, events.NonFinite):
            say(f"[red]step {event.step}: non-finite loss/gradient, step skipped[/]")
        elif isinstance(event, events.Unsaved):
            say(f"[red]step {event.step}: checkpoint not saved: {event.reason}[/]")
        elif isinstance(event, events.Resume):
            info(f"resuming at step {event.step} (epoch {event.epoch}, lr {event.lr:.3g})")
        elif isinstance(event, events.Save) and self.task is not None:
            self.progress.update(self.task, completed=event.step)
        elif isinstance(event, events.End) and event.reason in STOP_REASONS:
            say(f"step {event.step:>6}  stopped: {STOP_REASONS[event.reason]}")

    def _start(self, e: events.Start) -> None:
        self.data_progress.stop()
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=e.total_steps, completed=e.step, epoch=e.epoch, loss="–", ppl="–", tps="–", lr="–"
        )
        where = f"{e.device}, {e.precision}" + (", compiled" if e.compile else "")
        if e.world_size > 1:
            where += f", {e.world_size} processes"
        info(
            f"training {e.parameters:,} parameters on {where}: "
            f"{e.total_steps:,} steps, {e.windows_per_epoch:,} windows per epoch"
        )

    def _log(self, e: events.Log) -> None:
        if self.task is not None:
            self.progress.update(
                self.task,
                completed=e.step,
                epoch=e.epoch,
                loss=fmt(e.loss, 3),
                ppl=fmt(e.ppl),
                tps=f"{e.tokens_per_s:,.0f}",
                lr=f"{e.lr:.3g}",
            )
        if e.overflow_skips:  # fp16: steps the loss scaler skipped since the last log
            self.progress.console.print(
                f"[yellow]step {e.step}: {e.overflow_skips} fp16 overflow step(s) skipped, "
                f"loss scale {e.loss_scale:g}[/]"
            )
        if not self.live:
            info(
                f"step {e.step:>6}/{e.total_steps}  epoch {e.epoch}  loss {e.loss:.3f}  "
                f"ppl {fmt(e.ppl)}  {e.tokens_per_s:,.0f} tok/s  lr {e.lr:.3g}"
            )


def _diverged_text(e: events.Diverged) -> str:
    """The event in words: which loss, how far above the limit, for how long."""
    if e.split == "train":
        return (
            f"train loss {e.loss:.3g} above the limit {e.limit:.3g} for {e.in_a_row} log intervals in a row"
        )
    return f"valid loss {e.loss:.3g} at the last evaluation, above the limit {e.limit:.3g}"


def train_summary(rows: list[tuple[str, str]]) -> None:
    console.print(key_value_table("Training summary", rows))


def training_outcome(out: Any, outcome: Any) -> int:
    """The summary after ``train``: the run, its model, its progress and its perplexities.

    Returns the command's exit code: 0, or ``DIVERGED_EXIT`` for a run that diverged
    (``outcome.diverged`` says why; also on stderr).
    """
    config, state, test = outcome.config, outcome.state, outcome.test
    m = config.model
    rows = [
        ("run", str(out)),
        ("data", outcome.corpus_name),
        ("model", f"{m.cell} {layers_text(m)}, vocab {m.ntoken:,}"),
        ("steps", f"{state.step:,} ({state.tokens:,} tokens, {state.elapsed:.0f} s)"),
        ("best valid ppl", fmt(outcome.best_valid_ppl)),
    ]
    if outcome.diverged:
        rows.insert(1, ("result", f"[bold red]diverged[/]: {escape(outcome.diverged)}"))
    if test is not None:
        rows.append(("test ppl (best weights)", fmt(test.perplexity)))
        for key in ("bits_per_char", "bits_per_byte"):
            if getattr(test, key) is not None:
                rows.append((f"test {key.replace('_', ' ')}", fmt(getattr(test, key), 4)))
    train_summary(rows)
    info(f"run folder: [bold]{escape(str(out))}[/]")  # only for a folder that is kept
    if not outcome.diverged:
        return 0
    err_console.print(
        f"[bold red]training diverged:[/] {escape(outcome.diverged)}; the weights are kept as written. "
        "Try a lower --lr or a smaller --clip",
        soft_wrap=True,
    )
    return DIVERGED_EXIT
