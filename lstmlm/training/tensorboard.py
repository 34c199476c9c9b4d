"""Optional TensorBoard logging of training events (``lstmlm train --tensorboard``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lstmlm.errors import LstmlmError
from lstmlm.runs.events import Eval, Event, EventCallback, Log, Start

# The fields of each event kind written as scalars, and their tags.
SCALARS: dict[type[Event], dict[str, str]] = {
    Log: {"loss": "train/loss", "ppl": "train/ppl", "lr": "train/lr", "tokens_per_s": "train/tokens_per_s"},
    Eval: {"valid_loss": "valid/loss", "valid_ppl": "valid/ppl"},
}


def summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or one clear error without the tensorboard package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise LstmlmError("--tensorboard needs the tensorboard package: pip install tensorboard") from e
    return SummaryWriter


class TensorBoardLog:
    """Writes ``Log`` and ``Eval`` events as scalars under ``log_dir``; use as a context manager.

    Creating one checks for the package at once. The writer opens at the ``Start`` event, so a
    run rejected before training leaves no folder behind. Like ``metrics.jsonl``, TensorBoard
    then drops older events after the start step: those a resumed run replays, or an
    overwritten run's.
    """

    def __init__(self, log_dir: Path) -> None:
        self.writer_class = summary_writer_class()
        self.log_dir = log_dir
        self.writer: Any = None

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Start):
            self.close()
            self.writer = self.writer_class(log_dir=str(self.log_dir), purge_step=event.step + 1)
            return
        if self.writer is None:
            return
        for name, tag in SCALARS.get(type(event), {}).items():
            self.writer.add_scalar(tag, getattr(event, name), global_step=event.step)

    def wrap(self, then: EventCallback) -> EventCallback:
        """A callback that logs each event here, then hands it on to ``then``."""

        def on_event(event: Event) -> None:
            self(event)
            then(event)

        return on_event
