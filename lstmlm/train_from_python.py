"""``lstmlm.train(...)``: training from Python, with the command line's options.

    import lstmlm
    lm = lstmlm.train(data="corpus/", out="runs/mine", nhid=256, epochs=3)
    print(lm.generate("The keys to the cabinet", max_tokens=20, seed=1))

Every keyword option is a ``lstmlm train`` flag, spelt as its config field (declared
once in ``lstmlm.config``): ``--nhid 256`` is ``nhid=256``, ``--max-time 5`` is
``max_time=5``, ``--data a.txt b.txt`` is ``data=["a.txt", "b.txt"]``. ``config=`` reads a
TOML file (or a run's config.json) as ``--config`` does; the keywords override it.
Values are checked as a TOML file's are, and every refusal is a one-line ``LstmlmError``
raised before anything is written. ``on_event`` receives the typed events the CLI draws
its display from (``lstmlm.runs.events``: ``Start``, ``Log``, ``Eval``, ``Save``, ``End``, ...);
notices (the CLI's yellow lines) go to ``on_notice``, else to ``warnings.warn``.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from lstmlm.config import RunConfig, load_toml, settable_fields
from lstmlm.config.loading import resolve_data_paths
from lstmlm.errors import BadArgument, LstmlmError
from lstmlm.runs.events import EventCallback, ignore
from lstmlm.runtime.threads import use_threads
from lstmlm.training.launch import plan_run, start_training

if TYPE_CHECKING:
    from lstmlm.api import Model

SOURCE = "lstmlm.train"  # how option errors name where a value came from


class LstmlmNotice(UserWarning):
    """A notice of ``lstmlm.train`` (the CLI prints these in yellow), when no ``on_notice`` is given."""


def train(
    *,
    out: str | Path | None = None,
    config: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    threads: int | None = None,
    on_event: EventCallback | None = None,
    on_notice: Callable[[str], None] | None = None,
    **options: Any,
) -> Model:
    """Train a language model into the run folder ``out`` and return it loaded (best weights).

    ``out`` defaults to ``runs/<date-time>`` as on the command line; ``resume=True``
    continues the run in ``out``, ``overwrite=True`` replaces it. A run that diverged
    (the rule: ``lstmlm.training.loop``) raises ``LstmlmError`` saying why; its folder is kept.
    """
    flags = _options_by_section(options)
    file_values = load_toml(Path(config)) if config is not None else {}
    folder = Path(out) if out is not None else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise BadArgument(f"threads must be a whole number ≥ 1, got {threads!r}")
        use_threads(threads)
    run_config = plan_run(folder, file_values, flags, resume=resume, overwrite=overwrite)
    outcome = start_training(
        folder,
        run_config,
        resume=resume,
        overwrite=overwrite,
        on_event=on_event or ignore,
        warn=on_notice or _notice,
    )
    if outcome.diverged:
        raise LstmlmError(f"training diverged: {outcome.diverged} (the run folder is kept: {folder})")
    from lstmlm.api import load

    return load(folder)


def _options_by_section(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Keyword options as the CLI's flags (section -> field -> value), checked as a TOML file is."""
    section_of = {f.name: section for section, f in settable_fields()}
    unknown = sorted(set(options) - set(section_of))
    if unknown:
        raise BadArgument(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
            "lstmlm.train takes the fields of `lstmlm train`'s flags (--max-time is max_time)"
        )
    sections: dict[str, dict[str, Any]] = {}
    for name, value in options.items():
        sections.setdefault(section_of[name], {})[name] = _plain(value)
    if "data" in sections:
        sections["data"] = resolve_data_paths(sections["data"], Path.cwd())
    RunConfig.from_dict(sections, source=SOURCE)  # types and ranges, before anything runs
    return sections


def _plain(value: Any) -> Any:
    """Paths as the strings a TOML file would hold; tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _notice(message: str) -> None:
    warnings.warn(message, LstmlmNotice, stacklevel=_callers_level())


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside lstmlm: the notice points at the caller's
    ``lstmlm.train(...)`` line, not at lstmlm's insides."""
    package = str(Path(__file__).resolve().parent)
    frame: FrameType | None = sys._getframe(1)
    level = 1  # _notice
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
