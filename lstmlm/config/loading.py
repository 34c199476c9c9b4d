"""Reading settings: a TOML file (or a run's ``config.json``) into sections, merged with flags
into a validated ``RunConfig``; and where a data setting's path points.

A relative path in a settings file (``data``, ``valid_data``, ``test_data``) is read from
that file's folder, not from where lstmlm runs, so a config and its corpus travel together;
a bare ``name`` or ``owner/name`` that names nothing there stays a Hugging Face dataset name.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

from lstmlm.config.sections import SECTIONS, RunConfig
from lstmlm.errors import LstmlmError

DATA_PATHS = ("data", "valid_data", "test_data")  # the data settings that name local text
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_FILE_SUFFIXES = {".txt", ".tokens", ".raw", ".text", ".json", ".jsonl", ".csv", ".tsv", ".gz"}
_PATTERN_CHARS = re.compile(r"[*?[]")


def settable_fields() -> list[tuple[str, Field[Any]]]:
    """(section, field) for every field a user sets by flag or TOML key, in declaration order."""
    return [(name, f) for name, kind in SECTIONS.items() for f in fields(kind) if "help" in f.metadata]


def resumable_fields() -> dict[str, set[str]]:
    """The fields ``train --resume`` may change, by section."""
    allowed: dict[str, set[str]] = {name: set() for name in SECTIONS}
    for section, f in settable_fields():
        if f.metadata["resumable"]:
            allowed[section].add(f.name)
    return allowed


def load_toml(path: Path) -> dict[str, Any]:
    """Read a ``--config`` file into a dict of sections (validated now, merged with flags later).

    A TOML file, or a run's ``config.json`` (a ``.json`` file, see ``_run_config_values``).
    Its relative data paths are made absolute from its folder (the module docstring).
    """
    if not path.is_file():
        raise LstmlmError(f"config file not found: {path}")
    if path.suffix.lower() == ".json":
        raw = _run_config_values(path)
    else:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise LstmlmError(f"{path}: not valid TOML ({e})") from None
    if isinstance(raw.get("data"), dict):
        raw["data"] = resolve_data_paths(raw["data"], path.resolve().parent)
    RunConfig.from_dict(raw, source=str(path))  # validate keys and values early
    return raw


def _run_config_values(path: Path) -> dict[str, Any]:
    """A run's ``config.json`` as settings: what lstmlm derived is left out, so it is derived
    again for the new run (and follows any flag that changes what it derives from).

    Left out: the ``derived()`` fields (``ntoken``: the new tokenizer's); ``nlayers`` and
    ``nhid`` when ``layer_sizes`` sets them; and ``lr`` when it is the default lstmlm chose
    for the optimizer and cell, so that ``--optimizer adamw`` gets adamw's default, not sgd's.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LstmlmError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(s, {}), dict) for s in SECTIONS):
        raise LstmlmError(f"{path}: not an lstmlm config (a JSON object of {', '.join(SECTIONS)} objects)")
    for section, kind in SECTIONS.items():
        for f in fields(kind):
            if "derived" in f.metadata:
                raw.get(section, {}).pop(f.name, None)
    model, train = raw.get("model", {}), raw.get("train", {})
    if model.get("layer_sizes"):
        model.pop("nlayers", None)
        model.pop("nhid", None)
    if "lr" in train:
        chosen = RunConfig.from_dict({**raw, "train": {**train, "lr": 0.0}}, source=str(path)).train.lr
        if train["lr"] == chosen:
            del train["lr"]
    return raw


def resolve(file_values: dict[str, Any], flags: dict[str, dict[str, Any]]) -> RunConfig:
    """Merge defaults < TOML file values < flags (flags with value None are unset)."""
    merged: dict[str, dict[str, Any]] = {name: dict(file_values.get(name, {})) for name in SECTIONS}
    for section, values in flags.items():
        merged[section].update({k: v for k, v in values.items() if v is not None})
    return RunConfig.from_dict(merged)


def replace(config: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """A copy of ``config`` with some fields changed, re-validated."""
    raw = config.to_dict()
    for section, values in sections.items():
        raw[section].update(values)
    return RunConfig.from_dict(raw)


# ---------------------------------------------------------------- data paths


def is_pattern(data: str) -> bool:
    """Whether ``data`` is a file-name pattern (``*``, ``?`` or ``[``) for lstmlm to expand."""
    return _PATTERN_CHARS.search(data) is not None


def looks_like_dataset_name(data: str, base: Path | None = None) -> bool:
    """``name`` or ``owner/name``, not a file name, and ``owner`` is not a folder (in ``base``)."""
    if not _HUB_NAME.fullmatch(data) or Path(data).suffix.lower() in _FILE_SUFFIXES:
        return False
    owner, slash, _ = data.partition("/")
    return not (slash and ((base or Path()) / owner).is_dir())


def resolve_data_path(data: str, base: Path) -> str:
    """``data`` as an absolute path read from folder ``base``, when it names local text.

    Existing paths are resolved (symbolic links too); patterns and missing paths are made
    absolute; a dataset name that names nothing in ``base`` stays as it is.
    """
    if not data.strip():
        return data  # the corpus loader says what is wrong with it
    path = base / Path(data).expanduser()  # an absolute data path replaces base
    if path.exists():
        return str(path.resolve())
    if is_pattern(data) or not looks_like_dataset_name(data, base):
        return os.path.abspath(path)
    return data


def resolve_data_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """A ``data`` section with its paths (``DATA_PATHS``, one or a list) resolved from ``base``."""
    resolved = dict(values)
    for name in DATA_PATHS:
        value = values.get(name)
        if isinstance(value, str):
            resolved[name] = resolve_data_path(value, base)
        elif isinstance(value, list):
            resolved[name] = [resolve_data_path(v, base) if isinstance(v, str) else v for v in value]
    return resolved
