"""Run configuration: one validated dataclass per concern, combined into ``RunConfig``.

Precedence: dataclass defaults < ``--config FILE.toml`` < command-line flags.
The resolved ``RunConfig`` is written to ``config.json`` in every run folder and
is enough to rebuild the tokenizer's data pipeline, the model and the training.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from lstmlm.errors import LstmlmError

FUSED_CELLS = ("lstm", "gru", "rnn-tanh", "rnn-relu")
CUSTOM_CELLS = ("lstm-eq", "peephole", "coupled", "gru-eq", "depth-gated")
CELLS = FUSED_CELLS + CUSTOM_CELLS
LSTM_TYPE_CELLS = ("lstm", "lstm-eq", "peephole", "coupled", "depth-gated")
TOKENIZERS = ("word", "char", "bpe")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("plateau", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_LR = {"sgd": 20.0, "adamw": 2e-3}
MAX_SEED = 2**64 - 1  # torch.manual_seed's range
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise LstmlmError(f"--{name} must be one of {', '.join(allowed)} (got {value!r})")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        bound = ">= 0" if allow_zero else "> 0"
        raise LstmlmError(f"--{name} must be {bound} (got {value})")


@dataclass
class ModelConfig:
    """Embedding -> recurrent stack -> dropout -> linear decoder."""

    cell: str = "lstm"
    ntoken: int = 0  # vocabulary size, filled in from the tokenizer
    emsize: int = 200
    nhid: int = 200
    nlayers: int = 2
    dropout: float = 0.2
    tied: bool = True
    forget_bias: float = 1.0  # Jozefowicz et al. (2015); LSTM-type cells only

    def __post_init__(self) -> None:
        _choice("cell", self.cell, CELLS)
        for name in ("emsize", "nhid", "nlayers"):
            _positive(name, getattr(self, name))
        _positive("ntoken", self.ntoken, allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise LstmlmError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if self.tied and self.emsize != self.nhid:
            raise LstmlmError(
                f"--tied needs --emsize equal to --nhid (got {self.emsize} and {self.nhid}); "
                "make them equal or pass --no-tied"
            )
        if not math.isfinite(self.forget_bias):
            raise LstmlmError(f"--forget-bias must be finite (got {self.forget_bias})")


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes token ids."""

    data: str | None = None  # file, folder, HF dataset name or saved dataset; None = default corpus
    tokenizer: str = "word"
    vocab_size: int = 0  # cap on the vocabulary; 0 = no cap (word/char) or 8192 (bpe)
    min_freq: int = 1
    text_column: str = "text"
    train_split: str = "train"
    valid_split: str = "validation"
    test_split: str = "test"
    dataset_config: str | None = None

    def __post_init__(self) -> None:
        _choice("tokenizer", self.tokenizer, TOKENIZERS)
        _positive("vocab-size", self.vocab_size, allow_zero=True)
        _positive("min-freq", self.min_freq)
        if self.tokenizer == "bpe" and 0 < self.vocab_size < 260:
            raise LstmlmError(
                f"--vocab-size for bpe must be at least 260 (256 bytes + specials); got {self.vocab_size}"
            )


@dataclass
class TrainConfig:
    """The optimisation: truncated BPTT, clipping, schedule, evaluation and saving cadence."""

    bptt: int = 35
    batch_size: int = 20
    eval_batch_size: int = 10
    optimizer: str = "sgd"
    lr: float = 0.0  # 0 = the optimizer's default (sgd 20, adamw 2e-3)
    weight_decay: float = 0.0
    clip: float = 0.25
    schedule: str = "plateau"
    anneal_factor: float = 4.0  # plateau: lr /= factor when valid loss does not improve
    epochs: int = 10
    max_steps: int = 0  # 0 = no limit
    eval_every: int = 0  # steps; 0 = once per epoch only
    log_every: int = 50
    save_every: int = 0  # steps; 0 = at evaluations only
    save_every_minutes: float = 0.0
    max_bad_steps: int = 5  # consecutive non-finite steps before stopping
    seed: int = 1111
    device: str = "auto"
    precision: str = "auto"  # auto = bf16 on a CUDA GPU that supports it, else fp32
    compile: bool = False  # torch.compile the model for training

    def __post_init__(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.compile, bool):
            raise LstmlmError(f"compile must be true or false (got {self.compile!r})")
        for name in ("bptt", "batch_size", "eval_batch_size", "epochs", "log_every", "max_bad_steps"):
            _positive(name.replace("_", "-"), getattr(self, name))
        for name in ("lr", "weight_decay", "clip", "max_steps", "eval_every", "save_every"):
            _positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        _positive("save-every-minutes", self.save_every_minutes, allow_zero=True)
        if not 0 <= self.seed <= MAX_SEED:
            raise LstmlmError(f"--seed must be between 0 and 2**64-1 (got {self.seed})")
        if self.anneal_factor <= 1.0:
            raise LstmlmError(f"--anneal-factor must be > 1 (got {self.anneal_factor})")
        if self.lr == 0.0:
            self.lr = DEFAULT_LR[self.optimizer]


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> RunConfig:
        unknown = set(raw) - {"model", "data", "train"}
        if unknown:
            raise LstmlmError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
        return cls(
            model=_build(ModelConfig, raw.get("model", {}), f"{source} [model]"),
            data=_build(DataConfig, raw.get("data", {}), f"{source} [data]"),
            train=_build(TrainConfig, raw.get("train", {}), f"{source} [train]"),
        )


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _build(kind: type, values: dict[str, Any], where: str) -> Any:
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
    """Whether ``value`` fits ``hint`` (int, float, bool, str, or one of those ``| None``)."""
    if _is_union(hint):
        return any(_has_type(value, arg) for arg in typing.get_args(hint))
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
    return " or ".join(TYPE_NAMES.get(arg, str(arg)) for arg in args if arg is not type(None))


def _show(value: Any) -> str:
    """``value`` as TOML/JSON would spell it (true, "fast", 1.5)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file into a dict of sections (validated later, merged with flags)."""
    if not path.is_file():
        raise LstmlmError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LstmlmError(f"{path}: not valid TOML ({e})") from None
    RunConfig.from_dict(raw, source=str(path))  # validate keys and values early
    return raw


def resolve(file_values: dict[str, Any], flags: dict[str, dict[str, Any]]) -> RunConfig:
    """Merge defaults < TOML file values < flags (flags with value None are unset)."""
    merged: dict[str, dict[str, Any]] = {name: dict(file_values.get(name, {})) for name in SECTIONS}
    for section, values in flags.items():
        merged[section].update({k: v for k, v in values.items() if v is not None})
    return RunConfig.from_dict(merged)


def replace(config: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """A copy of ``config`` with some fields changed, re-validated."""
    raw = config.to_dict()
    for section, values in sections.items():
        raw[section].update(values)
    return RunConfig.from_dict(raw)


__all__ = [
    "CELLS",
    "PRECISIONS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "load_toml",
    "replace",
    "resolve",
]
