"""Evaluate a run on a split with the methods asked for: static perplexity, the continuous
cache and dynamic evaluation (``evaluate_run``: what ``lstmlm eval`` and the API call).

- The cache rides on the static pass (the run's eval batch size and BPTT length): one pass
  gives the static loss and the cache-mixed one. ``tuned_cache`` first picks θ and λ on the
  valid split (``cache.tune``).
- Dynamic evaluation reads the split as one stream (``dynamic.py``); with the cache too,
  the adapted model's windows also feed a cache (``with_cache``).
- A text scored ``WHOLE`` (a file or stdin given as ``--data``) is one stream after an
  ``<eos>`` for every method (``text_stream``); the cache is then tuned on the run's own
  valid split, never on the text it scores.

Every result is an ``Evaluation`` (perplexity, and bits per char/byte where the tokenizer
has them) plus the method's settings and timing. The run's model is never changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from lstmlm.data.tokens import EncodedSplit, batchify, check_length
from lstmlm.evaluation.continuous_cache import CacheScorer, score_with_cache, tune
from lstmlm.evaluation.dynamic import dynamic_windows
from lstmlm.evaluation.perplexity import (
    Evaluation,
    ScoredWindow,
    eval_streams,
    evaluate_split,
    evaluate_text,
    scored_windows,
    summarize,
    text_stream,
)
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.runs.load import WHOLE, Run, ScoredText, eval_split, read_text, run_split

SplitReader = Callable[[str], EncodedSplit]  # split name -> that split of the run's text, encoded


def evaluate_run(
    run: Run,
    split: str | None = "test",
    data: str | None = None,
    *,
    dynamic: DynamicSettings | None = None,
    cache: CacheSettings | None = None,
    tune_cache: bool = False,
    text: ScoredText | None = None,
) -> dict[str, Any]:
    """``split`` of the run's text (or of ``data``), or ``WHOLE``: all of the file or stdin
    ``data`` as one stream (None: whole for a file or stdin, else test; ``eval_split``),
    scored statically, plus a "cache" and/or a "dynamic" object when those methods are asked
    for (``tune_cache``: θ, λ from a valid split first: the run's own when the text is whole).

    ``text`` is that text already read (the CLI reads it first). The result says what was
    scored: ``split``, ``tokens``, and ``source``, ``data`` and ``corpus`` (``ScoredText``).
    """
    text = read_text(run, eval_split(data, split), data) if text is None else text

    def read_split(name: str) -> EncodedSplit:
        if name == text.split:
            return text.encoded
        own = name == "train" or text.split == WHOLE  # the statistics, or tuning beside a given text
        return run_split(run, name, None if own else data)

    encoded, name = text.encoded, text.split
    if cache is None:
        static = _static(run, encoded, name)
        payload: dict[str, Any] = static.to_dict()
    else:
        valid_loss = None
        if tune_cache:
            cache, valid_loss = tuned_cache(run, read_split, cache.window)
        static, cache_result = static_and_cache(run, encoded, name, cache)
        if valid_loss is not None:
            cache_result["tuned_on_valid_loss"] = valid_loss
        payload = {**static.to_dict(), "cache": cache_result}
    if dynamic is not None:
        payload["dynamic"] = dynamic_evaluation(run, encoded, name, static, dynamic, read_split, cache)
    return {**payload, **text.fields()}


def _static(run: Run, encoded: EncodedSplit, name: str) -> Evaluation:
    if name == WHOLE:
        eos, kind = run.tokenizer.eos_id, run.tokenizer.kind
        return evaluate_text(run.model, encoded, run.config.train.bptt, eos, kind, WHOLE)
    return evaluate_split(run.model, encoded, run.config, name, run.tokenizer.kind)


def static_and_cache(
    run: Run, encoded: EncodedSplit, name: str, settings: CacheSettings
) -> tuple[Evaluation, dict[str, Any]]:
    """The static evaluation and the cache's, from one pass over ``encoded``."""
    source = _streams(run, encoded, name)
    started = time.perf_counter()
    scores = score_with_cache(scored_windows(run.model, source, run.config.train.bptt), settings)
    seconds = time.perf_counter() - started
    static = _summary(run, encoded, name, scores.model, scores.tokens)
    cached = _summary(run, encoded, name, scores.cached, scores.tokens)
    return static, _with_settings(cached, static, settings, seconds=seconds)


def tuned_cache(run: Run, read_split: SplitReader, window: int) -> tuple[CacheSettings, float]:
    """θ and λ searched on the valid split; returns them and the valid loss they give."""
    source = eval_streams(read_split("valid"), run.config, "valid").to(_device(run))
    windows = [ScoredWindow(w.features.cpu(), w.token_loss.cpu(), w.targets.cpu())
               for w in scored_windows(run.model, source, run.config.train.bptt)]  # fmt: skip
    return tune(windows, window)


def dynamic_evaluation(
    run: Run,
    encoded: EncodedSplit,
    name: str,
    static: Evaluation,
    settings: DynamicSettings,
    read_split: SplitReader,
    cache: CacheSettings | None = None,
) -> dict[str, Any]:
    """Dynamic evaluation of ``encoded`` as one stream, and with ``cache`` mixed in too."""
    device = _device(run)
    source = _one_stream(run, encoded, name).to(device)
    train_source = None
    if settings.method == "rms":
        train = read_split("train")
        check_length(len(train.ids), settings.stats_batch, "train")
        train_source = batchify(train.ids, settings.stats_batch).to(device)
    started = time.perf_counter()
    scorer = CacheScorer(cache) if cache is not None else None
    loss, tokens = 0.0, 0
    for w in dynamic_windows(run.model, source, settings, train_source):
        loss += float(w.token_loss.sum(dtype=torch.float64))
        tokens += w.targets.numel()
        if scorer is not None:
            scorer.add(w)
    seconds = time.perf_counter() - started
    settings_out = {**asdict(settings), "lr": settings.step_size}
    result = _with_settings(_summary(run, encoded, name, loss, tokens), static, settings_out, seconds=seconds)
    result["tokens_per_s"] = tokens / seconds if seconds > 0 else 0.0
    if scorer is not None and cache is not None:
        with_cache = _summary(run, encoded, name, scorer.scores.cached, tokens)
        result["with_cache"] = _with_settings(with_cache, static, cache)
    return result


def _streams(run: Run, encoded: EncodedSplit, name: str) -> torch.Tensor:
    """What the static pass reads (T, B): the run's eval streams of a split, one stream of a whole text."""
    if name == WHOLE:
        return _one_stream(run, encoded, name).to(_device(run))
    return eval_streams(encoded, run.config, name).to(_device(run))


def _one_stream(run: Run, encoded: EncodedSplit, name: str) -> torch.Tensor:
    """``encoded`` as one stream (T, 1): a ``WHOLE`` text after its ``<eos>``, a split as it is."""
    if name == WHOLE:
        return text_stream(encoded, run.tokenizer.eos_id)
    check_length(len(encoded.ids), 1, name)
    return batchify(encoded.ids, 1)


def _summary(run: Run, encoded: EncodedSplit, name: str, total_loss: float, tokens: int) -> Evaluation:
    kind = run.tokenizer.kind
    loss = total_loss / max(tokens, 1)
    return summarize(name, loss, tokens, len(encoded.ids), encoded.num_chars, encoded.num_bytes, kind)


def _with_settings(
    result: Evaluation, static: Evaluation, settings: Any, *, seconds: float | None = None
) -> dict[str, Any]:
    """The method's evaluation, its change from static (relative perplexity), its settings."""
    out: dict[str, Any] = {k: v for k, v in result.to_dict().items() if k != "split" and v is not None}
    out["change"] = result.perplexity / static.perplexity - 1.0
    named = settings if isinstance(settings, dict) else asdict(settings)
    out["settings"] = {("lambda" if k == "lam" else k): v for k, v in named.items()}
    if seconds is not None:
        out["seconds"] = seconds
    return out


def _device(run: Run) -> Any:
    return next(run.model.parameters()).device
