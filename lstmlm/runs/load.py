"""Reading trained runs: load a run's model and tokenizer, and encode its splits.

``load_run`` gives eval, generate, agreement and inspect a ``Run`` (config, tokenizer,
model on a device); ``run_split`` gives them a split of the run's text (or of other
text) as token ids, through the shared token cache (``evaluation`` scores one).
Starting and resuming training is ``training/launch.py``; what a run folder holds
without loading it is ``folder.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lstmlm.config import RunConfig, replace
from lstmlm.data.corpus import Corpus, load_corpus
from lstmlm.data.sources import Progress, cache_dir
from lstmlm.data.tokenizer import Tokenizer
from lstmlm.data.tokens import EncodedSplit, encode_split
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs.provenance import check_unchanged

# (stage, done, total): "read" (bytes or rows), "tokenizer" and "encode <split>" (lines).
DataProgress = Callable[[str, int, int | None], None]


def stage_progress(on_data: DataProgress | None, stage: str) -> Progress | None:
    return None if on_data is None else lambda done, total: on_data(stage, done, total)


def encode(corpus: Corpus, split: str, tokenizer: Tokenizer, on_data: DataProgress | None) -> EncodedSplit:
    """``split`` of ``corpus`` as token ids, through the shared token cache."""
    on_progress = stage_progress(on_data, f"encode {split}")
    return encode_split(corpus.splits[split], tokenizer, cache_dir=cache_dir(), on_progress=on_progress)


def run_split(run: Run, split: str, data: str | None, *, on_data: DataProgress | None = None) -> EncodedSplit:
    """A split of the run's corpus (or of ``data``), encoded with the run's tokenizer."""
    data_config = run.config.data if data is None else replace(run.config, data={"data": data}).data
    corpus = load_corpus(data_config, on_progress=stage_progress(on_data, "read"))
    if split not in corpus.splits or not corpus.splits[split]:
        available = ", ".join(sorted(corpus.splits))
        raise LstmlmError(f"{corpus.name} has no {split!r} split (available: {available})")
    if data is None:
        check_unchanged(run.dir, corpus, (split,), "pass --data to score other text on purpose")
    return encode(corpus, split, run.tokenizer, on_data)


@dataclass
class Run:
    """A trained run, ready for eval, generate, agreement and inspect."""

    dir: Path
    config: RunConfig
    tokenizer: Tokenizer
    model: LanguageModel
    step: int
    weights_path: Path


def load_run(run_dir: Path | str, *, best: bool = True, device: str | torch.device = "cpu") -> Run:
    """Load config, tokenizer and weights (``best.safetensors`` if present and ``best``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LstmlmError(f"run folder not found: {run_dir}")
    config = run_folder.read_config(run_dir)
    tokenizer = Tokenizer.load(run_dir / run_folder.TOKENIZER)
    model = LanguageModel(config.model)
    candidates = [run_folder.BEST, run_folder.MODEL, run_folder.PREV_MODEL]
    if not best:
        candidates = candidates[1:] + candidates[:1]
    found = [run_dir / name for name in candidates if (run_dir / name).exists()]
    if not found:
        raise LstmlmError(f"{run_dir} has no weights yet ({run_folder.MODEL} or {run_folder.BEST})")
    tensors, step = ckpt.read_weights(found[0])
    ckpt.load_weights_into(model, tensors, found[0])
    model.to(device).eval()
    return Run(run_dir, config, tokenizer, model, step, found[0])
