"""``ModelConfig``: the architecture (cell, sizes, dropout sites, output layer) and its checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from lstmlm.config.fields import (
    CELLS,
    DEFAULT_FORGET_BIAS,
    DEFAULT_HEADS,
    DEFAULT_MOGRIFY_ROUNDS,
    DEFAULT_MOS_EXPERTS,
    LSTM_TYPE_CELLS,
    MIN_CELLS,
    SOFTMAXES,
    XLSTM_CELLS,
    check_choices,
    check_positive,
    derived,
    option,
)
from lstmlm.errors import LstmlmError

DIRECTIONS = ("forward", "backward")  # which way a model reads its text (``direction``)


@dataclass
class ModelConfig:
    """Embedding -> recurrent stack -> dropout -> linear decoder.

    The AWD-LSTM regularisers (Merity, Keskar & Socher 2017, "Regularizing and Optimizing
    LSTM Language Models") are off by default; the paper's PTB model is ``--emsize 400
    --layer-sizes 1150,1150,400 --locked-dropout --dropouti 0.4 --dropouth 0.3 --dropout 0.4
    --dropoute 0.1 --weight-drop 0.5 --ar-alpha 2 --tar-beta 1`` (WT2: ``--dropouti 0.65``).
    """

    cell: str = option("lstm", "Recurrent cell.", choices=CELLS)
    direction: str = option(
        "forward",
        "Which way the model reads: forward (left to right, the next token) or backward (right to left, "
        "the token before; each split's tokens reversed, so the carried state runs backwards: "
        "flair's backward LM, Akbik et al. 2018).",
        choices=DIRECTIONS,
    )
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
    tied: bool = option(
        True, "Share embedding and decoder weights (needs emsize == nhid; with --softmax mos any sizes)."
    )
    softmax: str = option(
        "full",
        "Output layer: full softmax, or adaptive (Grave et al. 2017): the most frequent words in a head, "
        "the rest in clusters at --cutoffs, exact log-probabilities at a fraction of the cost; or mos, a "
        "mixture of --mos-experts softmaxes (Yang et al. 2018), past the softmax bottleneck at about "
        "--mos-experts times the full softmax's cost.",
        choices=SOFTMAXES,
    )
    cutoffs: str = option(
        "2000,10000",
        "--softmax adaptive: the ids (frequency order) where the vocabulary is cut into head and clusters.",
    )
    mos_experts: int = option(
        DEFAULT_MOS_EXPERTS,
        "--softmax mos: the number K of softmaxes mixed, each over a tanh projection of the last layer "
        "to --emsize units (Yang et al. 2018 used 15 on PTB).",
    )
    forget_bias: float = option(
        DEFAULT_FORGET_BIAS, "Initial forget-gate bias of LSTM-type cells (Jozefowicz et al., 2015)."
    )
    heads: int = option(
        DEFAULT_HEADS,
        "--cell slstm/mlstm: heads per layer, an equal share of the units each (xLSTM).",
    )
    mogrify_rounds: int = option(
        DEFAULT_MOGRIFY_ROUNDS,
        "--cell mogrifier: rounds in which the input and the previous output gate each other before "
        "each LSTM step (Melis et al. 2020; 0 = the LSTM).",
    )
    mogrify_rank: int | None = option(
        None,
        "--cell mogrifier: rank k of the round matrices, each a product of two k-wide ones "
        "(the paper: 40-90); unset: full rank.",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("emsize", "nhid", "nlayers"):
            check_positive(name, getattr(self, name))
        check_positive("ntoken", self.ntoken, allow_zero=True)
        if self.layer_sizes.strip():
            self._take_layer_sizes()
        else:
            self.layer_sizes = ""
        for name in ("dropout", "dropouti", "dropouth", "dropoute", "weight_drop"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise LstmlmError(f"--{name.replace('_', '-')} must be in [0, 1) (got {value})")
        for name in ("ar_alpha", "tar_beta"):
            check_positive(name.replace("_", "-"), getattr(self, name), allow_zero=True)
        if not isinstance(self.locked_dropout, bool):
            raise LstmlmError(f"locked_dropout must be true or false (got {self.locked_dropout!r})")
        if self.tied and self.emsize != self.nhid and self.softmax != "mos":  # mos projects nhid -> emsize
            sizes = "the last of --layer-sizes" if self.layer_sizes else "--nhid"
            raise LstmlmError(
                f"--tied needs --emsize equal to {sizes} (got {self.emsize} and {self.nhid}); "
                "make them equal or pass --no-tied"
            )
        self._check_cutoffs()
        self._check_mos()
        self._check_cell_options()

    def _check_mos(self) -> None:
        check_positive("mos-experts", self.mos_experts)
        if self.mos_experts != DEFAULT_MOS_EXPERTS and self.softmax != "mos":
            raise LstmlmError(
                f"--mos-experts applies to --softmax mos, not {self.softmax}; add --softmax mos or drop it"
            )

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
        check_positive("heads", self.heads)
        if self.heads != DEFAULT_HEADS and self.cell not in XLSTM_CELLS:
            raise LstmlmError(f"--heads applies to --cell {' and '.join(XLSTM_CELLS)}, not {self.cell}")
        if self.cell in XLSTM_CELLS and self.nhid % self.heads:
            raise LstmlmError(
                f"--heads {self.heads} does not divide the hidden size {self.nhid} of --cell {self.cell}: "
                "every head takes an equal share of the units"
            )
        self._check_mogrifier_options()
        if self.weight_drop and self.cell in XLSTM_CELLS + MIN_CELLS:
            raise LstmlmError(
                f"--weight-drop masks a recurrent matrix W_hh, which --cell {self.cell} does not have"
            )

    def _check_mogrifier_options(self) -> None:
        if self.cell != "mogrifier":
            for name, default in (("mogrify_rounds", DEFAULT_MOGRIFY_ROUNDS), ("mogrify_rank", None)):
                if getattr(self, name) != default:
                    flag = name.replace("_", "-")
                    raise LstmlmError(f"--{flag} applies to --cell mogrifier, not {self.cell}")
        check_positive("mogrify-rounds", self.mogrify_rounds, allow_zero=True)
        if self.mogrify_rank is not None:
            check_positive("mogrify-rank", self.mogrify_rank)

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Hidden units of each layer, first to last."""
        if not self.layer_sizes:
            return (self.nhid,) * self.nlayers
        return tuple(int(size) for size in self.layer_sizes.split(","))

    @property
    def decoder_is_embedding(self) -> bool:
        """Whether the decoder's weight is the embedding matrix itself (tied, full softmax; a
        tied adaptive softmax takes slices of it instead, a tied mixture of softmaxes is passed
        it whole: neither holds it as a parameter)."""
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
