"""``lstmlm eval``: static perplexity, and beside it dynamic evaluation and the continuous cache.

The methods' flags (``--dynamic-*``, ``--cache-*``) come from their settings dataclasses
(``lstmlm.evaluation.settings``); the work is ``lstmlm.evaluation.methods.evaluate_run``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import typer

from lstmlm.cli import report
from lstmlm.cli.app import command
from lstmlm.cli.options import (
    EVAL_FLAGS,
    Device,
    Flags,
    JsonOut,
    LastWeights,
    RunDir,
    Threads,
    choices,
    settings_flags,
    use_threads,
)
from lstmlm.errors import LstmlmError
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings

T = TypeVar("T")
DYNAMIC_PANEL, CACHE_PANEL = (group.panel for group in EVAL_FLAGS)


def _switch(name: str, panel: str, help: str) -> Any:
    return typer.Option(name, metavar="", rich_help_panel=panel, help=help)


@command("eval")
@settings_flags(*EVAL_FLAGS)
def eval_(
    run_dir: RunDir,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Score this text instead: a file, a quoted glob of files, or - for stdin (all of it, "
            "every line as one stream, unless --split); a folder or a Hugging Face dataset, read like "
            "train's --data (its test split unless --split).",
            show_default="the run's own data",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            metavar=choices(("train", "valid", "test", "whole")),
            help="Which split to score: of the run's own data, of a --data folder or dataset, or of a "
            "--data file as train splits it (90/5/5 by lines); whole: all of a --data file or stdin.",
            show_default="whole for a --data file or -, else test",
        ),
    ] = None,
    last: LastWeights = False,
    dynamic: Annotated[
        bool,
        _switch(
            "--dynamic",
            DYNAMIC_PANEL,
            "Also dynamic evaluation (Krause et al. 2018): a copy of the weights adapts to the text "
            "as it is scored, segment by segment, one stream.",
        ),
    ] = False,
    cache: Annotated[
        bool,
        _switch(
            "--cache",
            CACHE_PANEL,
            "Also the continuous cache (Grave et al. 2017): recent hidden states vote for the words "
            "that followed them.",
        ),
    ] = False,
    cache_tune: Annotated[
        bool,
        _switch(
            "--cache-tune",
            CACHE_PANEL,
            "Search theta and lambda on the valid split first (a small grid); implies --cache.",
        ),
    ] = False,
    json_out: JsonOut = False,
    device: Device = "auto",
    threads: Threads = None,
    *,
    flags: Flags,
) -> None:
    """Perplexity of a run's model over a whole split, state carried (bits/char or bits/byte too).

    What is scored: without --data, the run's own test split (or --split).
    --data FILE, a quoted glob of files, or --data - (stdin): all of that text, every line with text,
    as one stream after an <eos> (as score --context reads it); with --split,
    that split of the file instead (90/5/5 by lines, as train splits it).
    --data FOLDER or a dataset: its test split (or --split). One --data per eval.
    The output says what was scored (--json: source, data, corpus, split, tokens).

    --dynamic and --cache add their perplexities beside the static one (--json: an object each).
    """
    use_threads(threads)
    if data is not None and len(data) > 1:
        raise LstmlmError(
            "eval scores one text: give one --data (a file, a quoted glob such as 'shards/*.txt', "
            "- for stdin, a folder or a dataset)"
        )
    text_given = data[0] if data else None
    dynamic_settings = _settings(DynamicSettings, dynamic, "--dynamic", flags["dynamic"])
    cache_settings = _settings(CacheSettings, cache or cache_tune, "--cache", flags["cache"])
    from lstmlm.evaluation.methods import evaluate_run
    from lstmlm.runs.load import WHOLE, eval_split, load_run, read_text, trained_on
    from lstmlm.runtime.device import resolve_device

    split = eval_split(text_given, split)
    run = load_run(run_dir, best=not last, device=resolve_device(device))
    if text_given is not None and split == WHOLE and trained_on(run, text_given):
        report.warn(
            f"{text_given} is the file this run was trained on: all of it includes its training lines "
            "(--split test scores its held-out lines)"
        )
    text = read_text(run, split, text_given)
    payload = evaluate_run(
        run,
        split,
        text_given,
        dynamic=dynamic_settings,
        cache=cache_settings,
        tune_cache=cache_tune,
        text=text,
    )
    payload.update(run=str(run_dir), weights=run.weights_path.name, step=run.step)
    if json_out:
        report.print_json(payload)
    else:
        report.console.print(report.evaluation_table(report.evaluation_rows(payload)))
        report.info(report.evaluation_source(payload))
        report.info(f"weights: {run.weights_path.name} (step {run.step})")


def _settings(cls: type[T], wanted: bool, switch: str, given: dict[str, Any]) -> T | None:
    """``cls`` with the options given; None when the method is off (its options are then an error)."""
    if not wanted:
        if given:
            names = ", ".join(f"{switch}-{'lambda' if k == 'lam' else k}" for k in given)
            raise LstmlmError(f"{names}: only with {switch}")
        return None
    return cls(**given)
