"""The Mogrifier presets for a GPU (configs/mogrifier-*.toml) train a few steps on CPU: the
cell, its rounds and rank, the mixture of softmaxes and the tying through it, shrunk to
tiny widths (the presets' own sizes are ~24-35M parameters, minutes a step here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke

SHRUNK = {"mogrifier-ptb.toml": ("16", "16"), "mogrifier-wt2.toml": ("8", "16")}  # emsize, nhid


@pytest.mark.parametrize("name", sorted(SHRUNK))
def test_the_preset_trains_a_few_steps(name: str, tiny_corpus: Path, tmp_path: Path) -> None:
    emsize, nhid = SHRUNK[name]
    out = tmp_path / "run"
    result = invoke(
        "train", "--config", str(ROOT / "configs" / name), "--data", str(tiny_corpus), "--out", str(out),
        "--emsize", emsize, "--nhid", nhid, "--batch-size", "4", "--bptt", "8", "--max-steps", "3",
        "--eval-every", "3", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads((out / "config.json").read_text())["model"]
    assert model["cell"] == "mogrifier" and model["tied"] and model["mogrify_rank"] > 0
