"""Commands that read a trained run: ``generate``, ``agreement``, ``plot``, ``info``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lstmlm.cli import report
from lstmlm.cli.app import command
from lstmlm.cli.options import Device, JsonOut, RunDir, Suite, Threads, use_threads
from lstmlm.errors import LstmlmError

if TYPE_CHECKING:
    from lstmlm.runs.load import Run


@command()
def generate(
    run_dir: RunDir,
    prompt: Annotated[str, typer.Option(help="Text to continue.")] = "",
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens to sample per sample.")] = 50,
    temperature: Annotated[float, typer.Option(min=0.0, help="Softmax temperature; 0 = greedy.")] = 1.0,
    top_k: Annotated[int, typer.Option(min=0, help="Sample from the k most likely tokens (0 = all).")] = 0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling threshold.")] = 1.0,
    seed: Annotated[
        int, typer.Option(min=0, max=2**64 - 1, help="Sampling seed: the same seed gives the same text.")
    ] = 0,
    num_samples: Annotated[int, typer.Option(min=1, help="How many samples.")] = 1,
    agreement: Annotated[
        bool,
        typer.Option(
            "--agreement",
            help="Show the seed's agreement examples: P(correct form) vs P(wrong form) after "
            "prompts of growing distance and attractors, with a sampled continuation.",
            metavar="",
        ),
    ] = False,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Sample text from a run's model, streaming tokens as they come."""
    use_threads(threads)
    from lstmlm.data.direction import require_forward
    from lstmlm.runs.load import load_run
    from lstmlm.runtime.device import resolve_device

    if not top_p > 0.0:  # also nan, which typer's range lets through
        raise LstmlmError(f"--top-p must be in (0, 1] (got {top_p})")
    if not math.isfinite(temperature):
        raise LstmlmError(f"--temperature must be a finite number >= 0 (got {temperature})")
    run = load_run(run_dir, device=resolve_device(device))
    require_forward(run.config.model.direction, "generate")
    if agreement:
        _agreement_demo(run, seed, temperature)
        return
    warn_unknown_words(run, prompt)
    _stream_samples(run, prompt, num_samples, max_tokens, temperature, top_k, top_p, seed)


def _agreement_demo(run: Run, seed: int, temperature: float) -> None:
    from lstmlm.data.grammar.demo_prompts import demo_prompts
    from lstmlm.scoring.pairs import demo_rows, missing_demo_words

    prompts = demo_prompts()
    missing = missing_demo_words(run.tokenizer, prompts)
    if missing:
        shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise LstmlmError(
            f"--agreement: {run.dir}'s vocabulary lacks words of the demo prompts: {shown} "
            "(train on the default corpus to use it)"
        )
    report.agreement_demo(demo_rows(run.model, run.tokenizer, prompts, seed=seed, temperature=temperature))


def _stream_samples(
    run: Run, prompt: str, num_samples: int, max_tokens: int, temperature: float, top_k: int, top_p: float,
    seed: int,
) -> None:  # fmt: skip
    import torch

    from lstmlm.generate import StreamDecoder, prompt_ids, sample

    ids = prompt_ids(run.tokenizer, prompt)
    generator = torch.Generator().manual_seed(seed)
    for index in range(num_samples):
        if num_samples > 1:
            report.console.rule(f"sample {index + 1}")
        report.console.print(f"[bold]{prompt}[/]", end="")
        decoder = StreamDecoder(run.tokenizer, ids)
        tokens = sample(
            run.model, ids, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
            generator=generator,
        )  # fmt: skip
        for token in tokens:
            report.console.print(decoder.push(token), end="", markup=False)
            report.console.file.flush()
        report.console.print()


def warn_unknown_words(run: Run, text: str) -> None:
    """Word tokenizers read words outside the vocabulary as <unk>: say which."""
    if run.tokenizer.kind != "word":
        return
    unknown = [w for w in text.split() if run.tokenizer.id(w) is None]
    if unknown:
        report.warn(f"not in the vocabulary, read as <unk>: {', '.join(unknown)}")


@command("agreement")
def agreement_(
    run_dir: RunDir,
    suite: Suite = "default",
    by: Annotated[
        str | None,
        typer.Option(
            help='Comma-separated fields to group by; "" for all pairs as one row.',
            show_default="the suite's: construction,attractors; BLiMP's linguistics_term,UID; else none",
        ),
    ] = None,
    pairs_out: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            metavar="FILE",
            help="Also write every pair as JSONL: both log-probabilities, the decisions, <unk> count.",
        ),
    ] = None,
    json_out: JsonOut = False,
    device: Device = "auto",
    threads: Threads = None,
) -> None:
    """Score minimal pairs: accuracy by construction and attractors, or by the suite's own fields
    (sentence and prefix rules)."""
    use_threads(threads)
    from lstmlm.runs.folder import refuse_run_file
    from lstmlm.runs.load import load_run
    from lstmlm.runtime.device import resolve_device
    from lstmlm.scoring.accuracy import accuracy_by, accuracy_of
    from lstmlm.scoring.pairs import by_fields, group_fields, score_pairs, write_pair_scores
    from lstmlm.scoring.suites import load_suite

    typed = by_fields(by)
    if pairs_out is not None:
        if not pairs_out.parent.is_dir():
            raise LstmlmError(f"--pairs: folder not found: {pairs_out.parent}")
        refuse_run_file(pairs_out, "--pairs")
        if pairs_out.exists() and Path(suite).exists() and pairs_out.resolve() == Path(suite).resolve():
            raise LstmlmError(f"--pairs {pairs_out} is the --suite file itself: write the scores elsewhere")
    pairs, label = load_suite(suite)
    keys = group_fields(pairs, typed, label)
    run = load_run(run_dir, device=resolve_device(device))
    scores = score_pairs(run.model, run.tokenizer, pairs, run.config.model.direction)
    if pairs_out is not None:
        write_pair_scores(scores, pairs_out)
    rows = [a.to_dict() for a in accuracy_by(scores, keys)]
    overall = accuracy_of({"group": "all"}, scores).to_dict()
    if json_out:
        report.print_json(
            {"run": str(run_dir), "suite": label, "by": keys, "groups": rows, "overall": overall}
        )
        return
    report.agreement_result(f"Agreement on {Path(label).name}", rows, keys, overall)
    if pairs_out is not None:
        report.info(f"wrote {pairs_out} ({len(scores)} pairs)")


@command()
def plot(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(metavar="RUN_DIR", help="Run folders written by `lstmlm train`.", show_default=False),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="FILE", help="Figure to write: .png, .pdf or .svg.", show_default=False
        ),
    ],
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="NAME",
            help="Legend name of a run; repeat once per run folder, in order.",
            show_default="the folder names",
        ),
    ] = None,
) -> None:
    """Plot training curves: train/valid loss and perplexity, and tokens/s, against step."""
    from lstmlm.analysis.plots import training_curves

    if labels and len(labels) != len(run_dirs):
        raise LstmlmError(
            f"--label given {len(labels)} time(s) for {len(run_dirs)} run folder(s); give one per run or none"
        )
    path = training_curves(run_dirs, out, labels or None)
    report.info(f"wrote {path}")


@command()
def info(run_dir: RunDir, json_out: JsonOut = False) -> None:
    """Show a run's config, size, vocabulary, progress, best validation perplexity and, for a
    fine-tuned run, its parent (lineage.json)."""
    from lstmlm.runs.folder import describe

    summary = describe(run_dir)
    if json_out:
        report.print_json(summary.to_dict())
    else:
        report.run_info(summary)
