"""Resolve ``--data`` into text splits (train, valid and maybe test), one line per item.

``--data`` is tried, in order, as: nothing (the embedded default corpus), a folder, a single
text file, a file-name pattern, and finally a Hugging Face hub dataset name. A folder is
read as, in order: train/valid/test files by their usual names (``FOLDER_FILES``), a
dataset written by ``datasets``' ``save_to_disk``, or else all its text files
(``text_files.py``: name order, numbers by value). Several ``--data`` are all read, in the
order given, as one text; each must be a file, a folder of text files or a pattern.

Text that comes without splits (a file, a folder of text files, a pattern, several
sources) is the lines of its files, file after file, split by lines at the end: the last
5% of the lines is test, the 5% before it valid, the first ~90% train (at least one line
each). ``--valid-data``/``--test-data`` read those splits from their own files instead
(whole), and then nothing is set aside for them. A folder or dataset with a train split
but no validation split gives up the last 5% of its train lines for it. The corpus name
(printed by ``train`` and recorded in ``data.json``) says which rule applied.

Text files are UTF-8 (a leading BOM is dropped, ``\\r\\n`` is accepted); lines keep their
spaces, and empty lines are kept (each becomes a lone ``<eos>``, as in PyTorch's word
language model). Splits are ``LineSource`` objects: files and datasets are checked and
their lines counted in one streaming pass, then read again batch by batch when needed,
never whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lstmlm.config import DataConfig
from lstmlm.config.loading import is_pattern, looks_like_dataset_name
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
from lstmlm.data.text_files import folder_files, local_files, pattern_files, scan_files
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
_SHARES = {("valid", "test"): "90/5/5", ("valid",): "95/5", ("test",): "95/5"}

Given = dict[str, tuple[LineSource, str]]  # held-out split -> (its text, the --*-data it came from)


@dataclass
class Corpus:
    """Named text splits: ``train``, ``valid`` and, when the source has one, ``test``."""

    name: str  # what was loaded, e.g. "data/ptb (folder)"
    splits: dict[str, LineSource]  # split -> its lines without line ends, read lazily


def load_corpus(cfg: DataConfig, *, on_progress: Progress | None = None) -> Corpus:
    """Check and index the text that ``cfg`` names (see the module docstring for the order).

    ``on_progress(done, total)`` follows the checking pass of ``--data``: bytes of text files,
    rows of datasets.
    """
    given = _given_splits(cfg)
    if cfg.data is None:
        corpus = _default_corpus(given)
    elif isinstance(cfg.data, list):
        corpus = _load_several(cfg.data, given, on_progress)
    else:
        corpus = _load_named(cfg.data, cfg, given, on_progress)
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


def _default_corpus(given: Given) -> Corpus:
    """``data/default/{train,valid,test}.txt``, or the generator when they are not installed."""
    paths = {split: DEFAULT_CORPUS_DIR / f"{split}.txt" for split in SPLITS}
    if all(path.is_file() for path in paths.values()):
        splits: dict[str, LineSource] = {split: ListSource(read_lines(path)) for split, path in paths.items()}
        return _with_valid("default agreement corpus (data/default)", splits, given, missing="")
    from lstmlm.data.grammar.sentences import default_corpus

    generated: dict[str, LineSource] = {split: ListSource(lines) for split, lines in default_corpus().items()}
    return _with_valid("default agreement corpus (generated)", generated, given, missing="")


def _load_named(data: str, cfg: DataConfig, given: Given, on_progress: Progress | None) -> Corpus:
    if not data.strip():
        raise LstmlmError("--data is empty: give a file, a folder or a dataset name")
    path = Path(data).expanduser()
    if path.is_dir():
        return _load_folder(path, cfg, given, on_progress)
    if path.is_file():
        return _split_text(str(path), "file", [path], given, on_progress)
    if path.exists():
        raise LstmlmError(f"--data {data}: not a regular file or folder")
    if is_pattern(data):
        files = pattern_files(data)
        return _split_text(data, f"pattern, {_count(files)} in name order", files, given, on_progress)
    if not looks_like_dataset_name(data):
        raise LstmlmError(f"--data {data}: no such file or folder")
    return _load_hub(data, cfg, given, on_progress)


def _load_folder(path: Path, cfg: DataConfig, given: Given, on_progress: Progress | None) -> Corpus:
    files = {split: _first_file(path, names) for split, names in FOLDER_FILES.items()}
    if files["train"] is not None:
        found = {split: file for split, file in files.items() if file is not None}
        splits = _scan_named(found, on_progress)
        return _with_valid(f"{path} (folder)", splits, given, missing=" or ".join(FOLDER_FILES["valid"]))
    if _is_saved_dataset(path):
        return _load_saved_dataset(path, cfg, given, on_progress)
    held_out = [file.name for file in files.values() if file is not None]
    if held_out:
        raise LstmlmError(
            f"{path}: no training text in this folder (it has {' and '.join(held_out)} "
            f"but none of {', '.join(FOLDER_FILES['train'])})"
        )
    texts = folder_files(path)
    kind = f"folder, {_count(texts)} in name order" if len(texts) > 1 else f"folder holding {texts[0].name}"
    return _split_text(str(path), kind, texts, given, on_progress)


def _load_several(sources: list[str], given: Given, on_progress: Progress | None) -> Corpus:
    """Several ``--data``, in the order given, as one text (the module docstring)."""
    files = [file for data in sources for file in _plain_files(data, "--data")]
    kind = f"{len(sources)} sources, {_count(files)} in the order given"
    return _split_text(" + ".join(sources), kind, files, given, on_progress)


def _plain_files(data: str, option: str) -> list[Path]:
    """The text files of a source read whole or joined: a file, a folder of text files, a pattern."""
    if not data.strip():
        raise LstmlmError(f"{option} is empty: give a file, a folder or a pattern")
    path = Path(data).expanduser()
    if path.is_dir() and (
        _is_saved_dataset(path) or any(map(partial(_first_file, path), FOLDER_FILES.values()))
    ):
        raise LstmlmError(
            f"{option} {data}: this folder holds its own splits (train/valid/test files or a saved "
            f"dataset); {option} here takes a file, a folder of text files or a pattern"
        )
    return local_files(data, option)


def _given_splits(cfg: DataConfig) -> Given:
    """The held-out splits ``--valid-data`` and ``--test-data`` name, each read whole."""
    given: Given = {}
    for split, data in (("valid", cfg.valid_data), ("test", cfg.test_data)):
        if data is not None:
            files = _plain_files(data, f"--{split}-data")
            given[split] = (scan_files(files, fingerprint=True)[0], data)
    return given


def _count(files: list[Path]) -> str:
    return f"{len(files):,} file{'s' if len(files) != 1 else ''}"


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _is_saved_dataset(folder: Path) -> bool:
    return any((folder / name).is_file() for name in SAVED_DATASET_FILES)


def _scan_named(files: dict[str, Path], on_progress: Progress | None) -> dict[str, LineSource]:
    """Each split's file checked and indexed; progress runs over the bytes of all of them."""
    total = sum(_size(file) for file in files.values())
    splits: dict[str, LineSource] = {}
    before = 0
    for split, file in files.items():
        report = None if on_progress is None else _offset_progress(on_progress, before, total)
        splits[split], _ = scan_text_file(file, fingerprint=True, on_progress=report)
        before += _size(file)
    return splits


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading the file reports the problem


def _offset_progress(on_progress: Progress, before: int, total: int) -> Progress:
    return lambda done, _: on_progress(before + done, total)


def _split_text(
    label: str, kind: str, files: list[Path], given: Given, on_progress: Progress | None
) -> Corpus:
    """Text without splits, split by lines: the held-out splits not ``given`` come from its end.

    Each gets the floor of 5% of the lines (at least 1 line), valid before test at the end;
    train gets all the lines before them (about the first 90% when both are set aside).
    """
    missing = tuple(split for split in ("valid", "test") if split not in given)
    text, non_empty = scan_files(files, count_text=1 + len(missing), on_progress=on_progress)
    if not missing:
        return _with_valid(f"{label} ({kind}: all lines train)", {"train": text}, given, missing="")
    rule = f"lines split {_SHARES[missing]} into {'/'.join(('train', *missing))}"
    if non_empty < 1 + len(missing):
        raise LstmlmError(
            f"{label}: {non_empty} non-empty line(s); its {rule} need at least {1 + len(missing)} "
            "- add text, or pass a folder with train.txt and valid.txt"
        )
    held_out = max(1, int(len(text) * HELD_OUT_FRACTION))
    splits: dict[str, LineSource] = {}
    splits["train"], rest = text.split_at(len(text) - len(missing) * held_out)
    for split in missing:
        splits[split], rest = rest.split_at(held_out)
    return _with_valid(f"{label} ({kind}: {rule})", splits, given, missing="")


def _with_valid(name: str, splits: dict[str, LineSource], given: Given, *, missing: str) -> Corpus:
    """``splits`` and the ``given`` ones as a corpus, carving valid from the end of train when
    neither has one (``missing`` says what was looked for)."""
    splits = {**splits, **{split: source for split, (source, _) in given.items()}}
    name += "".join(f"; {split} = {data}" for split, (_, data) in given.items())
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


def _import_datasets() -> Any:
    import datasets  # slow to import: only when a dataset is actually used

    return datasets


def _load_saved_dataset(path: Path, cfg: DataConfig, given: Given, on_progress: Progress | None) -> Corpus:
    datasets = _import_datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a damaged folder
        raise LstmlmError(f"{path}: cannot load the saved dataset ({one_line(e)})") from None
    return _from_dataset(loaded, cfg, f"{path} (saved dataset)", given, on_progress)


def _load_hub(name: str, cfg: DataConfig, given: Given, on_progress: Progress | None) -> Corpus:
    datasets = _import_datasets()
    label = f"{name} ({cfg.dataset_config})" if cfg.dataset_config else name
    try:
        loaded = datasets.load_dataset(name, cfg.dataset_config)
    except Exception as e:  # network, authentication, unknown name or config ...
        raise LstmlmError(
            f"could not load dataset {label} from the Hugging Face hub "
            f"(and no local file or folder has that name): {one_line(e)}"
        ) from None
    return _from_dataset(loaded, cfg, f"{label} (Hugging Face dataset)", given, on_progress)


def _from_dataset(
    loaded: Any, cfg: DataConfig, name: str, given: Given, on_progress: Progress | None
) -> Corpus:
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
    return _with_valid(name, splits, given, missing=f"split {cfg.valid_split!r}")


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
