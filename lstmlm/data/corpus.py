"""Resolve ``--data`` into text splits (train, valid and maybe test), one line per item.

``--data`` is tried, in order, as: nothing (the embedded default corpus), a folder of
text files, a folder written by ``datasets``' ``save_to_disk``, a single text file, and
finally a Hugging Face hub dataset name. Text files are UTF-8 (a leading BOM is dropped,
``\\r\\n`` is accepted); lines keep their spaces, and empty lines are kept (each becomes
a lone ``<eos>``, as in PyTorch's word language model).

Splits are ``LineSource`` objects: text files and datasets are checked and their lines
counted in one streaming pass, then read again batch by batch when needed, never whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmlm.config import DataConfig
from lstmlm.data.sources import (
    DatasetSource,
    LineSource,
    ListSource,
    Progress,
    as_source,
    decode_utf8,
    split_lines,
)
from lstmlm.data.text_file import scan_text_file
from lstmlm.errors import LstmlmError

SPLITS = ("train", "valid", "test")
FOLDER_FILES = {
    "train": ("train.txt", "ptb.train.txt", "wiki.train.tokens", "wiki.train.raw"),
    "valid": (
        "valid.txt",
        "validation.txt",
        "ptb.valid.txt",
        "wiki.valid.tokens",
        "wiki.valid.raw",
    ),
    "test": ("test.txt", "ptb.test.txt", "wiki.test.tokens", "wiki.test.raw"),
}
SAVED_DATASET_FILES = ("dataset_dict.json", "dataset_info.json", "state.json")
HELD_OUT_FRACTION = 0.05
DEFAULT_CORPUS_DIR = Path(__file__).resolve().parents[2] / "data" / "default"

_BOM = b"\xef\xbb\xbf"
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_FILE_SUFFIXES = {".txt", ".tokens", ".raw", ".text", ".json", ".jsonl", ".csv", ".tsv", ".gz"}


@dataclass
class Corpus:
    """Named text splits: ``train``, ``valid`` and, when the source has one, ``test``."""

    name: str  # what was loaded, e.g. "data/ptb (folder)"
    splits: dict[str, LineSource]  # split -> its lines without line ends, read lazily


def load_corpus(cfg: DataConfig, *, on_progress: Progress | None = None) -> Corpus:
    """Check and index the text that ``cfg.data`` names (see the module docstring for the order).

    ``on_progress(done, total)`` follows the checking pass: bytes of text files, rows of datasets.
    """
    corpus = _default_corpus() if cfg.data is None else _load_named(str(cfg.data), cfg, on_progress)
    _check_splits(corpus)
    return corpus


def split_fingerprint(lines: LineSource | Iterable[str]) -> str:
    """sha256 hex of a split's content (the lines as a file, each ending in ``"\\n"``)."""
    return as_source(lines).fingerprint()


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without line ends (BOM dropped, ``\\r\\n`` accepted)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LstmlmError(f"{path}: cannot read the file ({e.strerror or e})") from None
    text = _decode_utf8(raw, path)
    if not text:
        raise LstmlmError(f"{path}: the file is empty")
    return split_lines(text)


def _decode_utf8(raw: bytes, path: Path) -> str:
    start = len(_BOM) if raw.startswith(_BOM) else 0
    return decode_utf8(raw[start:], path, start)


def _default_corpus() -> Corpus:
    """``data/default/{train,valid,test}.txt``, or the generator when they are not installed."""
    paths = {split: DEFAULT_CORPUS_DIR / f"{split}.txt" for split in SPLITS}
    if all(path.is_file() for path in paths.values()):
        splits: dict[str, LineSource] = {split: ListSource(read_lines(path)) for split, path in paths.items()}
        return Corpus("default agreement corpus (data/default)", splits)
    from lstmlm.data.grammar.sentences import default_corpus

    generated: dict[str, LineSource] = {split: ListSource(lines) for split, lines in default_corpus().items()}
    return Corpus("default agreement corpus (generated)", generated)


def _load_named(data: str, cfg: DataConfig, on_progress: Progress | None) -> Corpus:
    if not data.strip():
        raise LstmlmError("--data is empty: give a file, a folder or a dataset name")
    path = Path(data).expanduser()
    if path.is_dir():
        return _load_folder(path, cfg, on_progress)
    if path.is_file():
        return _load_file(path, on_progress)
    if path.exists():
        raise LstmlmError(f"--data {data}: not a regular file or folder")
    if not looks_like_dataset_name(data):
        raise LstmlmError(f"--data {data}: no such file or folder")
    return _load_hub(data, cfg, on_progress)


def _load_folder(path: Path, cfg: DataConfig, on_progress: Progress | None) -> Corpus:
    files = {split: _first_file(path, names) for split, names in FOLDER_FILES.items()}
    if files["train"] is not None:
        found = {split: file for split, file in files.items() if file is not None}
        splits = _scan_files(found, on_progress)
        return _with_valid(f"{path} (folder)", splits, missing=" or ".join(FOLDER_FILES["valid"]))
    if any((path / name).is_file() for name in SAVED_DATASET_FILES):
        return _load_saved_dataset(path, cfg, on_progress)
    raise LstmlmError(
        f"{path}: no training text in this folder (looked for "
        f"{', '.join(FOLDER_FILES['train'])}, or a dataset written by datasets' save_to_disk)"
    )


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _scan_files(files: dict[str, Path], on_progress: Progress | None) -> dict[str, LineSource]:
    """Each file checked and indexed; progress runs over the bytes of all of them."""
    sizes = {split: _size(file) for split, file in files.items()}
    total, before = sum(sizes.values()), 0
    splits: dict[str, LineSource] = {}
    for split, file in files.items():
        report = None if on_progress is None else _offset_progress(on_progress, before, total)
        splits[split], _ = scan_text_file(file, fingerprint=True, on_progress=report)
        before += sizes[split]
    return splits


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading the file reports the problem


def _offset_progress(on_progress: Progress, before: int, total: int) -> Progress:
    return lambda done, _: on_progress(before + done, total)


def _load_file(path: Path, on_progress: Progress | None) -> Corpus:
    """Split one text file contiguously by lines.

    valid and test each get the floor of 5% of the lines (at least 1 line), in
    that order at the end of the file; train gets all the lines before them
    (about the first 90%). The file needs at least 3 non-empty lines.
    """
    source, non_empty = scan_text_file(path, count_text=3, on_progress=on_progress)
    if non_empty < 3:
        raise LstmlmError(
            f"{path}: {non_empty} non-empty line(s); a single file is split 90/5/5 by lines "
            "and needs at least 3 - add text, or pass a folder with train.txt and valid.txt"
        )
    held_out = max(1, int(len(source) * HELD_OUT_FRACTION))
    train, rest = source.split_at(len(source) - 2 * held_out)
    valid, test = rest.split_at(held_out)
    splits: dict[str, LineSource] = {"train": train, "valid": valid, "test": test}
    return Corpus(f"{path} (file: lines split 90/5/5 into train/valid/test)", splits)


def _with_valid(name: str, splits: dict[str, LineSource], *, missing: str) -> Corpus:
    """``splits`` as a corpus, carving valid from the end of train when there is none."""
    if "valid" in splits:
        return Corpus(name, splits)
    train = splits["train"]
    held_out = max(1, int(len(train) * HELD_OUT_FRACTION))
    if len(train) <= held_out:
        raise LstmlmError(
            f"{name}: no validation text ({missing}) and the train split has only "
            f"{len(train)} line(s) to hold some out from"
        )
    kept, carved_valid = train.split_at(len(train) - held_out)
    carved = {**splits, "train": kept, "valid": carved_valid}
    return Corpus(f"{name}; valid = last 5% of train (no {missing} found)", carved)


def looks_like_dataset_name(data: str) -> bool:
    """``name`` or ``owner/name``, not a file name, and ``owner`` is not a local folder."""
    if not _HUB_NAME.fullmatch(data) or Path(data).suffix.lower() in _FILE_SUFFIXES:
        return False
    owner, slash, _ = data.partition("/")
    return not (slash and Path(owner).is_dir())


def _import_datasets() -> Any:
    import datasets  # slow to import: only when a dataset is actually used

    return datasets


def _load_saved_dataset(path: Path, cfg: DataConfig, on_progress: Progress | None) -> Corpus:
    datasets = _import_datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a damaged folder
        raise LstmlmError(f"{path}: cannot load the saved dataset ({one_line(e)})") from None
    return _from_dataset(loaded, cfg, f"{path} (saved dataset)", on_progress)


def _load_hub(name: str, cfg: DataConfig, on_progress: Progress | None) -> Corpus:
    datasets = _import_datasets()
    label = f"{name} ({cfg.dataset_config})" if cfg.dataset_config else name
    try:
        loaded = datasets.load_dataset(name, cfg.dataset_config)
    except Exception as e:  # network, authentication, unknown name or config ...
        raise LstmlmError(
            f"could not load dataset {label} from the Hugging Face hub "
            f"(and no local file or folder has that name): {one_line(e)}"
        ) from None
    return _from_dataset(loaded, cfg, f"{label} (Hugging Face dataset)", on_progress)


def _from_dataset(loaded: Any, cfg: DataConfig, name: str, on_progress: Progress | None) -> Corpus:
    """Lines of a ``Dataset`` (taken as the train split) or ``DatasetDict``."""
    available = dict(loaded) if isinstance(loaded, dict) else {cfg.train_split: loaded}
    if cfg.train_split not in available:
        raise LstmlmError(
            f"{name}: no split {cfg.train_split!r} (available splits: "
            f"{', '.join(available)}); choose one with --train-split"
        )
    wanted = {"train": cfg.train_split, "valid": cfg.valid_split, "test": cfg.test_split}
    splits: dict[str, LineSource] = {
        split: _column_lines(available[hf_split], cfg.text_column, f"{name} [{hf_split}]", on_progress)
        for split, hf_split in wanted.items()
        if hf_split in available
    }
    return _with_valid(name, splits, missing=f"split {cfg.valid_split!r}")


def _column_lines(dataset: Any, column: str, name: str, on_progress: Progress | None) -> LineSource:
    """The text of ``column``; a row holding several lines gives several lines."""
    if column not in dataset.column_names:
        raise LstmlmError(
            f"{name}: no column {column!r} (available columns: "
            f"{', '.join(dataset.column_names)}); choose one with --text-column"
        )
    feature = dataset.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        raise LstmlmError(f"{name}: column {column!r} holds {feature}, not text")
    return DatasetSource.open(dataset, column, on_progress=on_progress)


def _check_splits(corpus: Corpus) -> None:
    for split, lines in corpus.splits.items():
        if not len(lines):
            raise LstmlmError(f"{corpus.name}: the {split} split is empty")
    if not corpus.splits["train"].has_text():
        raise LstmlmError(f"{corpus.name}: the train split has no text (only empty lines)")


def one_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
