"""``lstmlm score``: per-word surprisal and sentence log-probabilities of text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lstmlm.cli import report
from lstmlm.cli.app import command
from lstmlm.cli.options import Device, LastWeights, RunDir, Threads, use_threads
from lstmlm.errors import LstmlmError


@command("score")
def score_(
    run_dir: RunDir,
    text: Annotated[
        list[str] | None, typer.Option("--text", help="A sentence to score (repeat for more).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", metavar="FILE", help="Score each line of this UTF-8 file (-: read stdin)."),
    ] = None,
    context: Annotated[
        bool,
        typer.Option(
            "--context/--fresh",
            help="Carry the state from line to line (one text), or start each line fresh.",
        ),
    ] = False,
    last: LastWeights = False,
    jsonl: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object per line (JSONL) on stdout only.", metavar=""),
    ] = False,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Surprisal (bits) of every word, and each sentence's log-probability.

    A word the tokenizer splits into several tokens gets their sum. Each line
    is scored after an <eos> and closed by one, as in training; <eos> counts
    in the sentence total. Every line with text is scored (blank lines are
    skipped); --file - reads stdin. --json adds to each line's object where
    it came from: source (the file, "stdin" or "text") and line (its number),
    and direction: a backward run scores each word given the words after it.
    """
    use_threads(threads)
    lines, source = _input_lines(text, file)
    from lstmlm.api import load
    from lstmlm.runtime.device import resolve_device

    model = load(run_dir, weights="last" if last else "best", device=resolve_device(device))
    scores = model.score(lines, context=context)
    numbers = [number for number, line in enumerate(lines, 1) if line.strip()]  # the lines scored
    direction = model.run.config.model.direction  # backward: each word given the words to its right
    if jsonl:
        for number, score in zip(numbers, scores, strict=True):
            row = {**score.to_dict(), "source": source, "line": number, "direction": direction}
            print(json.dumps(row, ensure_ascii=False))
        return
    unk = model.tokenizer.unk_id
    report.surprisal_tables(scores, unk_token=None if unk is None else model.tokenizer.decode([unk]))
    report.info(report.score_source(source, scores, context=context))
    if direction == "backward":
        report.info("a backward run: each word's surprisal is given the words to its right (and later lines)")


def _input_lines(text: list[str] | None, file: Path | None) -> tuple[list[str], str]:
    """The lines to score, and where they came from: the file, "stdin" or "text" (--text)."""
    if (text is None) == (file is None):
        raise LstmlmError("give the text to score: --text SENTENCE or --file FILE (one of them)")
    if file is None:
        return [line for t in text or [] for line in t.splitlines()], "text"
    from lstmlm.runs.load import STDIN, file_lines, stdin_lines

    if str(file) == STDIN:
        return stdin_lines(), "stdin"
    if not file.exists():
        raise LstmlmError(f"--file: not found: {file}")
    if file.is_dir():
        raise LstmlmError(f"--file: {file} is a folder, not a file")
    return file_lines(file), str(file)
