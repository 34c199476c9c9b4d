"""Training events: what the loop reports, typed, in one place.

The loop builds one of the frozen dataclasses below per event and hands it to its one
``emit``: rank 0 appends ``event.to_record()`` to ``metrics.jsonl`` and calls the
``on_event`` callback (``EventCallback``) with the event itself. Readers of
``metrics.jsonl`` turn records back into events with ``from_record``.

A record is ``{"event": kind, "step": ..., "epoch": ..., <the kind's fields>}``, keys in
that order. Every event carries ``step`` (steps taken so far in the run) and ``epoch``
(1-based: the epoch the next window belongs to). A field left at ``None`` is left out of
the record, and a record without it reads back as ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    """Common to every event: where the run is."""

    kind: ClassVar[str]
    step: int
    epoch: int

    def to_record(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` object of this event."""
        record: dict[str, Any] = {"event": self.kind}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                record[field.name] = value
        return record


@dataclass(frozen=True, kw_only=True)
class Resume(Event):
    """A run continues from its checkpoint at ``step`` (emitted before ``Start``)."""

    kind: ClassVar[str] = "resume"
    lr: float  # the learning rate of the next step


@dataclass(frozen=True, kw_only=True)
class Start(Event):
    """Training (re)starts: what this session runs, on what."""

    kind: ClassVar[str] = "start"
    total_steps: int  # steps the run will have taken when it ends
    windows_per_epoch: int
    parameters: int
    device: str  # "cpu", "cuda", "cuda:1", ...
    precision: str = "fp32"  # "fp32", "bf16" or "fp16"; absent in records of older runs
    compile: bool = False  # through torch.compile
    world_size: int = 1  # processes under torchrun


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    """Training loss and speed over the finite steps since the last log."""

    kind: ClassVar[str] = "log"
    loss: float  # mean per-token cross-entropy (nats)
    ppl: float
    lr: float  # the learning rate of the last step
    tokens_per_s: float  # over all ranks
    total_steps: int
    elapsed: float  # training seconds over all sessions of the run
    loss_scale: float | None = None  # fp16 only: the loss scaler's scale now
    overflow_skips: int | None = None  # fp16 only: steps the scaler skipped since the last log


@dataclass(frozen=True, kw_only=True)
class NonFinite(Event):
    """A step whose loss or gradient norm was not finite: its update was skipped."""

    kind: ClassVar[str] = "nonfinite"
    loss: float
    grad_norm: float
    lr: float


@dataclass(frozen=True, kw_only=True)
class Eval(Event):
    """A validation pass, and what it did to the best weights and the learning rate."""

    kind: ClassVar[str] = "eval"
    valid_loss: float
    valid_ppl: float
    best_valid_ppl: float  # best so far, this one included
    lr: float  # the learning rate of the next step, after any annealing
    improved: bool  # a new best: best.safetensors was written
    annealed: bool  # plateau schedule: lr was divided by the anneal factor
    averaged: bool | None = None  # NT-ASGD: these were the averaged weights (absent: the raw ones)
    averaging_from_now: bool | None = None  # NT-ASGD switched to averaging at this evaluation


@dataclass(frozen=True, kw_only=True)
class Save(Event):
    """A checkpoint of ``step`` was written (records exist from issue 12 on)."""

    kind: ClassVar[str] = "save"


@dataclass(frozen=True, kw_only=True)
class Unsaved(Event):
    """A checkpoint was due and not written; the previous one is kept."""

    kind: ClassVar[str] = "unsaved"
    reason: str


@dataclass(frozen=True, kw_only=True)
class Diverged(Event):
    """The loss ran away (the rule: ``lstmlm.training.loop``): training stops here, or, found at
    the last evaluation, ends flagged. Either way ``End.diverged`` is true and ``train`` exits 3."""

    kind: ClassVar[str] = "diverged"
    split: str  # "train": log intervals' mean loss; "valid": the last evaluation's loss
    loss: float  # the last of them (nats per token; may be inf or nan)
    limit: float  # max(log(vocabulary size), the untrained model's loss) + log(10)
    in_a_row: int  # log intervals above the limit in a row (1 for the last evaluation)


@dataclass(frozen=True, kw_only=True)
class End(Event):
    """Training ended: at its last step, its ``--max-time`` deadline, its ``--patience`` or
    because it diverged."""

    kind: ClassVar[str] = "end"
    best_valid_ppl: float
    tokens: int  # trained over all sessions and ranks (skipped steps excluded)
    elapsed: float  # training seconds over all sessions
    ranks_in_sync: bool  # every rank holds the same weights (always true in one process)
    reason: str | None = None  # "steps", "time", "patience" or "diverged"; absent in older records
    diverged: bool = False  # the loss ran away (a ``Diverged`` event says how); absent in older records


KINDS: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Resume, Start, Log, NonFinite, Eval, Save, Unsaved, Diverged, End)
}

EventCallback = Callable[[Event], None]


def from_record(record: Mapping[str, Any]) -> Event | None:
    """The event of one ``metrics.jsonl`` record; ``None`` for an unknown kind or a missing field.

    Keys the kind does not know are ignored, and values are taken as they are (a reader
    that needs a number checks for one).
    """
    kind = record.get("event")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    names = {field.name for field in fields(cls)}
    try:
        return cls(**{key: value for key, value in record.items() if key in names})
    except TypeError:
        return None


def ignore(event: Event) -> None:
    """The default callback: drop the event."""
