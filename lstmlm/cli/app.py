"""The Typer app and its error policy: every user error is one red line and exit 1.

``--debug`` or ``LSTMLM_DEBUG=1`` shows the traceback instead; an interrupted ``train``
exits 130 (SIGINT) or 143 (SIGTERM) after saving a checkpoint. Nothing here imports
torch: ``lstmlm --help`` starts in a fraction of a second, and each command imports
what it needs when it runs.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from lstmlm import __version__
from lstmlm.cli import report
from lstmlm.errors import LstmlmError
from lstmlm.files import WriteError
from lstmlm.runtime.signals import Interrupted, SignalExit


class _PlainHelpFlag:
    """``--help`` is a flag: no ``<bool>`` type column in the help."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]  # mixin: the click command after it has it
        if option is not None:
            option.metavar = ""
        return option


class LstmlmCommand(_PlainHelpFlag, TyperCommand):
    pass


class LstmlmGroup(_PlainHelpFlag, TyperGroup):
    """Turns every user error, including usage errors, into one line and exit 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except LstmlmError as e:
            _fail(str(e), 1, debug_reraises=True)
        except typer.TyperException as e:  # typer's (vendored click's) usage errors
            _usage_error(e)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as e:  # a full disk, a read-only or forbidden folder, ...
            _fail(os_error_line(e), 1, debug_reraises=True)
        except Interrupted as e:
            report.warn(str(e))
            sys.exit(e.exit_code)
        except SignalExit as e:  # SIGINT/SIGTERM outside the training loop
            _fail(str(e), e.exit_code)
        except UnicodeEncodeError as e:  # bytes in argv that are not UTF-8 reach us as surrogates
            held = ascii(e.object[e.start : e.end])
            _fail(f"text is not valid UTF-8 (an argument or file name holds {held})", 1)
        except Exception as e:
            _fail(
                f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
                2,
                debug_reraises=True,
            )
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, *, debug_reraises: bool = False) -> None:
    if debug_reraises and _debug():
        raise  # the exception being handled
    report.error(message)
    sys.exit(code)


def _usage_error(e: typer.TyperException) -> None:
    ctx = getattr(e, "ctx", None)
    if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
        report.console.print(ctx.get_help())
        sys.exit(0)
    if isinstance(e, typer.Abort):
        _fail("aborted", 130)
    message = e.format_message() if hasattr(e, "format_message") else str(e)
    hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
    _fail((message.strip().splitlines() or ["bad usage"])[0] + hint, 1)


WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def os_error_line(e: OSError) -> str:
    """``cannot write runs/x/config.json: No space left on device``: the file and the OS reason."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename is None:
        return f"OS error: {reason}"
    verb = "cannot write" if isinstance(e, WriteError) or e.errno in WRITE_ERRNOS else "cannot access"
    return f"{verb} {e.filename}: {reason}"


def _debug() -> bool:
    return os.environ.get("LSTMLM_DEBUG", "") not in ("", "0")


app = typer.Typer(
    cls=LstmlmGroup,
    help="Train, evaluate, sample and understand recurrent (LSTM/GRU) language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def command(name: str | None = None) -> Any:
    """``@command()``: register a command of the app (with a plain ``--help`` flag)."""
    return app.command(name, cls=LstmlmCommand)


def _version(value: bool) -> None:
    if value:
        import torch

        report.info(f"lstmlm {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (also LSTMLM_DEBUG=1).", metavar="")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit.", metavar=""
        ),
    ] = False,
) -> None:
    if debug:
        os.environ["LSTMLM_DEBUG"] = "1"
