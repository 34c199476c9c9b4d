"""The command line end to end (Typer's CliRunner), and bad input giving one clear line."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstmlm.cli import app
from lstmlm.config import ModelConfig
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder
from lstmlm.runs import load as runs
from lstmlm.runs.metrics import read_metrics

from .conftest import TINY_FLAGS, make_untrained_run

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def trained_run(tiny_corpus: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    result = invoke("train", "--data", str(tiny_corpus), "--out", str(out), *TINY_FLAGS)
    assert result.exit_code == 0, result.output + result.stderr
    return out


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


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_count_from_the_weights_header(tied: bool, tmp_path: Path) -> None:
    """``info`` counts parameters without torch, from the safetensors header: a tied decoder once."""
    model = LanguageModel(ModelConfig(ntoken=50, emsize=6, nhid=6 if tied else 5, nlayers=2, tied=tied))
    path = tmp_path / run_folder.MODEL
    path.write_bytes(ckpt.weights_bytes(model, step=7))
    header = run_folder.weights_header(path)
    assert run_folder.tensor_count(header) == model.num_parameters()
    assert run_folder.saved_step(header) == 7


def test_resume_continues_and_overwrite_is_required(trained_run: Path, tiny_corpus: Path) -> None:
    again = invoke("train", "--data", str(tiny_corpus), "--out", str(trained_run), *TINY_FLAGS)
    assert again.exit_code == 1 and "--resume" in again.stderr
    more = [*TINY_FLAGS[:-6], "--max-steps", "80", *TINY_FLAGS[-4:]]
    resumed = invoke("train", "--out", str(trained_run), "--resume", *more)
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming at step 60" in resumed.stdout
    assert ckpt.latest_checkpoint(trained_run).step == 80


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


def _bad_inputs(tmp: Path, corpus: Path) -> list[tuple[list[str], str]]:
    empty = tmp / "empty.txt"
    empty.write_text("")
    binary = tmp / "binary.txt"
    binary.write_bytes(b"hello \xff\xfe world\n" * 10)
    no_train = tmp / "no_train"
    no_train.mkdir()
    (no_train / "valid.txt").write_text("a b c\n")
    short = tmp / "short"
    short.mkdir()
    for name in ("train", "valid", "test"):
        (short / f"{name}.txt").write_text("one two three\n")
    bad_toml = tmp / "bad.toml"
    bad_toml.write_text("[model\nnhid = ")
    not_a_run = tmp / "not_a_run"
    not_a_run.mkdir()
    out = str(tmp / "out")
    lines = {"float_seed": "seed = 1.5", "str_lr": 'lr = "fast"', "bool_epochs": "epochs = true",
             "huge_seed": "seed = 18446744073709551616"}  # fmt: skip
    tomls = {name: tmp / f"{name}.toml" for name in lines}
    for name, line in lines.items():
        tomls[name].write_text(f"[train]\n{line}\n")
    same = tmp / "same.jsonl"  # line 2: one sentence twice (up to spacing)
    pairs = [("a b", "a c"), ("a b", "a  b")]
    same.write_text("".join(json.dumps({"sentence_good": g, "sentence_bad": b}) + "\n" for g, b in pairs))
    vocab_run = make_untrained_run(tmp / "vocab_run", corpus)
    return [
        *[
            (["train", "--data", str(corpus), "--config", str(tomls[name]), "--out", out], expected)
            for name, expected in (
                ("float_seed", "float_seed.toml [train]: seed must be an integer (got 1.5)"),
                ("str_lr", 'str_lr.toml [train]: lr must be a number (got "fast")'),
                ("bool_epochs", "bool_epochs.toml [train]: epochs must be an integer (got true)"),
                ("huge_seed", "--seed must be between 0 and 2**64-1 (got 18446744073709551616)"),
            )
        ],
        (["train", "--data", str(corpus), "--seed", "18446744073709551616", "--out", out], "2**64-1"),
        (["train", "--data", str(corpus), "--seed", "-1", "--out", out], "--seed must be between"),
        (["train", "--data", str(corpus), "--out", str(empty / "run")], "empty.txt/run: Not a directory"),
        (["agreement", str(not_a_run), "--by", "colour"], "colour (the pairs have: UID, agreement"),
        (["agreement", str(not_a_run), "--suite", str(same)], "same.jsonl:2: sentence_good and sentence_bad"),
        (["generate", str(vocab_run), "--agreement"], "vocabulary lacks words of the demo prompts: The, key"),
        (["train", "--data", str(tmp / "missing.txt"), "--out", out], "missing.txt"),
        (["train", "--data", str(empty), "--out", out], "empty"),
        (["train", "--data", str(binary), "--out", out], "UTF-8"),
        (["train", "--data", str(no_train), "--out", out], "train"),
        (["train", "--data", str(short), "--out", out], "too short"),
        (["train", "--data", str(corpus), "--cell", "transformer", "--out", out], "transformer"),
        (["train", "--data", str(corpus), "--emsize", "10", "--nhid", "20", "--out", out], "--tied"),
        (["train", "--data", str(corpus), "--dropout", "1.5", "--out", out], "--dropout"),
        (["train", "--data", str(corpus), "--config", str(bad_toml), "--out", out], "TOML"),
        (
            ["train", "--data", str(corpus), "--cell", "gru", "--forget-bias", "2", "--out", out],
            "forget-bias",
        ),
        (["train", "--out", str(not_a_run), "--resume"], "nothing to resume"),
        (["train", "--data", str(corpus), "--batch-size", "0", "--out", out], "--batch-size"),
        (["eval", str(not_a_run)], "not an lstmlm run"),
        (["eval", str(tmp / "nowhere")], "not found"),
        (["generate", str(not_a_run)], "not an lstmlm run"),
        (["info", str(not_a_run)], "not an lstmlm run"),
        (["train", "--nope"], "No such option"),
        (["train", "--data", str(corpus), "--epochs", "-1", "--out", out], "--epochs"),
        (["train", "--data", str(corpus), "--optimizer", "lbfgs", "--out", out], "--optimizer"),
        (["train", "--data", str(corpus), "--resume", "--overwrite", "--out", out], "contradict"),
        (["eval", str(not_a_run), "--device", "tpu"], "--device"),
        (["generate", str(not_a_run), "--top-p", "0"], "--top-p"),
        (["generate", str(not_a_run), "--max-tokens", "0"], "--max-tokens"),
        (["agreement", str(not_a_run)], "not an lstmlm run"),
        (["agreement", str(not_a_run), "--suite", str(tmp / "missing.jsonl")], "suite file not found"),
        (["agreement", str(not_a_run), "--suite", str(bad_toml)], "not valid JSON"),
        (["agreement", str(not_a_run), "--by", ","], "--by"),
        (["train", "--data", str(corpus), "--precision", "fp8", "--out", out], "--precision"),
        (["train", "--data", str(corpus), "--max-bad-steps", "0", "--out", out], "--max-bad-steps"),
        (["train", "--data", str(corpus), "--anneal-factor", "0.5", "--out", out], "--anneal-factor"),
        (["train", "--data", str(corpus), "--save-every-minutes", "-1", "--out", out], "minutes"),
        (["train", "--data", str(corpus), "--cell", "mlstm", "--nhid", "30", "--emsize", "30", "--heads", "4",
          "--out", out], "does not divide the hidden size 30"),
        (["train", "--data", str(corpus), "--cell", "lstm", "--heads", "2", "--out", out], "--heads applies"),
        (["train", "--data", str(corpus), "--cell", "mingru", "--weight-drop", "0.5", "--out", out], "W_hh"),
        (["train", "--data", str(corpus), "--cell", "slstm", "--layer-sizes", "8,16", "--no-tied",
          "--out", out], "equal --layer-sizes"),
    ]  # fmt: skip


def test_bad_input_gives_one_line_and_exit_1(tiny_corpus: Path, tmp_path: Path) -> None:
    for args, expected in _bad_inputs(tmp_path, tiny_corpus):
        result = runner.invoke(app, args)
        where = " ".join(args)
        assert result.exit_code == 1, f"{where}: exit {result.exit_code}\n{result.output}{result.stderr}"
        assert expected in result.stderr, f"{where}: {result.stderr!r}"
        assert len(result.stderr.strip().splitlines()) == 1, f"{where}: {result.stderr!r}"
        assert "Traceback" not in result.output + result.stderr, where


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


def fail_writes_under(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a full disk: fsync of any file under ``folder`` fails with ENOSPC."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if folder.resolve() in Path(os.readlink(f"/proc/self/fd/{fd}")).parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_full_disk_gives_one_line_and_leaves_the_run_intact(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = make_untrained_run(tmp_path / "run", tiny_corpus)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fail_writes_under(out, monkeypatch)
    result = runner.invoke(app, ["train", "--out", str(out), "--resume", "--max-steps", "5"])
    assert result.exit_code == 1, result.output + result.stderr
    error = f"error: cannot write {out / run_folder.CONFIG}: No space left on device"
    assert result.stderr.strip().splitlines()[-1] == error  # after the "no checkpoint yet" warning
    assert "Traceback" not in result.output + result.stderr
    assert {
        p.name: p.read_bytes() for p in out.iterdir() if p.name != run_folder.LOCK
    } == before  # no temp files
