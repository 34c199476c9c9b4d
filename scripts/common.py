"""What the scripts share: this checkout's paths, the shared corpora and peers, and the helpers
that more than one script needs (running lstmlm, thread settings, the peer's scratch copy,
the closed-vocabulary data the peer comparisons train on).

The scripts run as modules from the repository root (``python -m scripts.bench.bench_train``),
so this checkout's ``lstmlm`` and ``scripts`` are importable without any ``sys.path`` edits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]  # the repository root
SHARED = ROOT.parent / "shared"  # beside the checkout, read-only
SHARED_DATA = SHARED / "data"  # tinyshakespeare/, wikitext-2/ (valid, test), ptb/ (valid, test)
PEERS = SHARED / "peers"  # each with a SOURCE.md
PEER = PEERS / "pytorch-examples-word_language_model"  # the baseline the benchmarks compare with

#: corpus name -> (folder in SHARED_DATA, file trained on, file scored)
CORPORA = {
    "wikitext": ("wikitext-2", "valid.txt", "test.txt"),
    "ptb": ("ptb", "ptb.valid.txt", "ptb.test.txt"),
}

#: ``lstmlm`` as a fresh process of this interpreter
LSTMLM = [sys.executable, "-m", "lstmlm"]


def thread_env(threads: int, **extra: str) -> dict[str, str]:
    """This process's environment with ``threads`` OpenMP and MKL threads (and ``extra``)."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **extra}


def copy_peer(dest: Path, peer: Path = PEER) -> Path:
    """Copy ``peer`` to ``dest`` (new), writable: the shared copy is read-only and the peer
    writes there (its checkpoint, generate.py's output). Returns ``dest``."""
    shutil.copytree(peer, dest)
    for path in (dest, *dest.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)
    return dest


def import_peer_module(folder: Path, name: str) -> ModuleType:
    """Import the peer's ``name``.py from ``folder`` (a scratch copy) under its own top-level
    name, as its scripts do, so that ``torch.save``/``torch.load`` of its models find it."""
    path = folder / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {name} from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_lines(path: Path) -> list[list[str]]:
    with open(path, encoding="utf8") as f:  # the peer's way: file lines, str.split()
        return [line.split() for line in f]


def prepare_data(src_train: Path, src_test: Path, dest: Path) -> int:
    """Write closed-vocabulary train/valid/test files, say so; returns the vocabulary size."""
    train = read_lines(src_train)
    vocab = {w for line in train for w in line} | {"<unk>"}
    test = [[w if w in vocab else "<unk>" for w in line] for line in read_lines(src_test)]
    dest.mkdir(parents=True)
    for name, lines in (("train.txt", train), ("valid.txt", test), ("test.txt", test)):
        (dest / name).write_text("".join(" ".join(line) + "\n" for line in lines), encoding="utf8")
    n_train, n_test = (sum(len(line) + 1 for line in lines) for lines in (train, test))
    unk = sum(line.count("<unk>") for line in test) / n_test
    print(f"train {src_train} ({n_train:,} tokens); valid = test {src_test} ({n_test:,} tokens, ", end="")
    print(f"{unk:.1%} <unk>); closed vocabulary {len(vocab) + 1:,} (train words, <unk>, <eos>)", flush=True)
    return len(vocab) + 1


@contextlib.contextmanager
def work_folder(keep: Path | None, prefix: str) -> Iterator[Path]:
    """A benchmark's folder for its data and runs: ``keep`` (new or empty, left in place) or a
    temp folder removed afterwards; a ``keep`` that holds files stops the script in one line."""
    if keep and keep.exists() and any(keep.iterdir()):
        sys.exit(f"--keep {keep}: not empty")
    work = keep or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"runs kept in {work}")
