"""``configs/char-cpu.toml``, the character-level preset: it loads, its run is character level
with the file's model and training settings, and it trains a few steps to a finite loss."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

from lstmlm.runs import folder as run_folder
from tests.conftest import ROOT, invoke

PRESET = ROOT / "configs" / "char-cpu.toml"


def test_the_char_preset_trains_a_few_steps_at_character_level(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    small = ["--max-steps", "3", "--bptt", "8", "--batch-size", "4", "--eval-batch-size", "4"]
    result = invoke("train", "--config", str(PRESET), "--data", str(tiny_corpus), "--out", str(out), *small)
    assert result.exit_code == 0, result.output
    preset = tomllib.loads(PRESET.read_text(encoding="utf-8"))
    config = json.loads((out / run_folder.CONFIG).read_text())
    assert config["data"]["tokenizer"] == "char"
    assert {key: config["model"][key] for key in preset["model"]} == preset["model"]
    kept = {key: value for key, value in preset["train"].items() if key not in ("bptt", "batch_size")}
    assert {key: config["train"][key] for key in kept} == kept
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    end = [e for e in events if e["event"] == "end"][-1]
    assert end["step"] == 3 and math.isfinite(end["best_valid_ppl"])
