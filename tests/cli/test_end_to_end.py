"""The command line end to end (Typer's CliRunner): train, eval, generate, info; dataset flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstmlm.runs import folder as run_folder
from lstmlm.runs import load as runs
from lstmlm.runs.metrics import read_metrics
from tests.conftest import TINY_FLAGS, invoke


def test_train_eval_generate_info(trained_run: Path) -> None:
    for name in (
        run_folder.CONFIG,
        run_folder.TOKENIZER,
        run_folder.MODEL,
        run_folder.BEST,
        run_folder.STATE,
        run_folder.METRICS,
    ):
        assert (trained_run / name).is_file(), name
    config = json.loads((trained_run / run_folder.CONFIG).read_text())
    assert config["model"]["nhid"] == 16 and config["model"]["ntoken"] > 10

    result = invoke("eval", str(trained_run), "--split", "valid", "--json")
    assert result.exit_code == 0, result.stderr
    evaluation = json.loads(result.stdout)  # nothing but JSON on stdout
    assert evaluation["split"] == "valid"
    assert 1.0 < evaluation["perplexity"] < config["model"]["ntoken"]

    first = invoke("generate", str(trained_run), "--prompt", "the cat", "--seed", "3", "--max-tokens", "12")
    again = invoke("generate", str(trained_run), "--prompt", "the cat", "--seed", "3", "--max-tokens", "12")
    assert first.exit_code == 0 and first.stdout == again.stdout
    assert first.stdout.startswith("the cat") and len(first.stdout.split()) > 5

    result = invoke("info", str(trained_run), "--json")
    info = json.loads(result.stdout)
    assert info["step"] == 60 and info["best_valid_ppl"] > 1.0
    run = runs.load_run(trained_run)  # info reads the files' headers; the loaded model agrees
    assert info["parameters"] == run.model.num_parameters()
    assert (info["vocab_size"], info["tokenizer"]) == (run.tokenizer.vocab_size, run.tokenizer.kind)
    evals = [r["valid_ppl"] for r in read_metrics(trained_run / run_folder.METRICS) if r["event"] == "eval"]
    assert info["best_valid_ppl"] == pytest.approx(min(evals))


def test_dataset_split_and_column_flags(tiny_corpus: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    lines = (tiny_corpus / "train.txt").read_text().splitlines()
    saved = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "training": datasets.Dataset.from_dict({"body": lines}),
            "dev": datasets.Dataset.from_dict({"body": lines[:40]}),
        }
    ).save_to_disk(str(saved))
    common = ("--data", str(saved), "--text-column", "body", *TINY_FLAGS)

    result = invoke("train", *common, "--out", str(tmp_path / "bad"))
    assert result.exit_code == 1 and "training, dev" in result.stderr  # lists the real splits

    out = tmp_path / "run"
    result = invoke("train", *common, "--train-split", "training", "--valid-split", "dev", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    data = json.loads((out / run_folder.CONFIG).read_text())["data"]
    assert (data["train_split"], data["valid_split"], data["text_column"]) == ("training", "dev", "body")
