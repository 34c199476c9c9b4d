"""The ``lstmlm`` command line: parse options, build the config, call the library, report.

``app`` holds the error policy; each command module registers its commands on it. None of
these modules imports torch, datasets or matplotlib at import time: commands import what
they use when they run.
"""

import os  # noqa: I001  (the command modules below register in --help order)
import sys

# Importing a command module registers its commands; --help lists them in this order.
from lstmlm.cli import train_command  # noqa: F401
from lstmlm.cli import eval_command  # noqa: F401
from lstmlm.cli import run_commands  # noqa: F401
from lstmlm.cli import score_command  # noqa: F401
from lstmlm.cli import inspect_command  # noqa: F401
from lstmlm.cli import export_command  # noqa: F401
from lstmlm.cli import view_command  # noqa: F401
from lstmlm.cli.app import app, os_error_line
from lstmlm.runtime.threads import prefer_sleeping_workers


def main() -> None:
    prefer_sleeping_workers()  # before any command imports torch
    try:
        app()
    except SystemExit as e:
        if _was_in_a_process_group():
            _leave_now(e.code)
        raise


def _was_in_a_process_group() -> bool:
    distributed = sys.modules.get("lstmlm.runtime.distributed")  # not imported: never in a group
    return bool(distributed and distributed.joined_a_group)


def _leave_now(code: object) -> None:
    """Exit without Python's finalization, once everything is written and flushed.

    torch 2.13's DDP keeps the process group alive past ``destroy_process_group``, and
    with it gloo's worker threads. A worker that frees the last collective's tensor while
    the interpreter finalizes needs the GIL, is ended by Python, and aborts the process
    ("terminate called without an active exception", SIGABRT), in ~5% of runs on a busy
    CPU. Nothing is left to do at this point: the run folder is closed and the report
    printed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if isinstance(code, str):
        print(code, file=sys.stderr, flush=True)
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


__all__ = ["app", "main", "os_error_line"]
