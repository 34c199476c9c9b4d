"""``lstmlm view``: the cell state live in a browser, served locally or written as one page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmlm.cli import report
from lstmlm.cli.app import command
from lstmlm.cli.options import Device, LastWeights, RunDir, Threads, use_threads
from lstmlm.errors import LstmlmError

DEFAULT_PORT = 8765


@command()
def view(
    run_dir: RunDir,
    text: Annotated[
        str, typer.Option(help="Text to show first (read as one line); with --out, the page's text.")
    ] = "",
    file: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Read that text from a UTF-8 file instead.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="PAGE.html",
            help="Write one self-contained page (the trace of --text or --file and the demo pairs; "
            "opens offline) instead of serving. Replaces only a page written by lstmlm view.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to serve on (127.0.0.1: this machine only).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on (0: a free one).")] = (
        DEFAULT_PORT
    ),
    last: LastWeights = False,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """See inside the model in a browser: gates, cell state and units per token, the next-token
    predictions, the LSTM diagram with the step's numbers, minimal pairs. Serves a local page
    (Ctrl-C stops) or, with --out, writes it as one file."""
    use_threads(threads)
    if text.strip() and file is not None:
        raise LstmlmError("give --text or --file, not both")
    if out is not None:
        from lstmlm.view.page import check_out

        check_out(out)  # before the run is loaded
    shown = _read_text(file) if file is not None else text
    if out is not None and not shown.strip():
        raise LstmlmError("--out needs the text to show: --text TEXT or --file FILE")
    from lstmlm.view import app as view_app

    viewer = view_app.Viewer.open(run_dir, device=device, best=not last)
    if out is not None:
        viewer.write_page(shown, out)
        report.info(f"wrote {out}")
        return
    web_app = viewer.app(shown)  # the page is built (and the text traced) before the URL is shown
    sock = viewer.listen(host, port)
    report.info(f"lstmlm view: {view_app.url_of(sock)}  (Ctrl-C stops)")
    view_app.serve(web_app, sock)
    report.info("stopped")


def _read_text(path: Path) -> str:
    from lstmlm.view.payloads import Limits

    most = Limits().max_chars * 4  # UTF-8 bytes of the longest text a page traces
    try:
        if path.stat().st_size > most:
            raise LstmlmError(
                f"--file {path} is over {most:,} bytes; the page traces up to {most // 4:,} characters"
            )
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LstmlmError(f"--file {path} is not UTF-8 text") from None
    except FileNotFoundError:
        raise LstmlmError(f"--file: file not found: {path}") from None
    except IsADirectoryError:
        raise LstmlmError(f"--file {path} is a folder, not a file") from None
