"""Settings from a TOML file, merged with flags; which settings a resume may change; the presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmlm.config import load_toml, resolve, resumable_fields
from lstmlm.runs import folder as run_folder
from tests.conftest import ROOT, invoke


def test_toml_config_with_flag_override(tiny_corpus: Path, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[model]\nnhid = 12\nemsize = 12\ncell = "gru"\n[train]\nmax_steps = 5\n')
    out = tmp_path / "run"
    result = invoke(
        "train",
        "--data",
        str(tiny_corpus),
        "--out",
        str(out),
        "--config",
        str(toml),
        "--bptt",
        "6",
        "--batch-size",
        "2",
        "--max-steps",
        "4",
        "--nlayers",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    config = json.loads((out / run_folder.CONFIG).read_text())
    assert config["model"]["cell"] == "gru" and config["model"]["nhid"] == 12
    assert config["train"]["max_steps"] == 4 and config["train"]["bptt"] == 6


def test_resumable_settings_are_the_cadence_and_the_runtime() -> None:
    assert resumable_fields() == {
        "model": set(),
        "data": set(),
        "train": {
            "epochs", "max_steps", "eval_every", "log_every", "save_every", "save_every_minutes",
            "max_bad_steps", "device", "eval_batch_size", "precision", "compile", "max_time", "patience",
        },
    }  # fmt: skip


@pytest.mark.parametrize("path", sorted(ROOT.glob("configs/*.toml")), ids=str)
def test_every_preset_is_a_valid_config(path: Path) -> None:
    config = resolve(load_toml(path), {"model": {}, "data": {}, "train": {}})
    assert config.train.lr > 0
