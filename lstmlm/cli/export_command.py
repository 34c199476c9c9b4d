"""``lstmlm export``: write a run's model as ONNX or TorchScript for serving without lstmlm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmlm.cli import report
from lstmlm.cli.app import command
from lstmlm.cli.options import JsonOut, LastWeights, RunDir, Threads, choices, use_threads
from lstmlm.export import FORMATS


@command()
def export(
    run_dir: RunDir,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar=choices(FORMATS),
            help="onnx: NAME.onnx (sequence) and NAME.step.onnx (one token); torchscript: NAME.pt "
            "with forward (sequence) and step.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Model file to write (.onnx or .pt); the sidecar NAME.<ext>.json and "
            "NAME.tokenizer.json go beside it. Files already there are replaced only by a new "
            "export to the same --out.",
            show_default=False,
        ),  # fmt: skip
    ],
    last: LastWeights = False,
    json_out: JsonOut = False,
    threads: Threads = None,
) -> None:
    """Export a run's model as ONNX or TorchScript, to run without lstmlm: a step model (a token and
    the state in, logits and the state out) and a sequence model."""
    use_threads(threads)
    from lstmlm.export.writer import check_request, export_run

    check_request(format, out)  # before loading torch and the run
    exported = export_run(run_dir, format, out, best=not last)
    if json_out:
        report.print_json(exported.to_dict())
        return
    report.info(f"exported {exported.cell} from {exported.weights} (step {exported.step}) as {format}:")
    for path in exported.files:
        report.info(f"wrote {path}")
