"""Shared fixtures: a tiny learnable corpus, a private token cache, tiny configs, the CLI, and
one tiny trained run that every test which only reads a run shares."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner, Result

from lstmlm.cli import app as lstmlm_app
from lstmlm.config import RunConfig
from lstmlm.runs import folder as run_folder
from lstmlm.runs.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]  # the repository

NOUNS = ["cat", "dog", "bird", "fish", "cow", "horse", "mouse", "frog"]
VERBS = ["sees", "likes", "chases", "finds", "hears"]
SENTENCES = ["the cat sees the dog .", "the dog chases the bird .", "the frog hears the cow ."]


def tiny_lines(n: int, seed: int) -> list[str]:
    """A small, very regular language a 16-unit LSTM learns in a few dozen steps."""
    rng = random.Random(seed)
    return [f"the {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)} ." for _ in range(n)]


def cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's token cache: never the user's."""
    return tmp_path_factory.getbasetemp() / "token-cache"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = cache_folder(tmp_path_factory)
    monkeypatch.setenv("LSTMLM_CACHE", str(cache))
    return cache


def write_tiny_corpus(folder: Path) -> Path:
    """train/valid/test.txt of ``tiny_lines`` (300/40/40 lines) in a new ``folder``."""
    folder.mkdir()
    for name, n, seed in (("train", 300, 1), ("valid", 40, 2), ("test", 40, 3)):
        (folder / f"{name}.txt").write_text("\n".join(tiny_lines(n, seed)) + "\n", encoding="utf-8")
    return folder


def write_tiny_file(path: Path, lines: int, seed: int) -> Path:
    """One text file of ``lines`` lines of ``tiny_lines``, for ``--data FILE``."""
    path.write_text("\n".join(tiny_lines(lines, seed)) + "\n", encoding="utf-8")
    return path


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


def events(run: Path, kind: str) -> list[dict]:
    """The records of one kind (``"log"``, ``"eval"``, ...) in a run's ``metrics.jsonl``."""
    return [r for r in read_metrics(run / run_folder.METRICS) if r["event"] == kind]


# ---------------------------------------------------------------- the command line

runner = CliRunner()


def invoke(
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    catch_exceptions: bool = False,
    app: typer.Typer = lstmlm_app,
) -> Result:
    """``lstmlm ARGS`` in this process (Typer's CliRunner): ``stdout`` and ``stderr`` apart,
    ``output`` both. An exception the app does not turn into an exit code fails the test."""
    return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=catch_exceptions)


def run_lstmlm(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``python -m lstmlm ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "lstmlm", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def one_line_error(result: Result, *words: str) -> None:
    """Exit 1, no traceback, and one ``error:`` line on stderr that holds each of ``words``."""
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# ---------------------------------------------------------------- trained runs


def train_tiny_run(out: Path, corpus: Path, *flags: str) -> Path:
    """``lstmlm train`` of the tiny model (``TINY_FLAGS``, then ``flags``: a later flag wins)."""
    result = invoke("train", "--data", str(corpus), "--out", str(out), *TINY_FLAGS, *flags)
    assert result.exit_code == 0, result.output
    return out


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def train_tiny_run_once(tmp_path_factory: pytest.TempPathFactory, name: str, *flags: str) -> Path:
    """``train_tiny_run`` for a module or session fixture: its own folder and tiny corpus, and the
    session's token cache (function fixtures such as ``private_cache`` do not reach it)."""
    root = tmp_path_factory.mktemp(name)
    corpus = write_tiny_corpus(root / "corpus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMLM_CACHE", str(cache_folder(tmp_path_factory)))
        return train_tiny_run(root / "run", corpus, *flags)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """READ-ONLY: one tiny run (``TINY_FLAGS``: 60 steps, 16 units, on the tiny corpus) shared
    by every test that only reads a run (eval, generate, score, info, inspect, plot, ...).

    A test that writes into a run (resume, overwrite, damage) takes ``trained_run_copy``. At
    the end of the session the run's files must be as training left them.
    """
    run = train_tiny_run_once(tmp_path_factory, "trained")
    trained = file_digests(run.parent)  # the run and its corpus
    yield run
    assert file_digests(run.parent) == trained, "a test wrote into trained_run: use trained_run_copy"


@pytest.fixture
def trained_run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A private, writable copy of ``trained_run`` (it still reads the shared run's corpus)."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


# ---------------------------------------------------------------- torch


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
