"""``lstmlm train``: the run options here, the model/data/training flags from the config."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from lstmlm.cli import report, train_display
from lstmlm.cli.app import command
from lstmlm.cli.options import Flags, Threads, config_flags, use_threads
from lstmlm.config import load_toml
from lstmlm.errors import LstmlmError
from lstmlm.runtime.signals import Interrupted

PEER_ERROR_WAIT_S = 30.0
RUN = "Run"  # the help panel of the options about the run folder


def rank_zero_reports(command: Callable[..., None]) -> Callable[..., None]:
    """Under torchrun every rank runs the command: rank 0 reports, the others stay quiet.

    A user error is raised alike on every rank (or handed on from rank 0). A rank > 0 that
    exited with it at once would have torchrun kill rank 0 before it says why, so it waits:
    rank 0 reports and exits, and torchrun stops this rank. An error rank 0 does not share
    shows here after ``PEER_ERROR_WAIT_S``; unexpected errors show at once on any rank.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from lstmlm.runtime import distributed

        if distributed.from_env().is_main:
            return command(*args, **kwargs)
        report.console.quiet = True
        try:
            return command(*args, **kwargs)
        except LstmlmError:
            time.sleep(PEER_ERROR_WAIT_S)
            raise
        except Interrupted as e:  # rank 0 says so
            raise typer.Exit(e.exit_code) from None

    return run


@command()
@rank_zero_reports
@config_flags
def train(
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder to write.", show_default="runs/<time>", rich_help_panel=RUN),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file with \\[model], \\[data], \\[train] tables, or a run's config.json (its settings "
            "for a new run); relative paths in it are read from its folder; flags override it.",
            rich_help_panel=RUN,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out from its latest checkpoint.",
            metavar="",
            rich_help_panel=RUN,
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the run in --out.", metavar="", rich_help_panel=RUN)
    ] = False,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Also log scalars to RUN/tensorboard (needs the tensorboard package).",
            metavar="",
            rich_help_panel=RUN,
        ),
    ] = False,
    threads: Threads = None,
    flags: Flags | None = None,
) -> None:
    """Train a language model and write a run folder (config, tokenizer, weights, metrics).

    Several GPUs or nodes: start it with torchrun (--batch-size is the global batch), e.g.
    torchrun --nproc_per_node=4 -m lstmlm train ...
    """
    use_threads(threads)
    from lstmlm.training.launch import plan_run, start_training
    from lstmlm.training.tensorboard import TensorBoardLog

    file_values = load_toml(config) if config else {}
    out = out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    board = TensorBoardLog(out / "tensorboard") if tensorboard else None  # fails now without the package
    run_config = plan_run(out, file_values, flags or {}, resume=resume, overwrite=overwrite)
    with train_display.TrainDisplay() as display, board or contextlib.nullcontext():
        outcome = start_training(
            out,
            run_config,
            resume=resume,
            overwrite=overwrite,
            on_event=board.wrap(display) if board else display,
            warn=report.warn,
            on_data=display.data,
        )
    code = train_display.training_outcome(out, outcome)
    if code:  # diverged: said in the summary and on stderr; the run folder is kept
        raise typer.Exit(code)
