"""Settings from a TOML file, merged with flags; which settings a resume may change; the presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from lstmlm.cli.options import config_flags
from lstmlm.config import RunConfig, load_toml, resolve, resumable_fields
from lstmlm.errors import LstmlmError
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


# ---------------------------------------------------------------- paths in a config file


def test_relative_data_paths_are_read_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs, elsewhere = tmp_path / "configs", tmp_path / "elsewhere"
    (configs / "corpus").mkdir(parents=True)
    (elsewhere / "corpus").mkdir(parents=True)  # the same names where lstmlm runs: not read
    toml = configs / "c.toml"
    toml.write_text(
        '[data]\ndata = ["corpus", "shards/*.txt"]\nvalid_data = "dev.txt"\ntest_data = "/abs/test.txt"\n'
    )
    monkeypatch.chdir(elsewhere)
    data = load_toml(Path("../configs/c.toml"))["data"]
    assert data["data"] == [str(configs / "corpus"), str(configs / "shards" / "*.txt")]
    assert data["valid_data"] == str(configs / "dev.txt")  # missing: its error will name this path
    assert data["test_data"] == "/abs/test.txt"


def test_a_dataset_name_in_a_config_file_stays_a_name(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[data]\ndata = "someone/tiny-corpus"\n')
    assert load_toml(toml)["data"]["data"] == "someone/tiny-corpus"
    (tmp_path / "someone").mkdir()  # now a folder there: a path after all
    assert load_toml(toml)["data"]["data"] == str(tmp_path / "someone" / "tiny-corpus")


def test_data_of_the_wrong_type_is_one_line(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[data]\ndata = 5\n")
    with pytest.raises(LstmlmError, match=r"\[data\]: data must be a string or a list of strings \(got 5\)"):
        load_toml(toml)


def test_repeated_data_flags_are_all_kept() -> None:
    seen: dict = {}
    probe = typer.Typer()

    @probe.command()
    @config_flags
    def command(flags: dict | None = None) -> None:
        seen.update(flags or {})

    result = invoke("--data", "a.txt", "--data", "b/", "--valid-data", "dev.txt", app=probe)
    assert result.exit_code == 0, result.output
    assert seen["data"] == {"data": ["a.txt", "b/"], "valid_data": "dev.txt"}
    assert resolve({}, seen).data.data == ["a.txt", "b/"]
    invoke("--data", "a.txt", app=probe)
    assert resolve({}, seen).data.data == "a.txt"  # one source stays a string, as in old config.json


# ---------------------------------------------------------------- a run's config.json as --config


def saved_config(folder: Path, **train: object) -> Path:
    """A run's config.json as train writes it: ntoken and the defaulted lr filled in."""
    model = {"emsize": 16, "nhid": 16, "nlayers": 1, "ntoken": 57, "layer_sizes": "", "cell": "gru"}
    config = RunConfig.from_dict({"model": model, "data": {"data": "corpus.txt"}, "train": train})
    folder.mkdir()
    (folder / run_folder.CONFIG).write_text(config.to_json())
    return folder / run_folder.CONFIG


def test_a_runs_config_json_is_a_config_file(tmp_path: Path) -> None:
    path = saved_config(tmp_path / "run", bptt=7)
    values = load_toml(path)
    assert "ntoken" not in values["model"] and "lr" not in values["train"]  # lstmlm fills them in again
    assert values["data"]["data"] == str(tmp_path / "run" / "corpus.txt")
    config = resolve(values, {"model": {}, "data": {}, "train": {"optimizer": "adamw"}})
    assert (config.model.cell, config.model.ntoken, config.train.bptt) == ("gru", 0, 7)
    assert config.train.lr == 2e-3  # adamw's default, not the sgd default the run was given


def test_a_runs_chosen_lr_and_layer_sizes_are_kept(tmp_path: Path) -> None:
    path = saved_config(tmp_path / "run", lr=3.0)
    raw = json.loads(path.read_text())
    raw["model"].update(layer_sizes="24,16", nlayers=2, nhid=16)
    path.write_text(json.dumps(raw))
    config = resolve(load_toml(path), {"model": {"layer_sizes": "32,32,16"}, "data": {}, "train": {}})
    assert config.train.lr == 3.0 and (config.model.nlayers, config.model.nhid) == (3, 16)


def test_a_config_json_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(LstmlmError, match=r"config\.json: not valid JSON"):
        load_toml(bad)
    bad.write_text('{"model": 3}')
    with pytest.raises(LstmlmError, match=r"config\.json: not an lstmlm config"):
        load_toml(bad)


def test_train_accepts_a_runs_config_json(tiny_corpus: Path, tmp_path: Path) -> None:
    path = saved_config(tmp_path / "old", bptt=6, batch_size=2, max_steps=2)
    out = tmp_path / "new"
    result = invoke("train", "--config", str(path), "--data", str(tiny_corpus), "--out", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / run_folder.CONFIG).read_text())
    assert config["model"]["cell"] == "gru" and config["train"]["bptt"] == 6
