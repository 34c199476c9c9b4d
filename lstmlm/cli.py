"""The ``lstmlm`` command line: parse options, build the config, call the library, report.

Every user error becomes one red line on stderr and exit code 1 (``--debug`` or
``LSTMLM_DEBUG=1`` shows the traceback instead); an interrupted ``train`` exits 130
(SIGINT) or 143 (SIGTERM) after saving a checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.markup import escape
from typer.core import TyperGroup

from lstmlm import __version__, report
from lstmlm import checkpoint as ckpt
from lstmlm.config import (
    CELLS,
    DEVICES,
    LSTM_TYPE_CELLS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    TOKENIZERS,
    load_toml,
)
from lstmlm.errors import LstmlmError
from lstmlm.files import WriteError


class LstmlmGroup(TyperGroup):
    """Turns every user error, including usage errors, into one line and exit 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except LstmlmError as e:
            if _debug():
                raise
            report.error(str(e))
            sys.exit(1)
        except typer.TyperException as e:  # typer's (vendored click's) usage errors
            ctx = getattr(e, "ctx", None)
            if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
                report.console.print(ctx.get_help())
                sys.exit(0)
            if isinstance(e, typer.Abort):
                report.error("aborted")
                sys.exit(130)
            message = e.format_message() if hasattr(e, "format_message") else str(e)
            hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            report.error((message.strip().splitlines() or ["bad usage"])[0] + hint)
            sys.exit(1)
        except KeyboardInterrupt:
            report.error("interrupted")
            sys.exit(130)
        except OSError as e:  # a full disk, a read-only or forbidden folder, ...
            if _debug():
                raise
            report.error(os_error_line(e))
            sys.exit(1)
        except Exception as e:
            from lstmlm.train import Interrupted

            if isinstance(e, Interrupted):
                report.warn(str(e))
                sys.exit(e.exit_code)
            if _debug():
                raise
            report.error(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)")
            sys.exit(2)
        except BaseException as e:  # SignalExit: SIGINT/SIGTERM outside the training loop
            from lstmlm.train import SignalExit

            if not isinstance(e, SignalExit):
                raise
            report.error(str(e))
            sys.exit(e.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


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


def main() -> None:
    app()


def _version(value: bool) -> None:
    if value:
        report.info(f"lstmlm {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also LSTMLM_DEBUG=1).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    if debug:
        os.environ["LSTMLM_DEBUG"] = "1"


# ---------------------------------------------------------------- shared options


def choices(values: tuple[str, ...]) -> str:
    return "[" + "|".join(values) + "]"


RunDir = Annotated[Path, typer.Argument(help="A run folder written by `lstmlm train`.", show_default=False)]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]
Device = Annotated[str, typer.Option(metavar=choices(DEVICES), help="Where to run (auto: cuda, mps, cpu).")]
Data = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Text file, folder with train/valid/test.txt, or Hugging Face dataset (name or saved folder).",
        show_default="the embedded default corpus",
    ),
]


# ---------------------------------------------------------------- train


PEER_ERROR_WAIT_S = 30.0


def _rank_zero_reports(command: Callable[..., None]) -> Callable[..., None]:
    """Under torchrun every rank runs the command: rank 0 reports, the others stay quiet.

    A user error is raised alike on every rank (or handed on from rank 0). A rank > 0 that
    exited with it at once would have torchrun kill rank 0 before it says why, so it waits:
    rank 0 reports and exits, and torchrun stops this rank. An error rank 0 does not share
    shows here after ``PEER_ERROR_WAIT_S``; unexpected errors show at once on any rank.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from lstmlm import distributed
        from lstmlm.train import Interrupted

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


@app.command()
@_rank_zero_reports
def train(
    data: Data = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to write.", show_default="runs/<time>")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="TOML file with \\[model], \\[data], \\[train] tables; flags override it."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its latest checkpoint.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace the run in --out.")] = False,
    cell: Annotated[
        str | None, typer.Option(metavar=choices(CELLS), help="Recurrent cell.", show_default="lstm")
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option(metavar=choices(TOKENIZERS), help="Tokenizer.", show_default="word")
    ] = None,
    vocab_size: Annotated[
        int | None, typer.Option(help="Vocabulary cap (0 = none; bpe: 8192).", show_default="0")
    ] = None,
    min_freq: Annotated[
        int | None,
        typer.Option(help="Word/char tokenizer: minimum count to enter the vocabulary.", show_default="1"),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="Hugging Face dataset: the text column.", show_default="text")
    ] = None,
    dataset_config: Annotated[
        str | None, typer.Option(help="Hugging Face dataset: configuration name.")
    ] = None,
    train_split: Annotated[
        str | None, typer.Option(help="Hugging Face dataset: the training split.", show_default="train")
    ] = None,
    valid_split: Annotated[
        str | None,
        typer.Option(
            help="Hugging Face dataset: the validation split (absent: the last 5% of train).",
            show_default="validation",
        ),
    ] = None,
    test_split: Annotated[
        str | None, typer.Option(help="Hugging Face dataset: the test split.", show_default="test")
    ] = None,
    emsize: Annotated[int | None, typer.Option(help="Embedding size.", show_default="200")] = None,
    nhid: Annotated[int | None, typer.Option(help="Hidden units per layer.", show_default="200")] = None,
    nlayers: Annotated[int | None, typer.Option(help="Recurrent layers.", show_default="2")] = None,
    dropout: Annotated[
        float | None,
        typer.Option(help="Dropout on embeddings, between layers and on the output.", show_default="0.2"),
    ] = None,
    tied: Annotated[
        bool | None,
        typer.Option(
            "--tied/--no-tied",
            help="Share embedding and decoder weights (needs emsize == nhid).",
            show_default="tied",
        ),
    ] = None,
    forget_bias: Annotated[
        float | None, typer.Option(help="Initial forget-gate bias of LSTM-type cells.", show_default="1.0")
    ] = None,
    bptt: Annotated[int | None, typer.Option(help="Truncated-BPTT window length.", show_default="35")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Parallel streams (batch size).", show_default="20")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(metavar=choices(OPTIMIZERS), help="Optimizer.", show_default="sgd")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate.", show_default="sgd 20, adamw 0.002")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            metavar=choices(SCHEDULES),
            help="plateau: lr /= --anneal-factor when valid loss stops improving; cosine: decay to 0.",
            show_default="plateau",
        ),
    ] = None,
    anneal_factor: Annotated[
        float | None, typer.Option(help="Plateau schedule: divide lr by this.", show_default="4.0")
    ] = None,
    clip: Annotated[
        float | None, typer.Option(help="Gradient-norm clipping (0 = off).", show_default="0.25")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the train split.", show_default="10")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after this many steps (0 = no limit).", show_default="0")
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(help="Evaluate on valid every N steps (and each epoch).", show_default="each epoch"),
    ] = None,
    log_every: Annotated[int | None, typer.Option(help="Log every N steps.", show_default="50")] = None,
    save_every: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (and at each eval).", show_default="at evals")
    ] = None,
    save_every_minutes: Annotated[
        float | None, typer.Option(help="Checkpoint every M minutes.", show_default="off")
    ] = None,
    max_bad_steps: Annotated[
        int | None,
        typer.Option(help="Stop after this many non-finite steps in a row.", show_default="5"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (runs are deterministic on CPU).", show_default="1111")
    ] = None,
    device: Annotated[
        str | None, typer.Option(metavar=choices(DEVICES), help="Where to train.", show_default="auto")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            metavar=choices(PRECISIONS),
            help="Forward-pass precision (auto: bf16 on a GPU that supports it, else fp32; fp16: CUDA only).",
            show_default="auto",
        ),
    ] = None,
    compile_: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile", help="torch.compile the model for training.", show_default="off"
        ),
    ] = None,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard", help="Also log scalars to RUN/tensorboard (needs the tensorboard package)."
        ),
    ] = False,
) -> None:
    """Train a language model and write a run folder (config, tokenizer, weights, metrics).

    Several GPUs or nodes: start it with torchrun (--batch-size is the global batch), e.g.
    torchrun --nproc_per_node=4 -m lstmlm train ...
    """
    from lstmlm.evaluate import perplexity
    from lstmlm.runs import plan_run, start_training
    from lstmlm.tensorboard import TensorBoardLog

    flags: dict[str, dict[str, Any]] = {
        "model": dict(
            cell=cell,
            emsize=emsize,
            nhid=nhid,
            nlayers=nlayers,
            dropout=dropout,
            tied=tied,
            forget_bias=forget_bias,
        ),
        "data": dict(
            data=data,
            tokenizer=tokenizer,
            vocab_size=vocab_size,
            min_freq=min_freq,
            text_column=text_column,
            dataset_config=dataset_config,
            train_split=train_split,
            valid_split=valid_split,
            test_split=test_split,
        ),
        "train": dict(
            bptt=bptt,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            schedule=schedule,
            anneal_factor=anneal_factor,
            clip=clip,
            epochs=epochs,
            max_steps=max_steps,
            eval_every=eval_every,
            log_every=log_every,
            save_every=save_every,
            save_every_minutes=save_every_minutes,
            max_bad_steps=max_bad_steps,
            seed=seed,
            device=device,
            precision=precision,
            compile=compile_,
        ),
    }
    file_values = load_toml(config) if config else {}
    out = out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    board = TensorBoardLog(out / "tensorboard") if tensorboard else None  # fails now without the package
    run_config = plan_run(out, file_values, flags, resume=resume, overwrite=overwrite)
    if forget_bias is not None and run_config.model.cell not in LSTM_TYPE_CELLS:
        raise LstmlmError(
            f"--forget-bias applies to LSTM-type cells ({', '.join(LSTM_TYPE_CELLS)}), "
            f"not {run_config.model.cell}"
        )
    with report.TrainDisplay() as display, board or contextlib.nullcontext():
        on_event = board.wrap(display) if board else display
        outcome = start_training(
            out,
            run_config,
            resume=resume,
            overwrite=overwrite,
            on_event=on_event,
            warn=report.warn,
            on_data=display.data,
        )
    state = outcome.state
    rows = [
        ("run", str(out)),
        ("data", outcome.corpus_name),
        (
            "model",
            f"{run_config.model.cell} {run_config.model.nlayers}x{run_config.model.nhid}, "
            f"vocab {outcome.config.model.ntoken:,}",
        ),
        ("steps", f"{state.step:,} ({state.tokens:,} tokens, {state.elapsed:.0f} s)"),
        ("best valid ppl", report.fmt(perplexity(state.best_valid_loss))),
    ]
    if outcome.test is not None:
        rows.append(("test ppl (best weights)", report.fmt(outcome.test.perplexity)))
        for key in ("bits_per_char", "bits_per_byte"):
            value = getattr(outcome.test, key)
            if value is not None:
                rows.append((f"test {key.replace('_', ' ')}", report.fmt(value, 4)))
    report.train_summary(rows)
    report.info(f"run folder: [bold]{escape(str(out))}[/]")  # only for a folder that is kept


# ---------------------------------------------------------------- eval


@app.command("eval")
def eval_(
    run_dir: RunDir,
    data: Data = None,
    split: Annotated[
        str, typer.Option(metavar=choices(("train", "valid", "test")), help="Which split to score.")
    ] = "test",
    last: Annotated[
        bool, typer.Option("--last", help="Use the latest weights instead of the best on valid.")
    ] = False,
    json_out: JsonOut = False,
    device: Device = "auto",
) -> None:
    """Perplexity of a run's model over a whole split, state carried (bits/char or bits/byte too)."""
    from lstmlm.runs import evaluate_split, run_split
    from lstmlm.train import resolve_device

    run = ckpt.load_run(run_dir, best=not last, device=resolve_device(device))
    encoded = run_split(run, split, data)
    result = evaluate_split(run.model, encoded, run.config, split, run.tokenizer.kind)
    payload = {**result.to_dict(), "run": str(run_dir), "weights": run.weights_path.name, "step": run.step}
    if json_out:
        report.print_json(payload)
    else:
        report.console.print(report.evaluation_table([payload]))
        report.info(f"weights: {run.weights_path.name} (step {run.step})")


# ---------------------------------------------------------------- generate


@app.command()
def generate(
    run_dir: RunDir,
    prompt: Annotated[str, typer.Option(help="Text to continue.")] = "",
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens to sample per sample.")] = 50,
    temperature: Annotated[float, typer.Option(min=0.0, help="Softmax temperature; 0 = greedy.")] = 1.0,
    top_k: Annotated[int, typer.Option(min=0, help="Sample from the k most likely tokens (0 = all).")] = 0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling threshold.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed: the same seed gives the same text.")] = 0,
    num_samples: Annotated[int, typer.Option(min=1, help="How many samples.")] = 1,
    agreement: Annotated[
        bool,
        typer.Option(
            "--agreement",
            help="Show the seed's agreement examples: P(correct form) vs P(wrong form) after "
            "prompts of growing distance and attractors, with a sampled continuation.",
        ),
    ] = False,
    device: Device = "auto",
) -> None:
    """Sample text from a run's model, streaming tokens as they come."""
    from lstmlm.generate import StreamDecoder, prompt_ids, sample
    from lstmlm.train import resolve_device

    if top_p <= 0.0:
        raise LstmlmError(f"--top-p must be in (0, 1] (got {top_p})")
    run = ckpt.load_run(run_dir, device=resolve_device(device))
    if agreement:
        from lstmlm.agreement import demo_rows, missing_demo_words
        from lstmlm.data.agreement import demo_prompts

        prompts = demo_prompts()
        missing = missing_demo_words(run.tokenizer, prompts)
        if missing:
            shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
            raise LstmlmError(
                f"--agreement: {run_dir}'s vocabulary lacks words of the demo prompts: {shown} "
                "(train on the default corpus to use it)"
            )
        rows = demo_rows(run.model, run.tokenizer, prompts, seed=seed, temperature=temperature)
        report.agreement_demo(rows)
        return
    ids = prompt_ids(run.tokenizer, prompt)
    _warn_unknown_words(run, prompt)
    generator = torch.Generator().manual_seed(seed)
    for index in range(num_samples):
        if num_samples > 1:
            report.console.rule(f"sample {index + 1}")
        report.console.print(f"[bold]{prompt}[/]", end="")
        decoder = StreamDecoder(run.tokenizer, ids)
        for token in sample(
            run.model,
            ids,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            generator=generator,
        ):
            report.console.print(decoder.push(token), end="", markup=False)
            report.console.file.flush()
        report.console.print()


# ---------------------------------------------------------------- agreement


@app.command("agreement")
def agreement_(
    run_dir: RunDir,
    suite: Annotated[
        str, typer.Option(help="'default' (the grammar's suite) or a BLiMP-style JSONL file.")
    ] = "default",
    by: Annotated[str, typer.Option(help="Comma-separated fields to group by.")] = "construction,attractors",
    json_out: JsonOut = False,
    device: Device = "auto",
) -> None:
    """Score minimal pairs: accuracy by construction and attractors (sentence and prefix rules)."""
    from lstmlm.agreement import accuracy_by, check_fields, read_suite, resolve_suite, score_pairs, summarize
    from lstmlm.train import resolve_device

    keys = [k.strip() for k in by.split(",") if k.strip()]
    if not keys:
        raise LstmlmError("--by needs at least one field name")
    path = resolve_suite(suite)
    pairs = read_suite(path)
    check_fields(pairs, keys, path)
    run = ckpt.load_run(run_dir, device=resolve_device(device))
    scores = score_pairs(run.model, run.tokenizer, pairs)
    rows = [a.to_dict() for a in accuracy_by(scores, keys)]
    overall = summarize({"group": "all"}, scores).to_dict()
    if json_out:
        report.print_json(
            {"run": str(run_dir), "suite": str(path), "by": keys, "groups": rows, "overall": overall}
        )
        return
    report.console.print(report.agreement_table(f"Agreement on {path.name}", rows, keys))
    report.info(
        f"overall: sentence {100 * overall['sentence_accuracy']:.1f}% of {overall['count']} pairs"
        + (
            f", prefix {100 * overall['prefix_accuracy']:.1f}%"
            if overall["prefix_accuracy"] is not None
            else ""
        )
    )
    if overall["unk_tokens"]:
        report.warn(f"{overall['unk_tokens']} tokens of the suite are <unk> for this run's tokenizer")


# ---------------------------------------------------------------- plot


@app.command()
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
    from lstmlm.plots import training_curves

    if labels and len(labels) != len(run_dirs):
        raise LstmlmError(
            f"--label given {len(labels)} time(s) for {len(run_dirs)} run folder(s); give one per run or none"
        )
    path = training_curves(run_dirs, out, labels or None)
    report.info(f"wrote {path}")


def _warn_unknown_words(run: ckpt.Run, text: str) -> None:
    """Word tokenizers read words outside the vocabulary as <unk>: say which."""
    if run.tokenizer.kind != "word":
        return
    unknown = [w for w in text.split() if run.tokenizer.id(w) is None]
    if unknown:
        report.warn(f"not in the vocabulary, read as <unk>: {', '.join(unknown)}")


# ---------------------------------------------------------------- inspect


@app.command("inspect")
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
        ),
    ] = False,
    suite: Annotated[
        str, typer.Option(help="--find-units: 'default' or a minimal-pair JSONL file.")
    ] = "default",
    agreement: Annotated[
        str, typer.Option(metavar="[number|gender|both]", help="--find-units: which feature.")
    ] = "both",
    ablate: Annotated[
        str, typer.Option(help="--find-units: comma-separated k: zero the top-k units vs k random ones.")
    ] = "1,3,10",
    device: Device = "auto",
) -> None:
    """Look inside: per-token gates and cell state, or the units that carry number and gender."""
    from lstmlm.train import resolve_device

    if not find_units and not text.strip():
        raise LstmlmError("give --text TEXT to trace a sentence, or --find-units")
    if plot is not None and plot.suffix.lower() != ".png":
        raise LstmlmError(f"--plot must name a .png file (got {plot})")
    if agreement not in ("number", "gender", "both"):
        raise LstmlmError(f"--agreement must be one of number, gender, both (got {agreement!r})")
    ks = _positive_ints(ablate, "--ablate")
    run = ckpt.load_run(run_dir, device=resolve_device(device))
    nlayers = run.config.model.nlayers
    if layer is not None and not 0 <= layer < nlayers:
        raise LstmlmError(f"--layer must be in 0..{nlayers - 1} for this {nlayers}-layer model (got {layer})")
    layer = nlayers - 1 if layer is None else layer
    if find_units:
        kinds = ["number", "gender"] if agreement == "both" else [agreement]
        _find_units(run, suite, kinds, top, ks, plot, json_out)
    else:
        _trace(run, text, layer, top, plot, json_out, npz)


def _positive_ints(value: str, option: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise LstmlmError(f"{option} takes comma-separated whole numbers (got {value!r})") from None
    if not numbers or min(numbers) < 1:
        raise LstmlmError(f"{option} takes comma-separated numbers >= 1 (got {value!r})")
    return numbers


def _trace(
    run: ckpt.Run, text: str, layer: int, top: int, plot: Path | None, json_out: bool, npz: Path | None
) -> None:
    import numpy as np

    from lstmlm.inspect import trace_text

    _warn_unknown_words(run, text)
    trace = trace_text(run.model, run.tokenizer, text)
    arrays = {f"layer{i}_{name}": values for i, layer_values in enumerate(trace.layers)
              for name, values in layer_values.items()}  # fmt: skip
    if npz is not None:
        if not npz.parent.is_dir():
            raise LstmlmError(f"--npz: folder not found: {npz.parent}")
        np.savez(npz, tokens=np.array(trace.tokens), **arrays)
    if plot is not None:
        from lstmlm.plots import trace_heatmaps

        trace_heatmaps(trace, layer, plot)
    if json_out:
        report.print_json({"tokens": trace.tokens, "layers": [
            {name: values.tolist() for name, values in layer_values.items()} for layer_values in trace.layers
        ]})  # fmt: skip
        return
    report.console.print(report.trace_table(trace, layer, top))
    for path in (npz, plot):
        if path is not None:
            report.info(f"wrote {path}")


def _find_units(
    run: ckpt.Run, suite: str, kinds: list[str], top: int, ks: list[int], plot: Path | None, json_out: bool
) -> None:
    from lstmlm.agreement import read_suite, resolve_suite
    from lstmlm.inspect import ablate, agreement_accuracy, carried_states, example_pairs, rank_units

    pairs = read_suite(resolve_suite(suite))
    nunits = run.config.model.nlayers * run.config.model.nhid
    if max(ks) > nunits:
        raise LstmlmError(f"--ablate: k = {max(ks)} exceeds the model's {nunits} units")
    results, figures = {}, []
    for kind in kinds:
        carried = carried_states(run.model, run.tokenizer, pairs, kind)
        ranking = rank_units(carried)
        tested = carried.pairs
        baseline = agreement_accuracy(run.model, run.tokenizer, tested)
        ablations = ablate(run.model, run.tokenizer, tested, ranking, ks)
        results[kind] = {
            "classes": carried.classes,
            "items": len(carried.labels),
            "units": [u.__dict__ for u in ranking[: max(top, 10)]],
            "accuracy": baseline,
            "ablation": [a.__dict__ for a in ablations],
        }
        figures.append((kind, carried.classes, ranking[:top], example_pairs(carried)))
        if not json_out:
            report.console.print(
                report.units_table(kind, carried.classes, ranking[: max(top, 10)], len(tested))
            )
            report.console.print(report.ablation_table(kind, baseline, ablations))
    if plot is not None:
        from lstmlm.plots import unit_trajectories

        unit_trajectories(run.model, run.tokenizer, figures, plot)
    if json_out:
        report.print_json(results)
    elif plot is not None:
        report.info(f"wrote {plot}")


# ---------------------------------------------------------------- info


@app.command()
def info(run_dir: RunDir, json_out: JsonOut = False) -> None:
    """Show a run's config, size, vocabulary, progress and best validation perplexity."""
    from lstmlm.runs import best_valid_ppl

    run = ckpt.load_run(run_dir, best=False)
    latest = ckpt.latest_checkpoint(run_dir)
    payload = {
        "run": str(run_dir),
        "parameters": run.model.num_parameters(),
        "vocab_size": run.tokenizer.vocab_size,
        "tokenizer": run.tokenizer.kind,
        "step": latest.step if latest else run.step,
        "best_valid_ppl": best_valid_ppl(run_dir),
        "config": run.config.to_dict(),
        "files": {p.name: p.stat().st_size for p in sorted(run_dir.iterdir()) if p.is_file()},
    }
    if json_out:
        report.print_json(payload)
        return
    m = run.config.model
    report.console.print(
        report.key_value_table(
            f"Run {run_dir}",
            [
                (
                    "model",
                    f"{m.cell}, {m.nlayers} layer(s) x {m.nhid}, emsize {m.emsize}, "
                    f"dropout {m.dropout}, {'tied' if m.tied else 'untied'}",
                ),
                ("parameters", f"{payload['parameters']:,}"),
                ("tokenizer", f"{run.tokenizer.kind}, vocabulary {run.tokenizer.vocab_size:,}"),
                ("data", run.config.data.data or "default agreement corpus"),
                ("steps", f"{payload['step']:,}"),
                ("best valid ppl", report.fmt(payload["best_valid_ppl"])),
                (
                    "files",
                    ", ".join(
                        f"{k} ({v / 1e6:.2f} MB)"
                        for k, v in payload["files"].items()
                        if not k.startswith(".")
                    ),
                ),
            ],
        )
    )
    report.console.print(
        report.key_value_table(
            "Config",
            [
                (f"{section}.{key}", repr(value))
                for section, values in payload["config"].items()
                for key, value in values.items()
            ],
        )
    )
