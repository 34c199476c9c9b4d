"""Which text a run was trained on, so that the run folder can move and the data cannot drift.

A run stores ``--data`` (and ``--valid-data``, ``--test-data``) resolved, an absolute path
or pattern when it names local text, in ``config.json``, and the sha256 fingerprint of each
split in ``data.json``. Resuming checks every recorded split and refuses text that changed;
so a resume may also name the same text at a new place (``training.launch.plan_run``).
``eval`` without ``--data`` checks the split it scores. Runs from before ``data.json``
existed are not checked, and cannot move their data.
"""

from __future__ import annotations

import json
from pathlib import Path

from lstmlm.config import RunConfig, replace
from lstmlm.config.loading import DATA_PATHS, resolve_data_paths
from lstmlm.data.corpus import Corpus
from lstmlm.data.sources import LineSource
from lstmlm.data.text_file import FileSource
from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic
from lstmlm.runs.folder import DATA_RECORD


def with_resolved_data(config: RunConfig) -> RunConfig:
    """``config`` with its data paths (``--data``, ``--valid-data``, ``--test-data``) made absolute
    from the working folder when they name local text (hub names stay)."""
    values = config.to_dict()["data"]
    resolved = resolve_data_paths(values, Path.cwd())
    changed = {name: resolved[name] for name in DATA_PATHS if resolved[name] != values[name]}
    return replace(config, data=changed) if changed else config


def record_data(run_dir: Path, corpus: Corpus) -> None:
    """Write ``data.json``: the corpus and each split's fingerprint and line count."""
    splits = {
        name: {"sha256": source.fingerprint(), "lines": len(source)} for name, source in corpus.splits.items()
    }
    text = json.dumps({"corpus": corpus.name, "splits": splits}, indent=2, sort_keys=True) + "\n"
    write_atomic(run_dir / DATA_RECORD, text.encode("utf-8"))


def recorded_fingerprints(run_dir: Path) -> dict[str, str]:
    """split -> sha256 from ``data.json``; empty for a run that has none."""
    path = run_dir / DATA_RECORD
    if not path.is_file():
        return {}
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))["splits"]
        return {name: str(entry["sha256"]) for name, entry in splits.items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LstmlmError(f"{path}: damaged ({e})") from None


def check_unchanged(run_dir: Path, corpus: Corpus, splits: tuple[str, ...], what: str) -> None:
    """Refuse when a split of ``corpus`` named in ``splits`` differs from what ``run_dir`` recorded."""
    recorded = recorded_fingerprints(run_dir)
    for name in splits:
        source = corpus.splits.get(name)
        if name not in recorded or source is None or source.fingerprint() == recorded[name]:
            continue
        raise LstmlmError(
            f"{where(source, corpus)}: the {name} split changed since {run_dir} was trained on it "
            f"(sha256 {source.fingerprint()[:12]}..., recorded {recorded[name][:12]}...); {what}"
        )


def where(source: LineSource, corpus: Corpus) -> str:
    """The file a split comes from, or the corpus's name when it is not one file."""
    return str(source.path) if isinstance(source, FileSource) else corpus.name
