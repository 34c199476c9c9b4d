"""The run's settings: ``DataConfig``, ``TrainConfig`` and ``RunConfig``, which combines them
with ``ModelConfig`` (``config/model.py``), one validated dataclass per concern.

Precedence: dataclass defaults < ``--config FILE.toml`` < command-line flags.
The resolved ``RunConfig`` is written to ``config.json`` in every run folder and
is enough to rebuild the tokenizer's data pipeline, the model and the training.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from lstmlm.config.fields import (
    DEFAULT_LR,
    DEVICES,
    MAX_SEED,
    OPTIMIZERS,
    PRE_TOKENIZERS,
    PRECISIONS,
    SCHEDULES,
    TOKENIZERS,
    XLSTM_CELLS,
    XLSTM_SGD_LR,
    build_section,
    check_choices,
    check_frozen_parts,
    check_positive,
    option,
    parse_parts,
)
from lstmlm.config.model import ModelConfig
from lstmlm.errors import LstmlmError

INIT_WEIGHTS = ("best", "last")  # --init-from: which of the parent run's weights
VOCAB_MODES = ("keep", "extend")  # --init-from: the parent's vocabulary as it is, or with the new text's


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes token ids."""

    data: str | list[str] | None = option(
        None,
        "Text: a file; a folder (train/valid/test.txt, or any text files, read in name order); a quoted "
        "pattern such as 'shards/*.txt'; or a Hugging Face dataset (name or saved folder). Repeat it to "
        "train on several, in order. Unset: the embedded default corpus.",
    )  # one source is a string (as in every config.json before lists), several a list
    valid_data: str | None = option(
        None,
        "Validation text: a file, a folder of text files or a quoted pattern, read whole (instead of "
        "the validation text --data holds or sets aside).",
    )
    test_data: str | None = option(
        None,
        "Test text: a file, a folder of text files or a quoted pattern, read whole (instead of the "
        "test text --data holds or sets aside).",
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
    vocab: str = option(
        "keep",
        "--init-from: keep the parent run's vocabulary (new words become <unk>), or extend it with the new "
        "text's (new rows start at the mean of the parent's, as in ULMFiT).",
        choices=VOCAB_MODES,
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if isinstance(self.data, list):
            self.data = _one_or_several(self.data)
        check_positive("vocab-size", self.vocab_size, allow_zero=True)
        check_positive("min-freq", self.min_freq)
        if self.pre_tokenize != "whitespace" and self.tokenizer != "word":
            raise LstmlmError(f"--pre-tokenize applies to the word tokenizer, not {self.tokenizer}")
        if self.tokenizer == "bpe" and 0 < self.vocab_size < 260:
            raise LstmlmError(
                f"--vocab-size for bpe must be at least 260 (256 bytes + specials); got {self.vocab_size}"
            )


def _one_or_several(sources: list[str]) -> str | list[str]:
    """``--data`` given as a list: one source as its string, several as the list."""
    if not sources:
        raise LstmlmError("data is an empty list: name at least one text source, or leave data out")
    if not all(isinstance(source, str) for source in sources):
        raise LstmlmError(f"data must be a string or a list of strings (got {sources!r})")
    return sources[0] if len(sources) == 1 else list(sources)


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
        "at the last step or the --max-time deadline, whichever comes first; stlr: ULMFiT's slanted "
        "triangle, up for --stlr-cut-frac of the run, then down to lr / --stlr-ratio.",
        choices=SCHEDULES,
    )
    anneal_factor: float = option(4.0, "Plateau schedule: divide lr by this.")
    warmup_steps: int = option(0, "Raise the lr linearly from 0 over the first N steps.")
    # ULMFiT's pieces (Howard & Ruder 2018; training/layer_groups.py): none may change on
    # --resume, since each changes the arithmetic of the steps
    stlr_cut_frac: float = option(0.1, "--schedule stlr: the share of the run over which the lr rises.")
    stlr_ratio: float = option(32.0, "--schedule stlr: how much smaller the lowest lr is than --lr.")
    layer_lr_decay: float = option(
        1.0,
        "Discriminative learning rates: each layer below the top (the decoder) trains at the lr of the "
        "one above / F, the embedding lowest (1 = one lr; ULMFiT: 2.6).",
    )
    unfreeze_every: int = option(
        0,
        "Gradual unfreezing: train the decoder alone, then one more layer downwards every N steps "
        "(0 = all at once).",
    )
    freeze: str = option(
        "",
        "Parts never trained, comma-separated: embedding, rnn.0 (the first recurrent layer), rnn.1, ..., "
        "decoder; tied weights: either one freezes the shared matrix.",
    )
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
    # fine-tuning (training/init_from.py): the parent run's architecture, tokenizer and weights
    init_from: str | None = option(
        None,
        "Fine-tune a trained run: start from its weights, with its architecture and tokenizer "
        "(--vocab keep or extend); a [model] setting given must equal the run's.",
    )
    init_weights: str = option(
        "best", "--init-from: the run's best weights on valid, or its last checkpoint.", choices=INIT_WEIGHTS
    )

    def __post_init__(self) -> None:
        check_choices(self)
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
            check_positive(name.replace("_", "-"), getattr(self, name))
        may_be_zero = ("lr", "weight_decay", "clip", "max_steps", "eval_every", "save_every", "warmup_steps",
                       "save_every_minutes", "patience")  # fmt: skip
        for name in may_be_zero:
            check_positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        if self.max_time is not None:
            check_positive("max-time", self.max_time)
        check_positive("grad-accum", self.grad_accum)
        if self.batch_size % self.grad_accum:
            raise LstmlmError(
                f"--grad-accum {self.grad_accum} must divide --batch-size {self.batch_size} "
                "(each micro-batch takes an equal share of the streams)"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise LstmlmError(f"--seed must be between 0 and 2**64-1 (got {self.seed})")
        if self.anneal_factor <= 1.0:
            raise LstmlmError(f"--anneal-factor must be > 1 (got {self.anneal_factor})")
        self._check_ulmfit()
        self.lr_defaulted = self.lr == 0.0  # not a field: RunConfig may pick the cell's default
        if self.lr_defaulted:
            self.lr = DEFAULT_LR[self.optimizer]

    def _check_ulmfit(self) -> None:
        """ULMFiT's pieces, as far as they can be checked without the model (``RunConfig`` does the rest)."""
        check_positive("layer-lr-decay", self.layer_lr_decay)
        check_positive("unfreeze-every", self.unfreeze_every, allow_zero=True)
        if not 0.0 < self.stlr_cut_frac < 1.0:
            raise LstmlmError(f"--stlr-cut-frac must be > 0 and < 1 (got {self.stlr_cut_frac})")
        if not 1.0 <= self.stlr_ratio < math.inf:
            raise LstmlmError(f"--stlr-ratio must be >= 1 (got {self.stlr_ratio})")
        if self.schedule != "stlr" and (self.stlr_cut_frac, self.stlr_ratio) != (0.1, 32.0):
            raise LstmlmError(
                f"--stlr-cut-frac and --stlr-ratio apply to --schedule stlr, not {self.schedule}"
            )
        parse_parts(self.freeze)

    def frozen_parts(self) -> tuple[str, ...]:
        """``--freeze`` as part names (``config.fields.model_parts``)."""
        return parse_parts(self.freeze)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.train.lr_defaulted and self.model.cell in XLSTM_CELLS and self.train.optimizer != "adamw":
            self.train.lr = XLSTM_SGD_LR
        check_frozen_parts(self.train.frozen_parts(), self.model.nlayers, self.model.tied)
        if self.train.init_from is None and (self.data.vocab, self.train.init_weights) != ("keep", "best"):
            raise LstmlmError("--vocab and --init-weights apply to fine-tuning: give --init-from RUN")

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
            model=build_section(ModelConfig, raw.get("model", {}), f"{source} [model]"),
            data=build_section(DataConfig, raw.get("data", {}), f"{source} [data]"),
            train=build_section(TrainConfig, raw.get("train", {}), f"{source} [train]"),
        )


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
