"""lstmlm: train, evaluate, sample and understand recurrent word-level language models.

From Python (README, "From Python")::

    import lstmlm
    lm = lstmlm.load("runs/demo")
    print(lm.generate("The keys to the cabinet", max_tokens=20, seed=1))
    mine = lstmlm.train(data="corpus.txt", out="runs/mine", epochs=3)  # the CLI's options

The names below are imported on first use, so ``import lstmlm`` loads neither torch nor
the training loop (the command line starts fast because of it). Every error is an
``LstmlmError`` (one line); ``RunError``/``RunNotFound``, ``BadArgument`` and ``BadText``
name its kinds (``lstmlm/errors.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lstmlm.api import Model, load
    from lstmlm.data.tokenizer import Tokenizer
    from lstmlm.embeddings import Embedder, Embedding
    from lstmlm.errors import BadArgument, BadText, LstmlmError, RunError, RunNotFound
    from lstmlm.evaluation.perplexity import Evaluation
    from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
    from lstmlm.scoring.surprisal import SentenceScore, TokenScore, WordScore
    from lstmlm.train_from_python import LstmlmNotice, train

_PUBLIC = {
    "load": "lstmlm.api",
    "train": "lstmlm.train_from_python",
    "LstmlmNotice": "lstmlm.train_from_python",
    "Model": "lstmlm.api",
    "SentenceScore": "lstmlm.scoring.surprisal",
    "TokenScore": "lstmlm.scoring.surprisal",
    "WordScore": "lstmlm.scoring.surprisal",
    "Evaluation": "lstmlm.evaluation.perplexity",
    "CacheSettings": "lstmlm.evaluation.settings",
    "DynamicSettings": "lstmlm.evaluation.settings",
    "Tokenizer": "lstmlm.data.tokenizer",
    "Embedder": "lstmlm.embeddings",
    "Embedding": "lstmlm.embeddings",
    "LstmlmError": "lstmlm.errors",
    "RunError": "lstmlm.errors",
    "RunNotFound": "lstmlm.errors",
    "BadArgument": "lstmlm.errors",
    "BadText": "lstmlm.errors",
}
__all__ = [
    "BadArgument",
    "BadText",
    "CacheSettings",
    "DynamicSettings",
    "Embedder",
    "Embedding",
    "Evaluation",
    "LstmlmError",
    "LstmlmNotice",
    "Model",
    "RunError",
    "RunNotFound",
    "SentenceScore",
    "TokenScore",
    "Tokenizer",
    "WordScore",
    "__version__",
    "load",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'lstmlm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
