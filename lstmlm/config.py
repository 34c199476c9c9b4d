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
from dataclasses import Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from lstmlm.errors import LstmlmError

FUSED_CELLS = ("lstm", "gru", "rnn-tanh", "rnn-relu")
XLSTM_CELLS = ("slstm", "mlstm")  # Beck et al. 2024: residual blocks with heads
MIN_CELLS = ("minlstm", "mingru")  # Feng et al. 2024: gates of the input alone, a parallel scan
CUSTOM_CELLS = ("lstm-eq", "peephole", "coupled", "gru-eq", "depth-gated", *XLSTM_CELLS, *MIN_CELLS)
CELLS = FUSED_CELLS + CUSTOM_CELLS
LSTM_TYPE_CELLS = ("lstm", "lstm-eq", "peephole", "coupled", "depth-gated")
TOKENIZERS = ("word", "char", "bpe")
PRE_TOKENIZERS = ("whitespace", "punct", "wikitext")  # data/pre_tokenize.py
OPTIMIZERS = ("sgd", "adamw", "ntasgd")
SCHEDULES = ("plateau", "cosine", "linear", "constant")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SOFTMAXES = ("full", "adaptive")
DEFAULT_LR = {"sgd": 20.0, "adamw": 2e-3, "ntasgd": 30.0}  # ntasgd: AWD-LSTM's
XLSTM_SGD_LR = 5.0  # slstm/mlstm's layer-normed residual blocks diverge at sgd's 20 (README, "The cells")
DEFAULT_FORGET_BIAS = 1.0  # Jozefowicz et al. (2015)
DEFAULT_HEADS = 4  # heads per xLSTM block, as in the paper's language models
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


def option(default: Any, help: str, *, choices: tuple[str, ...] = (), resumable: bool = False) -> Any:
    """A config field that is also a ``train`` flag: its default, help and choices live here.

    The CLI builds ``--name`` from it (``lstmlm.cli.options``), the TOML key is the field
    name, and ``resumable`` says whether ``train --resume`` may change it (it may when the
    setting alters neither the model, the data nor the arithmetic of the steps taken).
    """
    meta = {"help": help, "choices": choices, "resumable": resumable}
    return field(default=default, metadata=meta)


def derived(default: Any, note: str) -> Any:
    """A config field filled in by lstmlm, not by the user: no flag, no TOML key to set."""
    return field(default=default, metadata={"derived": note})


def _check_choices(config: Any) -> None:
    for f in fields(config):
        if f.metadata.get("choices"):
            _choice(f.name.replace("_", "-"), getattr(config, f.name), f.metadata["choices"])


@dataclass
class ModelConfig:
    """Embedding -> recurrent stack -> dropout -> linear decoder.

    The AWD-LSTM regularisers (Merity, Keskar & Socher 2017, "Regularizing and Optimizing
    LSTM Language Models") are off by default; the paper's PTB model is ``--emsize 400
    --layer-sizes 1150,1150,400 --locked-dropout --dropouti 0.4 --dropouth 0.3 --dropout 0.4
    --dropoute 0.1 --weight-drop 0.5 --ar-alpha 2 --tar-beta 1`` (WT2: ``--dropouti 0.65``).
    """

    cell: str = option("lstm", "Recurrent cell.", choices=CELLS)
    ntoken: int = derived(0, "the vocabulary size, from the tokenizer")
    emsize: int = option(200, "Embedding size.")
    nhid: int = option(200, "Hidden units per layer.")
    nlayers: int = option(2, "Recurrent layers.")
    layer_sizes: str = option(
        "",
        "Hidden units of each layer, first to last, e.g. 1150,1150,400 (AWD-LSTM's PTB shape, with "
        "--emsize 400); sets --nlayers and --nhid (= the last size, the decoder's input). "
        "Empty: --nlayers layers of --nhid.",
    )
    dropout: float = option(
        0.2,
        "Dropout on the last layer's output (AWD-LSTM: 0.4), and on the embeddings and between layers "
        "unless --dropouti/--dropouth say.",
    )
    dropouti: float | None = option(
        None, "Dropout on the input embeddings (AWD-LSTM, PTB: 0.4, WT2: 0.65); unset: --dropout."
    )
    dropouth: float | None = option(
        None,
        "Dropout between recurrent layers (AWD-LSTM: PTB 0.3 in the paper, 0.25 in its code's README; "
        "WT2 0.2); unset: --dropout.",
    )
    locked_dropout: bool = option(
        False,
        "Locked (variational) dropout: one mask per stream for a whole BPTT window, at every dropout site "
        "(Gal & Ghahramani 2016; AWD-LSTM, Merity et al. 2017).",
    )
    dropoute: float = option(
        0.0, "Embedding dropout: drop whole words of the vocabulary for a step (AWD-LSTM: 0.1)."
    )
    weight_drop: float = option(
        0.0, "DropConnect on the recurrent weights W_hh of every layer, while training (AWD-LSTM: 0.5)."
    )
    ar_alpha: float = option(
        0.0, "Activation regularisation: alpha * mean(dropped last-layer output^2) (AWD-LSTM: 2)."
    )
    tar_beta: float = option(
        0.0, "Temporal activation regularisation: beta * mean((h_t - h_t-1)^2), last layer (AWD-LSTM: 1)."
    )
    tied: bool = option(True, "Share embedding and decoder weights (needs emsize == nhid).")
    softmax: str = option(
        "full",
        "Output layer: full softmax, or adaptive (Grave et al. 2017): the most frequent words in a head, "
        "the rest in clusters at --cutoffs, exact log-probabilities at a fraction of the cost.",
        choices=SOFTMAXES,
    )
    cutoffs: str = option(
        "2000,10000",
        "--softmax adaptive: the ids (frequency order) where the vocabulary is cut into head and clusters.",
    )
    forget_bias: float = option(
        DEFAULT_FORGET_BIAS, "Initial forget-gate bias of LSTM-type cells (Jozefowicz et al., 2015)."
    )
    heads: int = option(
        DEFAULT_HEADS,
        "--cell slstm/mlstm: heads per layer, an equal share of the units each (xLSTM).",
    )

    def __post_init__(self) -> None:
        _check_choices(self)
        for name in ("emsize", "nhid", "nlayers"):
            _positive(name, getattr(self, name))
        _positive("ntoken", self.ntoken, allow_zero=True)
        if self.layer_sizes.strip():
            self._take_layer_sizes()
        else:
            self.layer_sizes = ""
        for name in ("dropout", "dropouti", "dropouth", "dropoute", "weight_drop"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise LstmlmError(f"--{name.replace('_', '-')} must be in [0, 1) (got {value})")
        for name in ("ar_alpha", "tar_beta"):
            _positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        if not isinstance(self.locked_dropout, bool):
            raise LstmlmError(f"locked_dropout must be true or false (got {self.locked_dropout!r})")
        if self.tied and self.emsize != self.nhid:
            sizes = "the last of --layer-sizes" if self.layer_sizes else "--nhid"
            raise LstmlmError(
                f"--tied needs --emsize equal to {sizes} (got {self.emsize} and {self.nhid}); "
                "make them equal or pass --no-tied"
            )
        self._check_cutoffs()
        self._check_cell_options()

    def _check_cell_options(self) -> None:
        """The options that only some cells take, and the shapes some cells need."""
        equal_sizes = {"depth-gated": "a depth gate adds the lower layer's cell to its own"}
        equal_sizes |= dict.fromkeys(XLSTM_CELLS, "a residual block adds its input to its output")
        if self.cell in equal_sizes and len(set(self.hidden_sizes)) > 1:
            why = equal_sizes[self.cell]
            raise LstmlmError(f"--cell {self.cell} needs equal --layer-sizes (got {self.layer_sizes}): {why}")
        if not math.isfinite(self.forget_bias):
            raise LstmlmError(f"--forget-bias must be finite (got {self.forget_bias})")
        if self.forget_bias != DEFAULT_FORGET_BIAS and self.cell not in LSTM_TYPE_CELLS:
            raise LstmlmError(
                f"--forget-bias applies to LSTM-type cells ({', '.join(LSTM_TYPE_CELLS)}), not {self.cell}"
            )
        _positive("heads", self.heads)
        if self.heads != DEFAULT_HEADS and self.cell not in XLSTM_CELLS:
            raise LstmlmError(f"--heads applies to --cell {' and '.join(XLSTM_CELLS)}, not {self.cell}")
        if self.cell in XLSTM_CELLS and self.nhid % self.heads:
            raise LstmlmError(
                f"--heads {self.heads} does not divide the hidden size {self.nhid} of --cell {self.cell}: "
                "every head takes an equal share of the units"
            )
        if self.weight_drop and self.cell in XLSTM_CELLS + MIN_CELLS:
            raise LstmlmError(
                f"--weight-drop masks a recurrent matrix W_hh, which --cell {self.cell} does not have"
            )

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Hidden units of each layer, first to last."""
        if not self.layer_sizes:
            return (self.nhid,) * self.nlayers
        return tuple(int(size) for size in self.layer_sizes.split(","))

    @property
    def decoder_is_embedding(self) -> bool:
        """Whether the decoder's weight is the embedding matrix itself (tied, full softmax; a
        tied adaptive softmax takes slices of it instead)."""
        return self.tied and self.softmax == "full"

    @property
    def cutoff_values(self) -> tuple[int, ...]:
        """``cutoffs`` as integers: the first id of each adaptive-softmax cluster."""
        return tuple(int(part) for part in self.cutoffs.split(","))

    def _check_cutoffs(self) -> None:
        parts = [part.strip() for part in self.cutoffs.split(",")]
        if not all(part.isascii() and part.isdigit() and int(part) > 0 for part in parts):
            raise LstmlmError(
                "--cutoffs must be positive integers separated by commas, e.g. 2000,10000 "
                f"(got {self.cutoffs!r})"
            )
        values = [int(part) for part in parts]
        self.cutoffs = ",".join(map(str, values))
        if any(a >= b for a, b in zip(values, values[1:], strict=False)):
            raise LstmlmError(f"--cutoffs must increase (got {self.cutoffs})")
        if self.softmax == "adaptive" and 0 < self.ntoken <= values[-1]:
            raise LstmlmError(
                f"--cutoffs {self.cutoffs} do not fit the vocabulary of {self.ntoken} tokens: each must be "
                f"below {self.ntoken}, e.g. --cutoffs {max(1, self.ntoken // 10)},{max(2, self.ntoken // 2)}"
            )

    @property
    def input_dropout(self) -> float:
        """The dropout rate on the embeddings (``dropouti``, else ``dropout``)."""
        return self.dropout if self.dropouti is None else self.dropouti

    @property
    def hidden_dropout(self) -> float:
        """The dropout rate between layers (``dropouth``, else ``dropout``)."""
        return self.dropout if self.dropouth is None else self.dropouth

    def _take_layer_sizes(self) -> None:
        """Parse ``layer_sizes`` ("1150,1150,400"); it sets ``nlayers`` and ``nhid`` (the last size).

        An ``nlayers`` or ``nhid`` other than its default that disagrees is an error, so
        neither is silently overridden.
        """
        parts = [part.strip() for part in self.layer_sizes.split(",")]
        if not all(part.isascii() and part.isdigit() and int(part) > 0 for part in parts):
            raise LstmlmError(
                f"--layer-sizes must be positive integers separated by commas, e.g. 1150,1150,400 "
                f"(got {self.layer_sizes!r})"
            )
        sizes = [int(part) for part in parts]
        defaults = {f.name: f.default for f in fields(self)}
        if self.nlayers not in (defaults["nlayers"], len(sizes)):
            raise LstmlmError(
                f"--nlayers {self.nlayers} disagrees with --layer-sizes {self.layer_sizes} "
                f"({len(sizes)} layers); drop --nlayers"
            )
        if self.nhid not in (defaults["nhid"], sizes[-1]):
            raise LstmlmError(
                f"--nhid {self.nhid} disagrees with --layer-sizes {self.layer_sizes} "
                f"(last layer {sizes[-1]}); drop --nhid"
            )
        self.layer_sizes = ",".join(map(str, sizes))
        self.nlayers, self.nhid = len(sizes), sizes[-1]


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes token ids."""

    data: str | None = option(
        None,
        "Text file, folder with train/valid/test.txt, or Hugging Face dataset (name or saved folder); "
        "unset: the embedded default corpus.",
    )
    tokenizer: str = option("word", "Tokenizer.", choices=TOKENIZERS)
    vocab_size: int = option(0, "Vocabulary cap (0 = none for word/char, 8192 for bpe).")
    min_freq: int = option(1, "Word/char tokenizer: minimum count to enter the vocabulary.")
    pre_tokenize: str = option(
        "whitespace",
        "Word tokenizer: how text is cut into words, for training and for every text read later: "
        "whitespace; punct (punctuation split off); wikitext (raw English to WikiText's form: "
        "don 't, well @-@ known, 1 @,@ 000).",
        choices=PRE_TOKENIZERS,
    )
    text_column: str = option("text", "Hugging Face dataset: the text column.")
    train_split: str = option("train", "Hugging Face dataset: the training split.")
    valid_split: str = option(
        "validation", "Hugging Face dataset: the validation split (absent: the last 5% of train)."
    )
    test_split: str = option("test", "Hugging Face dataset: the test split.")
    dataset_config: str | None = option(None, "Hugging Face dataset: configuration name.")

    def __post_init__(self) -> None:
        _check_choices(self)
        _positive("vocab-size", self.vocab_size, allow_zero=True)
        _positive("min-freq", self.min_freq)
        if self.pre_tokenize != "whitespace" and self.tokenizer != "word":
            raise LstmlmError(f"--pre-tokenize applies to the word tokenizer, not {self.tokenizer}")
        if self.tokenizer == "bpe" and 0 < self.vocab_size < 260:
            raise LstmlmError(
                f"--vocab-size for bpe must be at least 260 (256 bytes + specials); got {self.vocab_size}"
            )


@dataclass
class TrainConfig:
    """The optimisation: truncated BPTT, clipping, schedule, evaluation and saving cadence."""

    bptt: int = option(35, "Truncated-BPTT window length.")
    batch_size: int = option(20, "Parallel streams (batch size; under torchrun the global batch).")
    eval_batch_size: int = option(10, "Parallel streams when evaluating valid and test.", resumable=True)
    optimizer: str = option(
        "sgd",
        "Optimizer; ntasgd: SGD, then averaged weights once valid loss stops improving (AWD-LSTM's NT-ASGD).",
        choices=OPTIMIZERS,
    )
    nonmono: int = option(
        5, "NT-ASGD: switch when valid loss is worse than the best before the last N evals."
    )
    lr: float = option(
        0.0,
        "Learning rate (0 = the optimizer's default: sgd 20, adamw 0.002, ntasgd 30; "
        f"--cell slstm/mlstm with sgd or ntasgd: {XLSTM_SGD_LR:g}).",
    )
    weight_decay: float = option(0.0, "Weight decay (L2 for sgd, decoupled for adamw).")
    clip: float = option(0.25, "Gradient-norm clipping (0 = off).")
    schedule: str = option(
        "plateau",
        "plateau: lr /= --anneal-factor when valid loss stops improving; cosine, linear: decay to 0 "
        "at the last step or the --max-time deadline, whichever comes first.",
        choices=SCHEDULES,
    )
    anneal_factor: float = option(4.0, "Plateau schedule: divide lr by this.")
    warmup_steps: int = option(0, "Raise the lr linearly from 0 over the first N steps.")
    variable_bptt: bool = option(
        False, "AWD-LSTM's variable window length: about N(bptt, 5), lr scaled by length / bptt."
    )
    grad_accum: int = option(
        1,
        "Split each step's streams into N micro-batches, summing their gradients (same update, less memory).",
    )
    epochs: int = option(10, "Passes over the train split.", resumable=True)
    max_steps: int = option(0, "Stop after this many steps (0 = no limit).", resumable=True)
    max_time: float | None = option(
        None,
        "Stop after M minutes of training (evaluations included), with a final evaluation and checkpoint; "
        "unset: no time limit.",
        resumable=True,
    )
    patience: int = option(
        0, "Stop after N evaluations in a row without a better valid loss (0 = never).", resumable=True
    )
    eval_every: int = option(
        0,
        "Evaluate on valid every N steps instead of at each epoch's end (0 = at each epoch's end); "
        "always at the last step.",
        resumable=True,
    )
    log_every: int = option(50, "Log every N steps.", resumable=True)
    save_every: int = option(0, "Checkpoint every N steps (0 = at evaluations only).", resumable=True)
    save_every_minutes: float = option(0.0, "Checkpoint every M minutes (0 = off).", resumable=True)
    max_bad_steps: int = option(5, "Stop after this many non-finite steps in a row.", resumable=True)
    seed: int = option(1111, "Random seed (runs are deterministic on CPU).")
    device: str = option("auto", "Where to train (auto: cuda, mps, cpu).", choices=DEVICES, resumable=True)
    precision: str = option(
        "auto",
        "Forward-pass precision (auto: bf16 on a GPU that supports it, else fp32; fp16: CUDA only).",
        choices=PRECISIONS,
        resumable=True,  # weights and optimizer state are fp32 in every precision
    )
    compile: bool = option(False, "torch.compile the model for training.", resumable=True)

    def __post_init__(self) -> None:
        _check_choices(self)
        if not isinstance(self.compile, bool):
            raise LstmlmError(f"compile must be true or false (got {self.compile!r})")
        for name in (
            "bptt",
            "batch_size",
            "eval_batch_size",
            "epochs",
            "log_every",
            "max_bad_steps",
            "nonmono",
        ):
            _positive(name.replace("_", "-"), getattr(self, name))
        may_be_zero = ("lr", "weight_decay", "clip", "max_steps", "eval_every", "save_every", "warmup_steps",
                       "save_every_minutes", "patience")  # fmt: skip
        for name in may_be_zero:
            _positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        if self.max_time is not None:
            _positive("max-time", self.max_time)
        _positive("grad-accum", self.grad_accum)
        if self.batch_size % self.grad_accum:
            raise LstmlmError(
                f"--grad-accum {self.grad_accum} must divide --batch-size {self.batch_size} "
                "(each micro-batch takes an equal share of the streams)"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise LstmlmError(f"--seed must be between 0 and 2**64-1 (got {self.seed})")
        if self.anneal_factor <= 1.0:
            raise LstmlmError(f"--anneal-factor must be > 1 (got {self.anneal_factor})")
        self.lr_defaulted = self.lr == 0.0  # not a field: RunConfig may pick the cell's default
        if self.lr_defaulted:
            self.lr = DEFAULT_LR[self.optimizer]


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.train.lr_defaulted and self.model.cell in XLSTM_CELLS and self.train.optimizer != "adamw":
            self.train.lr = XLSTM_SGD_LR

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


def settable_fields() -> list[tuple[str, Field[Any]]]:
    """(section, field) for every field a user sets by flag or TOML key, in declaration order."""
    return [(name, f) for name, kind in SECTIONS.items() for f in fields(kind) if "help" in f.metadata]


def resumable_fields() -> dict[str, set[str]]:
    """The fields ``train --resume`` may change, by section."""
    allowed: dict[str, set[str]] = {name: set() for name in SECTIONS}
    for section, f in settable_fields():
        if f.metadata["resumable"]:
            allowed[section].add(f.name)
    return allowed


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
