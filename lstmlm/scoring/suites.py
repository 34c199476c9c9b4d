"""Where ``--suite`` finds its minimal pairs: the grammar's suites (``default``,
``long-range``), a JSONL file, or a Hugging
Face dataset in the BLiMP layout (columns ``sentence_good``, ``sentence_bad``, any others
kept as grouping fields), saved with ``save_to_disk`` or named on the hub as ``NAME`` or
``NAME:CONFIG`` (e.g. ``nyu-mll/blimp:anaphor_gender_agreement``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lstmlm.data.corpus import looks_like_dataset_name, one_line
from lstmlm.errors import LstmlmError
from lstmlm.scoring.pairs import NAMED_SUITES, SuitePair, pair_from_record, read_suite, resolve_suite


def load_suite(name: str) -> tuple[list[SuitePair], str]:
    """The pairs ``--suite name`` stands for, and how to name them in output."""
    path = Path(name)
    if name in NAMED_SUITES or path.is_file() or path.suffix.lower() == ".jsonl":
        path = resolve_suite(name)
        return read_suite(path), str(path)
    if path.is_dir():
        return _dataset_pairs(_load_saved(path), f"{path} (saved dataset)"), str(path)
    if looks_like_dataset_name(name.partition(":")[0]):
        label = f"{name} (Hugging Face dataset)"
        return _dataset_pairs(_load_hub(name), label), label
    raise LstmlmError(f"suite file not found: {name}")


def _load_saved(path: Path) -> Any:
    import datasets  # slow to import: only for a dataset suite

    try:
        return datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types for a damaged folder
        raise LstmlmError(f"{path}: cannot load the saved dataset ({one_line(e)})") from None


def _load_hub(name: str) -> Any:
    import datasets

    dataset, _, config = name.partition(":")
    try:
        return datasets.load_dataset(dataset, config or None)
    except Exception as e:  # network, authentication, unknown name or config ...
        raise LstmlmError(f"could not load suite {name} from the Hugging Face hub: {one_line(e)}") from None


def _dataset_pairs(loaded: Any, label: str) -> list[SuitePair]:
    """Every row of a ``Dataset``, or of every split of a ``DatasetDict`` in order, as a pair."""
    splits = list(loaded.items()) if isinstance(loaded, dict) else [("", loaded)]
    pairs: list[SuitePair] = []
    for split, rows in splits:
        missing = {"sentence_good", "sentence_bad"} - set(rows.column_names)
        if missing:
            raise LstmlmError(
                f"{label}: no column {', '.join(sorted(missing))} (columns: {', '.join(rows.column_names)})"
            )
        where = f"{label} [{split}]" if split else label
        pairs += [pair_from_record(row, f"{where} row {i}", len(pairs) + 1) for i, row in enumerate(rows)]
    if not pairs:
        raise LstmlmError(f"{label}: the suite is empty")
    return pairs
