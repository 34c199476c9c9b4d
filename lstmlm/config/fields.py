"""Where an option is declared: ``option()`` (default, help, choices, resumable), the choices
and limits the sections share, and the checks that turn a bad value into one line.

A field declared with ``option()`` is a ``train`` flag and a TOML key at once
(``lstmlm.cli.options`` builds the flags from it); ``derived()`` marks a field lstmlm fills
in itself. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import field, fields
from typing import Any

from lstmlm.errors import LstmlmError

FUSED_CELLS = ("lstm", "gru", "rnn-tanh", "rnn-relu")
XLSTM_CELLS = ("slstm", "mlstm")  # Beck et al. 2024: residual blocks with heads
MIN_CELLS = ("minlstm", "mingru")  # Feng et al. 2024: gates of the input alone, a parallel scan
CUSTOM_CELLS = (
    "lstm-eq",
    "peephole",
    "coupled",
    "gru-eq",
    "depth-gated",
    "mogrifier",
    *XLSTM_CELLS,
    *MIN_CELLS,
)
CELLS = FUSED_CELLS + CUSTOM_CELLS
LSTM_TYPE_CELLS = ("lstm", "lstm-eq", "peephole", "coupled", "depth-gated", "mogrifier")
TOKENIZERS = ("word", "char", "bpe")
PRE_TOKENIZERS = ("whitespace", "punct", "wikitext")  # data/pre_tokenize.py
OPTIMIZERS = ("sgd", "adamw", "ntasgd")
SCHEDULES = ("plateau", "cosine", "linear", "constant", "stlr")  # stlr: Howard & Ruder 2018
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SOFTMAXES = ("full", "adaptive", "mos")  # mos: Yang et al. 2018, model/mixture.py
DEFAULT_MOS_EXPERTS = 5  # the paper used 15 (PTB); each expert costs about one decoder per step
DEFAULT_LR = {"sgd": 20.0, "adamw": 2e-3, "ntasgd": 30.0}  # ntasgd: AWD-LSTM's
XLSTM_SGD_LR = 5.0  # slstm/mlstm's layer-normed residual blocks diverge at sgd's 20 (docs/cells.md)
DEFAULT_FORGET_BIAS = 1.0  # Jozefowicz et al. (2015)
DEFAULT_HEADS = 4  # heads per xLSTM block, as in the paper's language models
DEFAULT_MOGRIFY_ROUNDS = 5  # Melis et al. 2020: their WikiText-2 model (PTB: 6)
MAX_SEED = 2**64 - 1  # torch.manual_seed's range
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise LstmlmError(f"--{name} must be one of {', '.join(allowed)} (got {value!r})")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        bound = ">= 0" if allow_zero else "> 0"
        raise LstmlmError(f"--{name} must be {bound} (got {value})")


def model_parts(nlayers: int) -> tuple[str, ...]:
    """The parts ``--freeze`` names and the layers of ``--layer-lr-decay`` and ``--unfreeze-every``,
    bottom to top: the embedding, each recurrent layer, the decoder (the output layer)."""
    return ("embedding", *(f"rnn.{i}" for i in range(nlayers)), "decoder")


def parse_parts(text: str) -> tuple[str, ...]:
    """``--freeze``'s comma-separated part names, each checked for its form (not yet against nlayers)."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    for name in names:
        index = name.removeprefix("rnn.")
        if name not in ("embedding", "decoder") and not (name.startswith("rnn.") and index.isdigit()):
            raise LstmlmError(
                f"--freeze: unknown part {name!r} (the parts: embedding, rnn.0, rnn.1, ..., decoder)"
            )
    return names


def check_frozen_parts(frozen: tuple[str, ...], nlayers: int, tied: bool) -> None:
    """Every frozen part exists, and something is left to train (with tied weights a frozen
    decoder freezes the shared matrix, which is all the embedding holds)."""
    parts = model_parts(nlayers)
    unknown = [name for name in frozen if name not in parts]
    if unknown:
        raise LstmlmError(
            f"--freeze: no part {unknown[0]!r} in a model of {nlayers} recurrent layer(s) "
            f"(its parts: {', '.join(parts)})"
        )
    held = set(frozen) | ({"embedding"} if tied and "decoder" in frozen else set())
    if held >= set(parts):
        why = "" if "embedding" in frozen else " (with tied weights the decoder holds the embedding)"
        raise LstmlmError(f"--freeze {','.join(frozen)} freezes the whole model{why}: nothing would train")


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] = (),
    resumable: bool = False,
    flag: str | None = None,
    shown: str | None = None,
) -> Any:
    """A settings field that is also a command-line flag: its default, help and choices live here.

    The CLI builds ``--name`` from it (``lstmlm.cli.options``; ``flag`` renames it), the TOML
    key is the field name, ``shown`` is the default as ``--help`` says it when the value
    itself is derived (None), and ``resumable`` says whether ``train --resume`` may change
    it (it may when the setting alters neither the model, the data nor the arithmetic of
    the steps taken).
    """
    meta = {"help": help, "choices": choices, "resumable": resumable, "flag": flag, "shown": shown}
    return field(default=default, metadata=meta)


def derived(default: Any, note: str) -> Any:
    """A config field filled in by lstmlm, not by the user: no flag, no TOML key to set."""
    return field(default=default, metadata={"derived": note})


def check_choices(config: Any) -> None:
    for f in fields(config):
        if f.metadata.get("choices"):
            check_choice(f.name.replace("_", "-"), getattr(config, f.name), f.metadata["choices"])


def build_section(kind: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise LstmlmError(f"{where} must be a table")
    names = {f.name for f in fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise LstmlmError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    hints = typing.get_type_hints(kind)
    for name, value in values.items():
        if not _has_type(value, hints[name]):
            raise LstmlmError(f"{where}: {name} must be {_type_name(hints[name])} (got {_show(value)})")
    try:
        return kind(**values)
    except TypeError as e:
        raise LstmlmError(f"{where}: {e}") from None


def _has_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint`` (int, float, bool, str, a list of one of those, or a union)."""
    if _is_union(hint):
        return any(_has_type(value, arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_has_type(item, typing.get_args(hint)[0]) for item in value)
    if hint is type(None):
        return value is None
    if hint not in TYPE_NAMES:
        return True  # other kinds are the dataclass's to check
    if isinstance(value, bool):
        return hint is bool
    return isinstance(value, int | float) if hint is float else isinstance(value, hint)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _type_name(hint: Any) -> str:
    """``int`` -> "an integer"; ``str | None`` -> "a string" (None means unset)."""
    args = typing.get_args(hint) if _is_union(hint) else (hint,)
    return " or ".join(_one_type_name(arg) for arg in args if arg is not type(None))


def _one_type_name(hint: Any) -> str:
    if typing.get_origin(hint) is list:  # list[str] -> "a list of strings"
        return "a list of " + TYPE_NAMES[typing.get_args(hint)[0]].split(" ", 1)[1] + "s"
    return TYPE_NAMES.get(hint, str(hint))


def _show(value: Any) -> str:
    """``value`` as TOML/JSON would spell it (true, "fast", 1.5)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
