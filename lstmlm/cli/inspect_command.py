"""``lstmlm inspect``: trace a sentence's gates and state, or find the number and gender units."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lstmlm.cli import report
from lstmlm.cli.app import command
from lstmlm.cli.options import Device, JsonOut, RunDir, Suite, Threads, use_threads
from lstmlm.cli.run_commands import warn_unknown_words
from lstmlm.errors import LstmlmError

if TYPE_CHECKING:
    from lstmlm.runs.load import Run

FEATURES = ("number", "gender", "both")


@command("inspect")
def inspect_(
    run_dir: RunDir,
    text: Annotated[str, typer.Option(help="Sentence to run through the model, read as one line.")] = "",
    layer: Annotated[
        int | None, typer.Option(help="Layer to show in the table and heatmaps.", show_default="the last")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Most active units per token; units ranked.")] = 3,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write a PNG: heatmaps of the trace, or with --find-units the units' trajectories."
        ),
    ] = None,
    json_out: JsonOut = False,
    npz: Annotated[Path | None, typer.Option(help="Save the raw traces (numpy .npz).")] = None,
    find_units: Annotated[
        bool,
        typer.Option(
            "--find-units",
            help="Rank the units whose state carries the subject's number and gender, and ablate them.",
            metavar="",
        ),
    ] = False,
    suite: Suite = "default",
    agreement: Annotated[
        str, typer.Option(metavar="[number|gender|both]", help="--find-units: which feature.")
    ] = "both",
    ablate: Annotated[
        str, typer.Option(help="--find-units: comma-separated k: zero the top-k units vs k random ones.")
    ] = "1,3,10",
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Look inside: per-token gates and cell state, or the units that carry number and gender."""
    use_threads(threads)
    from lstmlm.data.direction import require_forward
    from lstmlm.runs.folder import refuse_run_file
    from lstmlm.runs.load import load_run
    from lstmlm.runtime.device import resolve_device

    if not find_units and not text.strip():
        raise LstmlmError("give --text TEXT to trace a sentence, or --find-units")
    if plot is not None and plot.suffix.lower() != ".png":
        raise LstmlmError(f"--plot must name a .png file (got {plot})")
    for option, path in (("--plot", plot), ("--npz", npz)):
        if path is not None:
            refuse_run_file(path, option)
    if agreement not in FEATURES:
        raise LstmlmError(f"--agreement must be one of {', '.join(FEATURES)} (got {agreement!r})")
    ks = positive_ints(ablate, "--ablate")
    run = load_run(run_dir, device=resolve_device(device))
    require_forward(run.config.model.direction, "inspect")  # traces and units read left to right
    nlayers = run.config.model.nlayers
    if layer is not None and not 0 <= layer < nlayers:
        raise LstmlmError(f"--layer must be in 0..{nlayers - 1} for this {nlayers}-layer model (got {layer})")
    if find_units:
        kinds = ["number", "gender"] if agreement == "both" else [agreement]
        _find_units(run, suite, kinds, top, ks, plot, json_out)
    else:
        _trace(run, text, nlayers - 1 if layer is None else layer, top, plot, json_out, npz)


def positive_ints(value: str, option: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise LstmlmError(f"{option} takes comma-separated whole numbers (got {value!r})") from None
    if not numbers or min(numbers) < 1:
        raise LstmlmError(f"{option} takes comma-separated numbers >= 1 (got {value!r})")
    return numbers


def _trace(
    run: Run, text: str, layer: int, top: int, plot: Path | None, json_out: bool, npz: Path | None
) -> None:
    from lstmlm.analysis.traces import save_npz, trace_text

    warn_unknown_words(run, text)
    trace = trace_text(run.model, run.tokenizer, text)
    if npz is not None:
        if not npz.parent.is_dir():
            raise LstmlmError(f"--npz: folder not found: {npz.parent}")
        save_npz(trace, npz)
    if plot is not None:
        from lstmlm.analysis.plots import trace_heatmaps

        trace_heatmaps(trace, layer, plot)
    if json_out:
        report.print_json(trace.to_dict())
        return
    report.console.print(report.trace_table(trace, layer, top))
    for path in (npz, plot):
        if path is not None:
            report.info(f"wrote {path}")


def _find_units(
    run: Run, suite: str, kinds: list[str], top: int, ks: list[int], plot: Path | None, json_out: bool
) -> None:
    from lstmlm.analysis.units import find_units, unit_trajectories
    from lstmlm.scoring.suites import load_suite

    pairs, _ = load_suite(suite)
    findings = find_units(run.model, run.tokenizer, pairs, kinds, ks)
    shown = max(top, 10)
    if json_out:
        report.print_json({f.kind: f.to_dict(shown) for f in findings})
    else:
        for finding in findings:
            report.console.print(report.units_table(finding, shown))
            report.console.print(report.ablation_table(finding))
    if plot is not None:
        from lstmlm.analysis.plots import unit_trajectory_panels

        unit_trajectory_panels([unit_trajectories(run.model, run.tokenizer, f, top) for f in findings], plot)
        if not json_out:
            report.info(f"wrote {plot}")
