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

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, overload

import torch

from lstmlm.data.tokenizer import Tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.evaluation.methods import evaluate_run
from lstmlm.evaluation.perplexity import Evaluation, evaluate_loss, summarize
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.generate import StreamDecoder, prime, prompt_ids, sample
from lstmlm.model.lm import LanguageModel
from lstmlm.runs.load import Run, load_run
from lstmlm.scoring.surprisal import SentenceScore, line_stream, score_lines

Weights = Literal["best", "last"]


def load(run_dir: str | os.PathLike, weights: Weights = "best", device: str | torch.device = "cpu") -> Model:
    """A trained run's model, ready to use: ``best`` weights (on valid) or the ``last`` saved."""
    if weights not in ("best", "last"):
        raise LstmlmError(f"weights must be 'best' or 'last' (got {weights!r})")
    return Model(load_run(Path(run_dir), best=weights == "best", device=device))


class Model:
    """A loaded run: its torch module (``module``), ``tokenizer``, config and methods."""

    def __init__(self, run: Run) -> None:
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
        if max_tokens < 1 or temperature < 0 or top_k < 0 or not 0.0 < top_p <= 1.0:
            raise LstmlmError("generate needs max_tokens >= 1, temperature >= 0, top_k >= 0, 0 < top_p <= 1")
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
        lines = texts.splitlines() if isinstance(texts, str) else list(texts)
        scores = score_lines(self.module, self.tokenizer, lines, context=context)
        if not scores:
            raise LstmlmError("nothing to score: the text has no words")
        return scores

    @torch.no_grad()
    def next_token_probs(self, prefix: str = "", k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after ``prefix`` (read as the start of a line)."""
        logits, _ = prime(self.module, prompt_ids(self.tokenizer, prefix))
        probs = torch.softmax(logits.float(), dim=-1)
        top = torch.topk(probs, min(k, probs.numel()))
        pairs = zip(top.indices.tolist(), top.values.tolist(), strict=True)
        return [(self.tokenizer.decode([i]), p) for i, p in pairs]

    def perplexity(self, text_or_file: str | os.PathLike) -> Evaluation:
        """Perplexity of a text (a ``str``) or a file (a path), lines read as ``lstmlm eval``
        reads them, as one stream with the state carried, every token after the first
        ``<eos>`` scored. Equals ``score(lines, context=True)``: exp(-Σ logprob / tokens)."""
        if isinstance(text_or_file, os.PathLike):
            path = Path(text_or_file)
            if not path.is_file():
                raise LstmlmError(f"file not found: {path}")
            text = path.read_text(encoding="utf-8")
        else:
            text = text_or_file
        lines, _, ids = line_stream(self.tokenizer, text.splitlines())
        if len(ids) < 2:
            raise LstmlmError("nothing to score: the text has no words")
        source = torch.tensor(ids, dtype=torch.long).unsqueeze(1)
        loss = evaluate_loss(self.module, source, self.run.config.train.bptt)
        chars = sum(len(line) + 1 for line in lines)
        nbytes = sum(len(line.encode("utf-8")) + 1 for line in lines)
        return summarize("text", loss, len(ids) - 1, len(ids) - 1, chars, nbytes, self.tokenizer.kind)

    def evaluate(
        self,
        split: str = "test",
        data: str | os.PathLike | None = None,
        *,
        dynamic: DynamicSettings | None = None,
        cache: CacheSettings | None = None,
        tune_cache: bool = False,
    ) -> dict[str, Any]:
        """``lstmlm eval``: ``split`` of the run's text (or of ``data``, read like ``train --data``)
        scored with the state carried; ``dynamic`` and ``cache`` add those methods' results
        beside the static one. Returns the object ``lstmlm eval --json`` prints."""
        return evaluate_run(
            self.run,
            split,
            None if data is None else str(data),
            dynamic=dynamic,
            cache=cache,
            tune_cache=tune_cache,
        )
