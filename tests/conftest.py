"""Shared fixtures: a tiny learnable corpus, a private token cache, tiny configs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lstmlm.config import RunConfig
from lstmlm.runs import folder as run_folder

NOUNS = ["cat", "dog", "bird", "fish", "cow", "horse", "mouse", "frog"]
VERBS = ["sees", "likes", "chases", "finds", "hears"]


def tiny_lines(n: int, seed: int) -> list[str]:
    """A small, very regular language a 16-unit LSTM learns in a few dozen steps."""
    rng = random.Random(seed)
    return [f"the {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)} ." for _ in range(n)]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path_factory.getbasetemp() / "token-cache"
    monkeypatch.setenv("LSTMLM_CACHE", str(cache))
    return cache


def write_tiny_corpus(folder: Path) -> Path:
    """train/valid/test.txt of ``tiny_lines`` (300/40/40 lines) in a new ``folder``."""
    folder.mkdir()
    for name, n, seed in (("train", 300, 1), ("valid", 40, 2), ("test", 40, 3)):
        (folder / f"{name}.txt").write_text("\n".join(tiny_lines(n, seed)) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus")


TINY_FLAGS = [
    "--emsize",
    "16",
    "--nhid",
    "16",
    "--nlayers",
    "1",
    "--bptt",
    "8",
    "--batch-size",
    "4",
    "--max-steps",
    "60",
    "--log-every",
    "10",
    "--eval-every",
    "30",
    "--dropout",
    "0.0",
]


def tiny_config(data: Path, **train: object) -> RunConfig:
    raw = {
        "model": {"emsize": 16, "nhid": 16, "nlayers": 1, "dropout": 0.1},
        "data": {"data": str(data)},
        "train": {
            "bptt": 8,
            "batch_size": 4,
            "eval_batch_size": 4,
            "max_steps": 60,
            "log_every": 10,
            "eval_every": 20,
            "device": "cpu",
            **train,
        },
    }
    return RunConfig.from_dict(raw)


def make_untrained_run(out: Path, corpus: Path) -> Path:
    """A run folder as `train` writes it (config, tokenizer, step-0 weights), without training."""
    from lstmlm.config import replace
    from lstmlm.data.tokenizer import train_tokenizer
    from lstmlm.model.lm import LanguageModel
    from lstmlm.runs import checkpoint as ckpt

    tokenizer = train_tokenizer("word", (corpus / "train.txt").read_text().splitlines())
    config = replace(tiny_config(corpus), model={"ntoken": tokenizer.vocab_size})
    out.mkdir()
    tokenizer.save(out / run_folder.TOKENIZER)
    run_folder.write_config(out, config)
    (out / run_folder.MODEL).write_bytes(ckpt.weights_bytes(LanguageModel(config.model), 0))
    return out


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and OpenMP spinning on a busy machine is slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def seeded() -> None:
    torch.manual_seed(0)
