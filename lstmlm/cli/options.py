"""Command-line options: flags derived from the settings dataclasses, and the shared ones.

Each setting is declared once, with ``lstmlm.config.fields.option`` (default, help, choices,
whether a resume may change it): the run config's fields for ``train``, the evaluation
methods' settings for ``eval``. ``settings_flags`` turns every such field into a ``--flag``
of a command, with that default shown in ``--help``; the command receives only the flags
given on the command line, so a TOML file's values are not overridden by defaults.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import Field, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from lstmlm.config import DEVICES, SECTIONS
from lstmlm.evaluation.settings import CacheSettings, DynamicSettings
from lstmlm.runtime import threads as thread_policy

Flags = dict[str, dict[str, Any]]  # group (config section, method) -> field -> value given


def choices(values: tuple[str, ...]) -> str:
    return "[" + "|".join(values) + "]"


RunDir = Annotated[Path, typer.Argument(help="A run folder written by `lstmlm train`.", show_default=False)]
JsonOut = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.", metavar="")
]
Device = Annotated[str, typer.Option(metavar=choices(DEVICES), help="Where to run (auto: cuda, mps, cpu).")]
Threads = Annotated[
    str | None,
    typer.Option(
        metavar="<n|auto>",
        help=f"CPU threads to compute with. auto: ${thread_policy.THREADS_VARIABLE}, else $OMP_NUM_THREADS, "
        "else the physical cores.",
        show_default="auto",
    ),
]
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


def use_threads(value: str | None) -> None:
    """Set the thread count of a command that computes: ``--threads``, else the policy's default."""
    thread_policy.use_threads(None if value is None else thread_policy.parse_threads(value))


@dataclass(frozen=True)
class FlagGroup:
    """The flags of one settings dataclass: ``--{prefix}{field}`` in help panel ``panel``."""

    name: str  # the key of these flags in ``Flags``
    settings: type
    panel: str
    prefix: str = ""

    def fields(self) -> list[Field[Any]]:
        """The fields that are flags (declared with ``option()``), in declaration order."""
        return [f for f in fields(self.settings) if "help" in f.metadata]

    def flag(self, f: Field[Any]) -> str:
        return "--" + self.prefix + (f.metadata.get("flag") or f.name).replace("_", "-")

    def parameter(self, f: Field[Any]) -> str:
        return self.flag(f)[2:].replace("-", "_")


TRAIN_FLAGS = tuple(
    FlagGroup(name, SECTIONS[name], panel)
    for name, panel in (("model", "Model"), ("data", "Data"), ("train", "Training"))
)
EVAL_FLAGS = (
    FlagGroup("dynamic", DynamicSettings, "Dynamic evaluation", "dynamic-"),
    FlagGroup("cache", CacheSettings, "Continuous cache", "cache-"),
)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def declared_option(group: FlagGroup, f: Field[Any], hint: Any) -> Any:
    """The ``typer.Option`` of settings field ``f``: its flag, help, choices and shown default."""
    names = [group.flag(f)]
    metavar = None
    if hint is bool:
        names = [f"{names[0]}/--no-{names[0][2:]}"]
        metavar = ""  # a switch has no value to describe
    elif f.metadata["choices"]:
        metavar = choices(f.metadata["choices"])
    elif _flag_type(hint) is not hint:
        metavar = "<str>"  # a repeatable flag takes one value each time, not a list
    shown = f.metadata.get("shown")
    return typer.Option(
        *names,
        help=f.metadata["help"],
        metavar=metavar,
        rich_help_panel=group.panel,
        **({"show_default": shown} if shown else {}),
    )


def declared_parameters(groups: tuple[FlagGroup, ...]) -> list[inspect.Parameter]:
    """One keyword parameter per flag field of ``groups``, defaulting to the field's default."""
    params = []
    for group in groups:
        hints = typing.get_type_hints(group.settings)
        for f in group.fields():
            option = declared_option(group, f, hints[f.name])
            annotation = Annotated[_flag_type(hints[f.name]), option]  # type: ignore[valid-type]  # built at run time
            kind = inspect.Parameter.KEYWORD_ONLY
            params.append(
                inspect.Parameter(group.parameter(f), kind, default=f.default, annotation=annotation)
            )
    return params


def _flag_type(hint: Any) -> Any:
    """A field that takes one value or a list (``str | list[str] | None``) is a repeatable flag."""
    lists = [arg for arg in typing.get_args(hint) if typing.get_origin(arg) is list]
    return lists[0] | None if lists else hint


def settings_flags(*groups: FlagGroup) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add a flag per settings field of ``groups`` to a command, which gets them as ``flags: Flags``.

    ``flags`` holds only the fields given on the command line, by group: defaults come from
    the settings classes themselves (below any TOML file's values, for ``train``).
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command)
        hints = typing.get_type_hints(command, include_extras=True)
        kept = [p.replace(annotation=hints[p.name]) for p in own.parameters.values() if p.name != "flags"]
        context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)

        @functools.wraps(command)
        def run(ctx: typer.Context, **values: Any) -> Any:
            flags: Flags = {group.name: {} for group in groups}
            for group in groups:
                for f in group.fields():
                    value = values.pop(group.parameter(f))
                    if _given(ctx, group.parameter(f)):
                        flags[group.name][f.name] = value
            return command(**values, flags=flags)

        del run.__wrapped__  # typer reads the signature below, not the command's
        params = [context, *kept, *declared_parameters(groups)]
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # read by inspect/typer
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate


config_flags = settings_flags(*TRAIN_FLAGS)  # train: every field of the run config


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether ``--name`` was on the command line (click's ParameterSource, by name: typer
    vendors click from 0.2x on)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
