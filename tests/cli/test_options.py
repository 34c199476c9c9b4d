"""Each option is declared once (lstmlm.config) and the CLI derives its flags from there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.main import get_command

from lstmlm.cli import app
from lstmlm.cli.options import EVAL_FLAGS, config_flags, flag_name
from lstmlm.config import SECTIONS, resolve, settable_fields
from lstmlm.evaluation.settings import DEFAULT_DYNAMIC_LR, CacheSettings, DynamicSettings
from tests.conftest import invoke


def _train_params() -> dict[str, typer.core.TyperOption]:
    command = get_command(app).commands["train"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def _help(command: str) -> str:
    """``lstmlm COMMAND --help`` wide enough that each option sits on one line."""
    return invoke(command, "--help", env={"COLUMNS": "2000"}).output


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

    result = invoke("--bptt", "7", "--no-tied", "--cell", "gru", app=probe)
    assert result.exit_code == 0, result.output
    assert seen == {"model": {"tied": False, "cell": "gru"}, "data": {}, "train": {"bptt": 7}}
    file_values = {"train": {"bptt": 9, "epochs": 3}}
    config = resolve(file_values, {"model": {}, "data": {}, "train": {"epochs": 4}})
    assert (config.train.bptt, config.train.epochs) == (9, 4)  # a flag beats the file, defaults do not


def test_eval_data_defaults_to_the_runs_data() -> None:
    output = _help("eval")
    data_line = next(line for line in output.splitlines() if line.startswith("│ --data"))
    assert "the run's own data" in data_line and "default corpus" not in data_line


# ---------------------------------------------------------------- eval: the methods' settings


def _eval_params() -> dict[str, typer.core.TyperOption]:
    command = get_command(app).commands["eval"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def test_every_method_setting_with_help_has_an_eval_flag() -> None:
    """--dynamic-* and --cache-* come from DynamicSettings and CacheSettings, one flag per
    declared field, with the field's own default; undeclared fields (epsilon) have none."""
    params = _eval_params()
    for group in EVAL_FLAGS:
        declared = group.fields()
        assert declared, group.name
        for f in declared:
            param = params[group.parameter(f)]
            assert group.flag(f) in param.opts
            assert param.default == f.default, f.name
    assert "dynamic_epsilon" not in params and "dynamic_stats_batch" not in params  # no help: no flag
    assert params["cache_lambda"].opts == ["--cache-lambda"]  # the field is "lam"


def test_eval_help_shows_each_method_default_as_declared() -> None:
    output = _help("eval")
    lines = {line.split()[1]: line for line in output.splitlines() if line.startswith("│ --")}
    assert "[default: rms]" in lines["--dynamic-method"]
    assert f"[default: {DynamicSettings().segment}]" in lines["--dynamic-segment"]
    assert f"[default: {CacheSettings().window}]" in lines["--cache-window"]
    assert f"[default: {CacheSettings().lam}]" in lines["--cache-lambda"]
    rates = ", ".join(f"{method} {lr:g}" for method, lr in DEFAULT_DYNAMIC_LR.items())
    assert rates in lines["--dynamic-lr"]


def test_only_given_method_flags_reach_the_settings(
    monkeypatch: pytest.MonkeyPatch, trained_run: Path
) -> None:
    """``eval --cache --cache-window 7`` builds CacheSettings(window=7) and nothing else; a method
    flag without its switch is a one-line error."""
    seen: dict[str, object] = {}

    def fake_evaluate_run(run: object, split: str, data: object, **methods: object) -> dict[str, object]:
        seen.update(methods)
        return {"split": split, "perplexity": 1.0, "loss": 0.0, "tokens": 1}

    monkeypatch.setattr("lstmlm.evaluation.methods.evaluate_run", fake_evaluate_run)
    result = invoke("eval", str(trained_run), "--cache", "--cache-window", "7", "--json")
    assert result.exit_code == 0, result.output
    assert seen["cache"] == CacheSettings(window=7) and seen["dynamic"] is None
    refused = invoke("eval", str(trained_run), "--dynamic-segment", "3")
    assert refused.exit_code == 1 and "--dynamic-segment: only with --dynamic" in refused.stderr
