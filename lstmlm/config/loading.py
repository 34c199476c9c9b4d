"""Reading settings: a TOML file into sections, merged with flags into a validated ``RunConfig``."""

from __future__ import annotations

import tomllib
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

from lstmlm.config.sections import SECTIONS, RunConfig
from lstmlm.errors import LstmlmError


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
    """Read a TOML config file into a dict of sections (validated later, merged with flags)."""
    if not path.is_file():
        raise LstmlmError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LstmlmError(f"{path}: not valid TOML ({e})") from None
    RunConfig.from_dict(raw, source=str(path))  # validate keys and values early
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
