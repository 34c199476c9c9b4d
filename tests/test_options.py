"""Each option is declared once (lstmlm.config) and the CLI derives its flags from there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from lstmlm.cli import app
from lstmlm.cli.options import config_flags, flag_name
from lstmlm.config import SECTIONS, load_toml, resolve, resumable_fields, settable_fields


def _train_params() -> dict[str, typer.core.TyperOption]:
    command = get_command(app).commands["train"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def _help(command: str) -> str:
    """``lstmlm COMMAND --help`` wide enough that each option sits on one line."""
    return CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "2000"}).output


def test_every_config_field_has_a_train_flag_or_is_derived() -> None:
    params = _train_params()
    for section, kind in SECTIONS.items():
        for f in dataclasses.fields(kind):
            if "derived" in f.metadata:
                assert f.name not in params, f"{section}.{f.name} is derived but has a flag"
            else:
                assert f.name in params, f"{section}.{f.name} has no train flag"
                assert flag_name(f.name) in params[f.name].opts
    derived = [
        f.name for kind in SECTIONS.values() for f in dataclasses.fields(kind) if "derived" in f.metadata
    ]
    assert derived == ["ntoken"]


def test_shown_defaults_are_the_real_defaults() -> None:
    """The flag's default is the field's own, and help shows that value, not a hand-typed one."""
    params = _train_params()
    for _, f in settable_fields():
        param = params[f.name]
        assert param.default == f.default, f.name
        assert param.show_default is not False and not isinstance(param.show_default, str), f.name


def test_help_shows_each_default_as_declared() -> None:
    output = _help("train")
    lines = {line.split()[1]: line for line in output.splitlines() if line.startswith("│ --")}
    for _, f in settable_fields():
        line = lines[flag_name(f.name)]
        if isinstance(f.default, bool):
            shown = flag_name(f.name)[2:] if f.default else f"no-{flag_name(f.name)[2:]}"
        else:
            shown = None if f.default in (None, "") else str(f.default)
        if shown is None:
            assert "[default:" not in line, line
        else:
            assert f"[default: {shown}]" in line, line


def test_booleans_are_switches_without_a_type() -> None:
    output = _help("train")
    assert "<bool>" not in output
    assert "--tied" in output and "--no-tied" in output
    assert "--compile" in output and "--no-compile" in output


def test_only_given_flags_reach_the_config() -> None:
    seen: dict = {}
    probe = typer.Typer()

    @probe.command()
    @config_flags
    def command(flags: dict | None = None) -> None:
        seen.update(flags or {})

    result = CliRunner().invoke(probe, ["--bptt", "7", "--no-tied", "--cell", "gru"])
    assert result.exit_code == 0, result.output
    assert seen == {"model": {"tied": False, "cell": "gru"}, "data": {}, "train": {"bptt": 7}}
    file_values = {"train": {"bptt": 9, "epochs": 3}}
    config = resolve(file_values, {"model": {}, "data": {}, "train": {"epochs": 4}})
    assert (config.train.bptt, config.train.epochs) == (9, 4)  # a flag beats the file, defaults do not


def test_resumable_settings_are_the_cadence_and_the_runtime() -> None:
    assert resumable_fields() == {
        "model": set(),
        "data": set(),
        "train": {
            "epochs", "max_steps", "eval_every", "log_every", "save_every", "save_every_minutes",
            "max_bad_steps", "device", "eval_batch_size", "precision", "compile", "max_time", "patience",
        },
    }  # fmt: skip


def test_eval_data_defaults_to_the_runs_data() -> None:
    output = _help("eval")
    data_line = next(line for line in output.splitlines() if line.startswith("│ --data"))
    assert "the run's own data" in data_line and "default corpus" not in data_line


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("configs/*.toml")), ids=str)
def test_every_preset_is_a_valid_config(path: Path) -> None:
    config = resolve(load_toml(path), {"model": {}, "data": {}, "train": {}})
    assert config.train.lr > 0
