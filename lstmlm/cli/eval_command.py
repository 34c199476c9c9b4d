"""``lstmlm eval``: static perplexity, and beside it dynamic evaluation and the continuous cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from lstmlm import report
from lstmlm.cli.app import command
from lstmlm.cli.options import Device, JsonOut, LastWeights, RunDir, choices
from lstmlm.errors import LstmlmError
from lstmlm.eval_settings import DEFAULT_DYNAMIC_LR, DYNAMIC_METHODS, CacheSettings, DynamicSettings

if TYPE_CHECKING:
    from lstmlm.data.tokens import EncodedSplit
    from lstmlm.runs import Run

T = TypeVar("T")
DYNAMIC, CACHE = "Dynamic evaluation", "Continuous cache"  # help panels
DYN, CAC = DynamicSettings(), CacheSettings()  # the defaults, declared there


def _option(panel: str, help: str, default: object = None, **kwargs: Any) -> Any:
    shown = kwargs.pop("show_default", None if default is None else str(default))
    return typer.Option(rich_help_panel=panel, help=help, show_default=shown, **kwargs)


@command("eval")
def eval_(
    run_dir: RunDir,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Score this text instead (file, folder or Hugging Face dataset), read like train's --data.",
            show_default="the run's own data",
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(metavar=choices(("train", "valid", "test")), help="Which split to score.")
    ] = "test",
    last: LastWeights = False,
    dynamic: Annotated[
        bool,
        typer.Option(
            "--dynamic",
            metavar="",
            rich_help_panel=DYNAMIC,
            help="Also dynamic evaluation (Krause et al. 2018): a copy of the weights adapts to the text "
            "as it is scored, segment by segment, one stream.",
        ),
    ] = False,
    dynamic_method: Annotated[
        str | None,
        _option(
            DYNAMIC,
            "rms: steps scaled by the training gradients' RMS, decaying to the trained weights; "
            "sgd: plain steps.",
            DYN.method,
            metavar=choices(DYNAMIC_METHODS),
        ),
    ] = None,
    dynamic_lr: Annotated[
        float | None,
        _option(
            DYNAMIC,
            "Step size eta (0: static).",
            show_default=", ".join(f"{k} {v:g}" for k, v in DEFAULT_DYNAMIC_LR.items()),
        ),
    ] = None,
    dynamic_decay: Annotated[
        float | None, _option(DYNAMIC, "Decay lambda toward the trained weights, per segment.", DYN.decay)
    ] = None,
    dynamic_segment: Annotated[int | None, _option(DYNAMIC, "Tokens per update.", DYN.segment)] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache",
            metavar="",
            rich_help_panel=CACHE,
            help="Also the continuous cache (Grave et al. 2017): recent hidden states vote for the words "
            "that followed them.",
        ),
    ] = False,
    cache_window: Annotated[int | None, _option(CACHE, "Hidden states kept per stream.", CAC.window)] = None,
    cache_theta: Annotated[float | None, _option(CACHE, "Sharpness theta of the match.", CAC.theta)] = None,
    cache_lambda: Annotated[
        float | None, _option(CACHE, "Weight lambda of the cache, in [0, 1).", CAC.lam)
    ] = None,
    cache_tune: Annotated[
        bool,
        typer.Option(
            "--cache-tune",
            metavar="",
            rich_help_panel=CACHE,
            help="Search theta and lambda on the valid split first (a small grid); implies --cache.",
        ),
    ] = False,
    json_out: JsonOut = False,
    device: Device = "auto",
) -> None:
    """Perplexity of a run's model over a whole split, state carried (bits/char or bits/byte too).

    --dynamic and --cache add their perplexities beside the static one (--json: an object each).
    """
    dynamic_settings = _settings(
        DynamicSettings, dynamic, "--dynamic",
        method=dynamic_method, lr=dynamic_lr, decay=dynamic_decay, segment=dynamic_segment,
    )  # fmt: skip
    cache_settings = _settings(
        CacheSettings, cache or cache_tune, "--cache",
        window=cache_window, theta=cache_theta, lam=cache_lambda,
    )  # fmt: skip
    from lstmlm.runs import load_run, run_split
    from lstmlm.runtime import resolve_device

    run = load_run(run_dir, best=not last, device=resolve_device(device))
    encoded = run_split(run, split, data)
    payload = _evaluate(run, encoded, split, data, dynamic_settings, cache_settings, cache_tune)
    payload.update(run=str(run_dir), weights=run.weights_path.name, step=run.step)
    if json_out:
        report.print_json(payload)
    else:
        report.console.print(report.evaluation_table(report.evaluation_rows(payload)))
        report.info(f"weights: {run.weights_path.name} (step {run.step})")


def _settings(cls: type[T], wanted: bool, switch: str, **given: Any) -> T | None:
    """``cls`` with the options given; None when the method is off (its options are then an error)."""
    given = {k: v for k, v in given.items() if v is not None}
    if not wanted:
        if given:
            names = ", ".join(f"{switch}-{'lambda' if k == 'lam' else k}" for k in given)
            raise LstmlmError(f"{names}: only with {switch}")
        return None
    return cls(**given)


def _evaluate(
    run: Run,
    encoded: EncodedSplit,
    split: str,
    data: str | None,
    dynamic: DynamicSettings | None,
    cache: CacheSettings | None,
    tune: bool,
) -> dict[str, Any]:
    """The static evaluation's fields, plus a "dynamic" and/or a "cache" object."""
    from lstmlm import eval_methods
    from lstmlm.runs import evaluate_split, run_split

    def read_split(name: str) -> EncodedSplit:
        if name == split:
            return encoded
        return run_split(run, name, None if name == "train" else data)

    if cache is None:
        static = evaluate_split(run.model, encoded, run.config, split, run.tokenizer.kind)
        payload: dict[str, Any] = static.to_dict()
    else:
        valid_loss = None
        if tune:
            cache, valid_loss = eval_methods.tuned_cache(run, read_split, cache.window)
        static, cache_result = eval_methods.static_and_cache(run, encoded, split, cache)
        if valid_loss is not None:
            cache_result["tuned_on_valid_loss"] = valid_loss
        payload = {**static.to_dict(), "cache": cache_result}
    if dynamic is not None:
        payload["dynamic"] = eval_methods.dynamic(run, encoded, split, static, dynamic, read_split, cache)
    return payload
