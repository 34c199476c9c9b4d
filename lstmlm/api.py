"""lstmlm from Python: load a trained run, then sample, score and measure it.

    import lstmlm

    lm = lstmlm.load("runs/demo")
    lm.generate("The keys to the cabinet", max_tokens=20, seed=1)     # a string
    for piece in lm.generate("Mary smiled .", stream=True): ...        # text as it comes
    lm.score(["The keys are old .", "The keys is old ."])             # SentenceScore each
    lm.next_token_probs("The keys to the cabinet", k=3)               # [(token, p), ...]
    lm.perplexity(Path("held_out.txt")).perplexity
    lm.evaluate("test", cache=lstmlm.CacheSettings())                 # lstmlm eval's --json object

Everything here reads the run through the same code as the commands (``runs.load_run``,
``generate.sample``, ``surprisal.score_lines``, ``evaluate``), so a result from Python
equals the command's.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, overload

import torch

from lstmlm.data.direction import oriented_split, require_forward
from lstmlm.data.sources import ListSource
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.embeddings import Embedding, check_texts, embed
from lstmlm.errors import BadArgument, BadText, LstmlmError, RunError
from lstmlm.evaluation.methods import evaluate_run
from lstmlm.evaluation.perplexity import Evaluation, evaluate_text
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.generate import StreamDecoder, prime, prompt_ids, sample
from lstmlm.model.lm import LanguageModel
from lstmlm.runs.load import Run, encode_text, load_run, whole_text
from lstmlm.runtime.device import check_device
from lstmlm.scoring.surprisal import SentenceScore, score_lines

Weights = Literal["best", "last"]


def load(run_dir: str | os.PathLike, weights: Weights = "best", device: str | torch.device = "cpu") -> Model:
    """A trained run's model, ready to use: ``best`` weights (on valid) or the ``last`` saved,
    on ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``auto`` or a ``torch.device``).

    Raises ``RunNotFound`` (no folder there), ``RunError`` (a folder lstmlm cannot read as a
    run) or ``BadArgument`` (a ``weights`` or ``device`` that is not one, or not here)."""
    path = _path("run_dir", run_dir)
    if not isinstance(weights, str) or weights not in ("best", "last"):
        raise BadArgument(f"weights must be 'best' or 'last' (got {_shown(weights)})")
    where = check_device(device)
    try:
        run = load_run(path, best=weights == "best", device=where)
    except LstmlmError as error:  # the folder's files: config, tokenizer, weights
        if type(error) is not LstmlmError:
            raise
        raise RunError(str(error)) from None
    return Model(run)


class Model:
    """A loaded run: its torch module (``module``), ``tokenizer``, config and methods."""

    def __init__(self, run: Run) -> None:
        if not isinstance(run, Run):
            raise BadArgument(
                f"lstmlm.Model wraps a loaded run: use lstmlm.load(RUN_DIR) (got {_shown(run)})"
            )
        self.run = run

    @property
    def module(self) -> LanguageModel:
        """The ``torch.nn.Module`` (in eval mode): ``module(tokens (T, B), state) -> logits, state``."""
        return self.run.model

    @property
    def tokenizer(self) -> Tokenizer:
        return self.run.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.run.model.parameters()).device

    def __repr__(self) -> str:
        m = self.run.config.model
        return f"lstmlm.Model({str(self.run.dir)!r}, {m.cell} {m.nlayers}x{m.nhid}, step {self.run.step})"

    @overload
    def generate(
        self, prompt: str = "", max_tokens: int = 50, temperature: float = 1.0, top_k: int = 0,
        top_p: float = 1.0, seed: int = 0, *, stream: Literal[False] = False,
    ) -> str: ...  # fmt: skip

    @overload
    def generate(
        self, prompt: str = "", max_tokens: int = 50, temperature: float = 1.0, top_k: int = 0,
        top_p: float = 1.0, seed: int = 0, *, stream: Literal[True],
    ) -> Iterator[str]: ...  # fmt: skip

    def generate(
        self, prompt: str = "", max_tokens: int = 50, temperature: float = 1.0, top_k: int = 0,
        top_p: float = 1.0, seed: int = 0, *, stream: bool = False,
    ) -> str | Iterator[str]:  # fmt: skip
        """Continue ``prompt`` by ``max_tokens`` sampled tokens (temperature 0: greedy; top-k and
        top-p (nucleus) filters as ``lstmlm generate``). The same seed gives the same text.
        ``stream=True`` yields the new text piece by piece; otherwise the continuation is
        returned whole (without the prompt)."""
        prompt = _text("prompt", prompt)
        max_tokens, top_k = _integer("max_tokens", max_tokens, 1), _integer("top_k", top_k, 0)
        temperature = _real("temperature", temperature, "a finite number >= 0", lambda t: t >= 0)
        top_p = _real("top_p", top_p, "in (0, 1]", lambda p: 0 < p <= 1)
        seed = _integer("seed", seed, 0, SEED_MAX, bounds="in 0..2**64-1")
        _flag("stream", stream)
        require_forward(self.run.config.model.direction, "generate")  # now, not when a stream is read
        pieces = self._pieces(prompt, max_tokens, temperature, top_k, top_p, seed)
        return pieces if stream else "".join(pieces)

    def _pieces(
        self, prompt: str, max_tokens: int, temperature: float, top_k: int, top_p: float, seed: int
    ) -> Iterator[str]:
        ids = prompt_ids(self.tokenizer, prompt)
        decoder = StreamDecoder(self.tokenizer, ids)
        generator = torch.Generator().manual_seed(seed)
        tokens = sample(
            self.module, ids, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
            generator=generator,
        )  # fmt: skip
        for token in tokens:
            yield decoder.push(token)

    def score(self, texts: str | Iterable[str], *, context: bool = False) -> list[SentenceScore]:
        """log P of each line (a string's lines, or each string of a list), per token and per
        word, with surprisal in bits. ``context=True`` carries the state from line to line."""
        texts = _texts(texts)
        _flag("context", context)
        lines = texts.splitlines() if isinstance(texts, str) else list(texts)
        scores = score_lines(self.module, self.tokenizer, lines, context=context)
        if not scores:
            raise LstmlmError("nothing to score: the text has no words")
        return scores

    @torch.no_grad()
    def next_token_probs(self, prefix: str = "", k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``prefix`` (read as the start of a line)."""
        prefix, k = _text("prefix", prefix), _integer("k", k, 1)
        logits, _ = prime(self.module, prompt_ids(self.tokenizer, prefix))
        probs = torch.softmax(logits.float(), dim=-1)
        top = torch.topk(probs, min(k, probs.numel()))
        pairs = zip(top.indices.tolist(), top.values.tolist(), strict=True)
        return [(self.tokenizer.decode([i]), p) for i, p in pairs]

    def embed(self, texts: str | Iterable[str], layer: int = -1) -> list[Embedding]:
        """Per text (one line each): its tokens, ``layer``'s hidden states (T, H) and a vector per
        word (forward: after its last token; backward runs: before its first), ``lstmlm.embeddings``."""
        return embed(self.module, self.tokenizer, check_texts(texts), layer)

    def perplexity(self, text_or_file: str | os.PathLike) -> Evaluation:
        """Perplexity of a text (a ``str``) or a file (a path), lines read as ``lstmlm eval``
        reads them, as one stream with the state carried, every token after the first
        ``<eos>`` scored. Equals ``score(lines, context=True)``: exp(-Σ logprob / tokens)."""
        _text_or_file(text_or_file)
        if isinstance(text_or_file, os.PathLike):  # as `lstmlm eval --data FILE` reads it
            text, _ = whole_text(os.fspath(text_or_file), self.tokenizer)
        else:
            text = encode_text(ListSource(text_or_file.splitlines()), self.tokenizer)
        if not len(text.ids):
            raise LstmlmError("nothing to score: the text has no words")
        tokenizer, bptt = self.tokenizer, self.run.config.train.bptt
        text = oriented_split(text, self.run.config.model.direction, tokenizer.eos_id)  # as eval reads it
        return evaluate_text(self.module, text, bptt, tokenizer.eos_id, tokenizer.kind, "text")

    def evaluate(
        self,
        split: str | None = None,
        data: str | os.PathLike | None = None,
        *,
        dynamic: DynamicSettings | None = None,
        cache: CacheSettings | None = None,
        tune_cache: bool = False,
    ) -> dict[str, Any]:
        """``lstmlm eval``: ``split`` of the run's text (or of ``data``, read like ``train --data``)
        scored with the state carried; ``split=None`` is eval's default (the run's test split;
        all of a file given as ``data``). ``dynamic`` and ``cache`` add those methods' results
        beside the static one. Returns the object ``lstmlm eval --json`` prints."""
        if split is not None:
            _text("split", split)
        if data is not None:
            _path("data", data)
        _settings("dynamic", dynamic, DynamicSettings)
        _settings("cache", cache, CacheSettings)
        _flag("tune_cache", tune_cache)
        return evaluate_run(
            self.run,
            split,
            None if data is None else str(data),
            dynamic=dynamic,
            cache=cache,
            tune_cache=tune_cache,
        )


# ---------------------------------------------------------------- arguments: BadArgument, BadText

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed takes 0 .. 2**64-1


def _shown(value: object) -> str:
    """``value`` in a one-line message: its repr when short, else its type."""
    text = repr(value)
    return text if len(text) <= 40 and "\n" not in text else f"a {type(value).__name__}"


def _integer(name: str, value: object, low: int, high: int | None = None, *, bounds: str = "") -> int:
    """``value`` as an int in ``low..high`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadArgument(f"{name} must be an integer (got {_shown(value)})")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise BadArgument(f"{name} must be {bounds or f'>= {low}'} (got {_shown(number)})")
    return number


def _real(name: str, value: object, bounds: str, ok: Callable[[float], bool]) -> float:
    """``value`` as a finite float for which ``ok`` holds (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadArgument(f"{name} must be a number (got {_shown(value)})")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        number = math.inf
    if not (math.isfinite(number) and ok(number)):
        raise BadArgument(f"{name} must be {bounds} (got {_shown(value)})")
    return number


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise BadArgument(f"{name} must be True or False (got {_shown(value)})")


def _text(name: str, value: object) -> str:
    """``value``, a ``str`` that UTF-8 can encode (no lone surrogates)."""
    if not isinstance(value, str):
        raise BadArgument(f"{name} must be a str (got {_shown(value)})")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise BadText(f"{name} is not valid Unicode text ({e.reason} at character {e.start})") from None
    return value


def _texts(texts: object) -> str | list[str]:
    """``score``'s ``texts``: a str, or a non-empty iterable of str (as a list)."""
    if isinstance(texts, str):
        return _text("texts", texts)
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, Iterable):
        raise BadArgument(f"texts must be a str or a list of str (got {_shown(texts)})")
    lines = list(texts)
    if not lines:
        raise BadArgument("texts is empty: give at least one line to score")
    for index, line in enumerate(lines):
        _text(f"texts[{index}]", line)
    return lines


def _path(name: str, value: object) -> Path:
    raw = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(raw, str):
        raise BadArgument(f"{name} must be a str or a path (got {_shown(value)})")
    return Path(raw)


def _text_or_file(value: object) -> None:
    """``perplexity``'s argument: a str of valid text, or the path of a UTF-8 file."""
    if isinstance(value, str):
        _text("text", value)
    elif isinstance(value, os.PathLike):
        _file(_path("text_or_file", value))
    else:
        raise BadArgument(f"text_or_file must be a str (text) or a path (a file) (got {_shown(value)})")


def _file(path: Path) -> None:
    """``BadText`` unless ``path`` is a file; its UTF-8 is checked as it is read (``decode_utf8``)."""
    if not path.is_file():
        raise BadText(f"file not found: {path}" if not path.exists() else f"not a file: {path}")


def _settings(name: str, value: object, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise BadArgument(f"{name} must be a lstmlm.{kind.__name__} or None (got {_shown(value)})")
