"""Optional TensorBoard logging of training events (``lstmlm train --tensorboard``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstmlm.errors import LstmlmError

if TYPE_CHECKING:
    from lstmlm.train import EventCallback

TRAIN_SCALARS = {
    "loss": "train/loss",
    "ppl": "train/ppl",
    "lr": "train/lr",
    "tokens_per_s": "train/tokens_per_s",
}
VALID_SCALARS = {"valid_loss": "valid/loss", "valid_ppl": "valid/ppl"}


def summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or one clear error without the tensorboard package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise LstmlmError("--tensorboard needs the tensorboard package: pip install tensorboard") from e
    return SummaryWriter


class TensorBoardLog:
    """Writes "log" and "eval" events as scalars under ``log_dir``; use as a context manager.

    Creating one checks for the package at once. The writer opens at the "start" event, so a
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

    def __call__(self, kind: str, m: dict[str, Any]) -> None:
        if kind == "start":
            self.close()
            self.writer = self.writer_class(log_dir=str(self.log_dir), purge_step=m["step"] + 1)
            return
        if self.writer is None:
            return
        scalars = TRAIN_SCALARS if kind == "log" else VALID_SCALARS if kind == "eval" else {}
        for key, tag in scalars.items():
            if key in m:
                self.writer.add_scalar(tag, m[key], global_step=m["step"])

    def wrap(self, then: EventCallback) -> EventCallback:
        """A callback that logs each event here, then hands it on to ``then``."""

        def on_event(kind: str, m: dict[str, Any]) -> None:
            self(kind, m)
            then(kind, m)

        return on_event
