"""Resolve ``--data`` into text splits (train, valid and maybe test), one line per item.

``--data`` is tried, in order, as: nothing (the embedded default corpus), a folder of
text files, a folder written by ``datasets``' ``save_to_disk``, a single text file, and
finally a Hugging Face hub dataset name. Text files are UTF-8 (a leading BOM is dropped,
``\\r\\n`` is accepted); lines keep their spaces, and empty lines are kept (each becomes
a lone ``<eos>``, as in PyTorch's word language model).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmlm.config import DataConfig
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
_FINGERPRINT_BATCH = 10_000


@dataclass
class Corpus:
    """Named text splits: ``train``, ``valid`` and, when the source has one, ``test``."""

    name: str  # what was loaded, e.g. "data/ptb (folder)"
    splits: dict[str, list[str]]  # split -> lines without line ends


def load_corpus(cfg: DataConfig) -> Corpus:
    """Read the text that ``cfg.data`` names (see the module docstring for the order)."""
    corpus = _default_corpus() if cfg.data is None else _load_named(str(cfg.data), cfg)
    _check_splits(corpus)
    return corpus


def split_fingerprint(lines: list[str]) -> str:
    """sha256 hex of a split's content (the lines as a file, each ending in ``"\\n"``)."""
    digest = hashlib.sha256()
    for start in range(0, len(lines), _FINGERPRINT_BATCH):
        batch = lines[start : start + _FINGERPRINT_BATCH]
        digest.update(("\n".join(batch) + "\n").encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without line ends (BOM dropped, ``\\r\\n`` accepted)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LstmlmError(f"{path}: cannot read the file ({e.strerror or e})") from None
    text = _decode_utf8(raw, path)
    if not text:
        raise LstmlmError(f"{path}: the file is empty")
    return _split_lines(text)


def _decode_utf8(raw: bytes, path: Path) -> str:
    start = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        return str(memoryview(raw)[start:], "utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        raise LstmlmError(f"{path}: not UTF-8 text (byte 0x{raw[offset]:02x} at offset {offset})") from None


def _split_lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n")
    return text.removesuffix("\n").split("\n")


def _default_corpus() -> Corpus:
    """``data/default/{train,valid,test}.txt``, or the generator when they are not installed."""
    paths = {split: DEFAULT_CORPUS_DIR / f"{split}.txt" for split in SPLITS}
    if all(path.is_file() for path in paths.values()):
        splits = {split: read_lines(path) for split, path in paths.items()}
        return Corpus("default agreement corpus (data/default)", splits)
    from lstmlm.data.agreement import default_corpus

    return Corpus("default agreement corpus (generated)", dict(default_corpus()))


def _load_named(data: str, cfg: DataConfig) -> Corpus:
    if not data.strip():
        raise LstmlmError("--data is empty: give a file, a folder or a dataset name")
    path = Path(data).expanduser()
    if path.is_dir():
        return _load_folder(path, cfg)
    if path.is_file():
        return _load_file(path)
    if path.exists():
        raise LstmlmError(f"--data {data}: not a regular file or folder")
    if not _looks_like_dataset_name(data):
        raise LstmlmError(f"--data {data}: no such file or folder")
    return _load_hub(data, cfg)


def _load_folder(path: Path, cfg: DataConfig) -> Corpus:
    files = {split: _first_file(path, names) for split, names in FOLDER_FILES.items()}
    if files["train"] is not None:
        splits = {split: read_lines(file) for split, file in files.items() if file is not None}
        return _with_valid(f"{path} (folder)", splits, missing=" or ".join(FOLDER_FILES["valid"]))
    if any((path / name).is_file() for name in SAVED_DATASET_FILES):
        return _load_saved_dataset(path, cfg)
    raise LstmlmError(
        f"{path}: no training text in this folder (looked for "
        f"{', '.join(FOLDER_FILES['train'])}, or a dataset written by datasets' save_to_disk)"
    )


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _load_file(path: Path) -> Corpus:
    """Split one text file contiguously by lines.

    valid and test each get the floor of 5% of the lines (at least 1 line), in
    that order at the end of the file; train gets all the lines before them
    (about the first 90%). The file needs at least 3 non-empty lines.
    """
    lines = read_lines(path)
    non_empty = sum(1 for line in lines if line.strip())
    if non_empty < 3:
        raise LstmlmError(
            f"{path}: {non_empty} non-empty line(s); a single file is split 90/5/5 by lines "
            "and needs at least 3 - add text, or pass a folder with train.txt and valid.txt"
        )
    held_out = max(1, int(len(lines) * HELD_OUT_FRACTION))
    n_train = len(lines) - 2 * held_out
    splits = {
        "train": lines[:n_train],
        "valid": lines[n_train : n_train + held_out],
        "test": lines[n_train + held_out :],
    }
    return Corpus(f"{path} (file: lines split 90/5/5 into train/valid/test)", splits)


def _with_valid(name: str, splits: dict[str, list[str]], *, missing: str) -> Corpus:
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
    carved = {**splits, "train": train[:-held_out], "valid": train[-held_out:]}
    return Corpus(f"{name}; valid = last 5% of train (no {missing} found)", carved)


def _looks_like_dataset_name(data: str) -> bool:
    """``name`` or ``owner/name``, not a file name, and ``owner`` is not a local folder."""
    if not _HUB_NAME.fullmatch(data) or Path(data).suffix.lower() in _FILE_SUFFIXES:
        return False
    owner, slash, _ = data.partition("/")
    return not (slash and Path(owner).is_dir())


def _import_datasets() -> Any:
    import datasets  # slow to import: only when a dataset is actually used

    return datasets


def _load_saved_dataset(path: Path, cfg: DataConfig) -> Corpus:
    datasets = _import_datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a damaged folder
        raise LstmlmError(f"{path}: cannot load the saved dataset ({_one_line(e)})") from None
    return _from_dataset(loaded, cfg, f"{path} (saved dataset)")


def _load_hub(name: str, cfg: DataConfig) -> Corpus:
    datasets = _import_datasets()
    label = f"{name} ({cfg.dataset_config})" if cfg.dataset_config else name
    try:
        loaded = datasets.load_dataset(name, cfg.dataset_config)
    except Exception as e:  # network, authentication, unknown name or config ...
        raise LstmlmError(
            f"could not load dataset {label} from the Hugging Face hub "
            f"(and no local file or folder has that name): {_one_line(e)}"
        ) from None
    return _from_dataset(loaded, cfg, f"{label} (Hugging Face dataset)")


def _from_dataset(loaded: Any, cfg: DataConfig, name: str) -> Corpus:
    """Lines of a ``Dataset`` (taken as the train split) or ``DatasetDict``."""
    available = dict(loaded) if isinstance(loaded, dict) else {cfg.train_split: loaded}
    if cfg.train_split not in available:
        raise LstmlmError(
            f"{name}: no split {cfg.train_split!r} (available splits: "
            f"{', '.join(available)}); choose one with --train-split"
        )
    wanted = {"train": cfg.train_split, "valid": cfg.valid_split, "test": cfg.test_split}
    splits = {
        split: _column_lines(available[hf_split], cfg.text_column, f"{name} [{hf_split}]")
        for split, hf_split in wanted.items()
        if hf_split in available
    }
    return _with_valid(name, splits, missing=f"split {cfg.valid_split!r}")


def _column_lines(dataset: Any, column: str, name: str) -> list[str]:
    """The text of ``column``; a row holding several lines gives several lines."""
    if column not in dataset.column_names:
        raise LstmlmError(
            f"{name}: no column {column!r} (available columns: "
            f"{', '.join(dataset.column_names)}); choose one with --text-column"
        )
    feature = dataset.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        raise LstmlmError(f"{name}: column {column!r} holds {feature}, not text")
    rows = dataset.with_format("arrow")[column].to_pylist()  # ~100x faster than row by row
    lines: list[str] = []
    for row in rows:
        lines.extend(_split_lines(row or ""))
    return lines


def _check_splits(corpus: Corpus) -> None:
    for split, lines in corpus.splits.items():
        if not lines:
            raise LstmlmError(f"{corpus.name}: the {split} split is empty")
    if not any(line.strip() for line in corpus.splits["train"]):
        raise LstmlmError(f"{corpus.name}: the train split has no text (only empty lines)")


def _one_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
