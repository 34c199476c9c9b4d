"""Command-line options: the ``train`` flags derived from the config, and the shared ones.

Each config field is declared once, in ``lstmlm.config`` (default, help, choices, whether
a resume may change it). ``config_flags`` turns every such field into a ``--flag`` of a
command, with that default shown in ``--help``; the command receives only the flags
given on the command line, so a TOML file's values are not overridden by defaults.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import Field
from pathlib import Path
from typing import Annotated, Any

import typer

from lstmlm.config import DEVICES, SECTIONS, settable_fields

Flags = dict[str, dict[str, Any]]  # section -> field -> value given on the command line
PANELS = {"data": "Data", "model": "Model", "train": "Training"}


def choices(values: tuple[str, ...]) -> str:
    return "[" + "|".join(values) + "]"


RunDir = Annotated[Path, typer.Argument(help="A run folder written by `lstmlm train`.", show_default=False)]
JsonOut = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.", metavar="")
]
Device = Annotated[str, typer.Option(metavar=choices(DEVICES), help="Where to run (auto: cuda, mps, cpu).")]
LastWeights = Annotated[
    bool, typer.Option("--last", help="Use the latest weights instead of the best on valid.", metavar="")
]
Suite = Annotated[
    str,
    typer.Option(
        help="Minimal pairs: 'default' (the grammar's suite), a BLiMP-style JSONL file, or a Hugging Face "
        "dataset with sentence_good/sentence_bad columns (a save_to_disk folder, or hub NAME[:CONFIG])."
    ),
]


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_option(section: str, f: Field[Any], hint: Any) -> Any:
    """The ``typer.Option`` of config field ``f``: its flag, help, choices and shown default."""
    names = [flag_name(f.name)]
    metavar = None
    if hint is bool:
        names = [f"{names[0]}/--no-{names[0][2:]}"]
        metavar = ""  # a switch has no value to describe
    elif f.metadata["choices"]:
        metavar = choices(f.metadata["choices"])
    return typer.Option(*names, help=f.metadata["help"], metavar=metavar, rich_help_panel=PANELS[section])


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per settable config field, defaulting to the field's default."""
    params = []
    for section, f in settable_fields():
        hint = typing.get_type_hints(SECTIONS[section])[f.name]
        annotation = Annotated[hint, config_option(section, f, hint)]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                        annotation=annotation))  # fmt: skip
    return params


def config_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add a flag per config field to ``command``, which gets them as ``flags: Flags``.

    ``flags`` holds only the fields given on the command line, by section: defaults come
    from the config classes themselves, below any TOML file's values.
    """
    own = inspect.signature(command)
    hints = typing.get_type_hints(command, include_extras=True)
    kept = [p.replace(annotation=hints[p.name]) for p in own.parameters.values() if p.name != "flags"]
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    derived = config_parameters()

    @functools.wraps(command)
    def run(ctx: typer.Context, **values: Any) -> Any:
        flags: Flags = {section: {} for section in SECTIONS}
        for section, f in settable_fields():
            value = values.pop(f.name)
            if _given(ctx, f.name):
                flags[section][f.name] = value
        return command(**values, flags=flags)

    del run.__wrapped__  # typer reads the signature below, not the command's
    params = [context, *kept, *derived]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether ``--name`` was on the command line (click's ParameterSource, by name: typer
    vendors click from 0.2x on)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
