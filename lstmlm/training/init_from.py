"""Fine-tuning from a trained run (``train --init-from RUN``): the parent's architecture,
tokenizer and weights, its vocabulary kept or extended, and the lineage the new run records.

``inherit`` (planning, before anything is read but the parent's ``config.json``) takes the
parent's ``[model]`` section and tokenizer kind: a model setting given that differs is one
line naming it. ``read_parent`` (starting) reads the parent's tokenizer and weights, with the
weights' sha256; ``Parent.new_tokenizer`` is the parent's tokenizer (``--vocab keep``) or it
extended with the new text's units (``--vocab extend``, ``data/tokenizer.py``);
``Parent.load_into`` puts the weights into the new model: as they are for ``keep``; for
``extend`` the embedding and output rows (weight and bias) of shared tokens copied and new
rows set to the mean of the parent's rows, as ULMFiT initialises new words (Howard & Ruder
2018, "Universal Language Model Fine-tuning for Text Classification", section 3.2 footnote:
"we initialize the embeddings of new words with the mean of all embeddings"). The adaptive
softmax (Grave et al. 2017) orders its clusters by frequency rank, so appended words would
land in the rarest cluster whatever their frequency in the new text: ``extend`` refuses it.
The mixture of softmaxes (Yang et al. 2018) has one output row per token, as the full softmax
(its untied ``decoder.weight``, its ``decoder.bias``; tied: the embedding's), extended alike;
its prior and projections do not depend on the vocabulary.

``lineage.json`` (``runs/folder.py``) records the parent's path, which weights and their
sha256 and step, the vocabulary mode, the shared/added token counts and the new text's
``<unk>`` share. A resumed run reads only its own checkpoint (one resumed before its first
checkpoint starts from the parent again, rows matched by token); ``lineage_warnings`` says
when the parent's weights changed (or went) since.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmlm.config import RunConfig
from lstmlm.config.sections import DataConfig
from lstmlm.data.sources import LineSource, Progress
from lstmlm.data.tokenizer import Tokenizer, extend_tokenizer
from lstmlm.errors import LstmlmError
from lstmlm.model.lm import LanguageModel
from lstmlm.runs import checkpoint as ckpt
from lstmlm.runs import folder as run_folder

WEIGHT_FILES = {"best": run_folder.BEST, "last": run_folder.MODEL}  # --init-weights
# one row per token: the full softmax's, and the mixture of softmaxes' (untied weight; bias)
VOCAB_ROWS = ("encoder.weight", "decoder.weight", "decoder.bias")
_HASH_CHUNK = 1 << 20


# ---------------------------------------------------------------- planning (no weights read)


def requested(file_values: dict[str, Any], flags: dict[str, dict[str, Any]]) -> str | None:
    """The ``init_from`` asked for: the flag, else the ``--config`` file's; None: none."""
    given = flags.get("train", {}).get("init_from")
    return given if given is not None else file_values.get("train", {}).get("init_from")


# ``[model]`` settings that act only while training (masks, penalties), with no parameter of
# their own: a fine-tuned run may set them afresh (ULMFiT fine-tunes with its own dropouts)
REGULARIZERS = frozenset(
    {"dropout", "dropouti", "dropouth", "locked_dropout", "dropoute", "weight_drop", "ar_alpha", "tar_beta"}
)


def inherit(
    out: Path, init_from: str, file_values: dict[str, Any], flags: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``file_values`` and ``flags`` with the parent's ``[model]`` section and tokenizer kind.

    A ``[model]`` value given (flag or file) must equal the parent's, except the
    ``REGULARIZERS``, and so must a ``tokenizer`` or ``pre_tokenize`` given; ``init_from``
    becomes the parent's absolute path.
    """
    parent = parent_folder(init_from)
    if parent == out.resolve():
        raise LstmlmError(f"--init-from {init_from} and --out name the same run; write the new run elsewhere")
    saved = run_folder.read_config(parent)
    given_model = {**file_values.get("model", {}), **_set(flags.get("model", {}))}
    theirs = {k: v for k, v in saved.to_dict()["model"].items() if k != "ntoken"}
    architecture = {k: v for k, v in theirs.items() if k not in REGULARIZERS}
    _refuse_differences(init_from, given_model, architecture, "the architecture comes from the parent run")
    given_data = {**file_values.get("data", {}), **_set(flags.get("data", {}))}
    kind = {"tokenizer": saved.data.tokenizer, "pre_tokenize": saved.data.pre_tokenize}
    _refuse_differences(
        init_from, given_data, kind, "the tokenizer is the parent run's (--vocab keep or extend)"
    )
    vocab = given_data.get("vocab", DataConfig.vocab)
    if vocab == "extend" and saved.data.tokenizer == "bpe":
        raise LstmlmError(
            f"--init-from {init_from}: --vocab extend works for word and char tokenizers, not the "
            "parent's bpe (its merges cannot be extended without changing how known words are cut); "
            "use --vocab keep"
        )
    if vocab == "extend" and saved.model.softmax == "adaptive":
        raise LstmlmError(
            f"--init-from {init_from}: --vocab extend cannot extend the parent's adaptive softmax "
            "(its clusters follow the parent's frequency ranks); use --vocab keep, or a parent with "
            "--softmax full"
        )
    model = {
        **theirs,
        **{k: v for k, v in given_model.items() if k in REGULARIZERS or k not in theirs},
    }  # unknown keys: refused later
    new_file = {**file_values, "model": model, "data": {**file_values.get("data", {}), **kind}}
    new_flags = {**flags, "model": {}, "train": {**flags.get("train", {}), "init_from": str(parent)}}
    return new_file, new_flags


def parent_folder(init_from: str) -> Path:
    """``--init-from``'s run folder, resolved; a folder that is not a run is one line."""
    path = Path(init_from).expanduser()
    if not path.is_dir():
        raise LstmlmError(f"--init-from {init_from}: run folder not found")
    reason = run_folder.not_a_run(path)
    if reason:
        raise LstmlmError(f"--init-from {init_from}: not an lstmlm run folder: {reason}")
    return path.resolve()


def _set(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _refuse_differences(init_from: str, given: dict[str, Any], theirs: dict[str, Any], why: str) -> None:
    differ = [
        f"--{k.replace('_', '-')} {v} (the parent's: {theirs[k]})"
        for k, v in given.items()
        if k in theirs and v != theirs[k]
    ]
    if differ:
        verb = "differs" if len(differ) == 1 else "differ"
        raise LstmlmError(f"--init-from {init_from}: {why}; {', '.join(differ)} {verb}: leave it out")


# ---------------------------------------------------------------- starting: the parent's files


@dataclass
class Parent:
    """The trained run a new run starts from, as read when the new run starts."""

    run: Path
    config: RunConfig
    tokenizer: Tokenizer
    weights: str  # "best" or "last"
    tensors: dict[str, torch.Tensor]
    step: int
    sha256: str
    extension: dict[str, int] = field(default_factory=dict)  # shared/added, once extended

    @property
    def weights_file(self) -> str:
        return WEIGHT_FILES[self.weights]

    def new_tokenizer(self, data: DataConfig, lines: LineSource, on_progress: Progress | None) -> Tokenizer:
        """The new run's tokenizer: the parent's (keep), or it with the new text's units (extend)."""
        if data.vocab == "keep":
            return self.tokenizer
        extended = extend_tokenizer(
            self.tokenizer, lines, vocab_size=data.vocab_size, min_freq=data.min_freq, on_progress=on_progress
        )
        self.extension = {"shared_tokens": extended.shared, "added_tokens": extended.added}
        return extended.tokenizer

    def load_into(self, model: LanguageModel, tokenizer: Tokenizer) -> None:
        """The parent's weights into ``model``, rows following ``tokenizer``'s vocabulary."""
        path = self.run / self.weights_file
        tensors = dict(self.tensors)
        if tokenizer.vocab_size != self.tokenizer.vocab_size:
            sources = row_sources(self.tokenizer, tokenizer)
            for key in VOCAB_ROWS:
                if key in tensors:
                    tensors[key] = transfer_rows(tensors[key], sources, path)
        ckpt.load_weights_into(model, tensors, path)

    def lineage(self, tokenizer: Tokenizer, train_ids: np.ndarray, vocab: str) -> dict[str, Any]:
        """What ``lineage.json`` records, with the new train text's ``<unk>`` share."""
        eos = int(np.count_nonzero(train_ids == tokenizer.eos_id))
        unk = int(np.count_nonzero(train_ids == tokenizer.unk_id))
        words = len(train_ids) - eos  # line ends are not words of the text
        return {
            "parent": str(self.run),
            "weights": self.weights,
            "weights_file": self.weights_file,
            "sha256": self.sha256,
            "step": self.step,
            "vocab": vocab,
            "parent_vocab_size": self.tokenizer.vocab_size,
            "vocab_size": tokenizer.vocab_size,
            **self.extension,
            "unk_tokens": unk,
            "words": words,
            "unk_share": unk / words if words else 0.0,
        }


def starts_from_parent(out: Path, config: RunConfig, resume: bool) -> bool:
    """Whether the run's weights come from its parent: a new fine-tuned run, or one resumed
    before its first checkpoint (else a resume reads only its own checkpoint)."""
    if not config.train.init_from:
        return False
    return not resume or not any((out / name).exists() for name in (run_folder.MODEL, run_folder.PREV_MODEL))


def read_parent(config: RunConfig) -> Parent:
    """The parent run named by ``config.train.init_from``: tokenizer, weights and their sha256.

    A missing or damaged file is one line, raised before the new run folder is touched.
    """
    assert config.train.init_from is not None
    run = parent_folder(config.train.init_from)
    saved = run_folder.read_config(run)
    name = WEIGHT_FILES[config.train.init_weights]
    path = run / name
    if not path.is_file():
        other = "last" if config.train.init_weights == "best" else "best"
        raise LstmlmError(
            f"--init-from {run}: it has no {name} (--init-weights {config.train.init_weights}); "
            f"try --init-weights {other}"
        )
    tensors, step = ckpt.read_weights(path)  # a damaged file: one line naming it
    digest = file_sha256(path)
    tokenizer = Tokenizer.load(run / run_folder.TOKENIZER)
    if tokenizer.vocab_size != saved.model.ntoken:
        raise LstmlmError(
            f"--init-from {run}: its {run_folder.TOKENIZER} ({tokenizer.vocab_size} tokens) does not "
            f"belong to its {run_folder.CONFIG} (ntoken {saved.model.ntoken})"
        )
    return Parent(run, saved, tokenizer, config.train.init_weights, tensors, step, digest)


def row_sources(parent: Tokenizer, child: Tokenizer) -> torch.Tensor:
    """For each id of ``child``, the id of the same token in ``parent``; -1 for a new token."""
    ids = [parent.id(child.token(i)) for i in range(child.vocab_size)]
    return torch.tensor([-1 if i is None else i for i in ids], dtype=torch.long)


def transfer_rows(rows: torch.Tensor, sources: torch.Tensor, path: Path) -> torch.Tensor:
    """``rows`` (parent vocabulary first: (V_parent, ...)) re-indexed by ``sources``: a known
    token's row copied, a new token's row the mean of all the parent's rows (ULMFiT)."""
    known = sources >= 0
    if known.any() and int(sources.max()) >= rows.shape[0]:
        raise LstmlmError(f"{path}: weights do not fit the parent's tokenizer ({rows.shape[0]} rows)")
    mean = rows.mean(dim=0)  # (E,) for a weight, () for a bias
    out = mean.expand(len(sources), *rows.shape[1:]).clone()
    out[known] = rows[sources[known]]
    return out


def note(lineage: dict[str, Any]) -> str:
    """What the start of a fine-tuned run says about its parent and vocabulary."""
    start = f"fine-tuning from {lineage['parent']} ({lineage['weights_file']}, step {lineage['step']:,})"
    share = f"{lineage['unk_share']:.1%} of the new train text's tokens are <unk>"
    share += f" ({lineage['unk_tokens']:,} of {lineage['words']:,})"
    if lineage["vocab"] == "keep":
        return f"{start} with its vocabulary of {lineage['vocab_size']:,} tokens: {share}"
    shared, added = lineage.get("shared_tokens", 0), lineage.get("added_tokens", 0)
    return (
        f"{start}, its vocabulary extended: {shared:,} of the new text's {shared + added:,} tokens shared, "
        f"{added:,} added (rows at the mean of the parent's), {lineage['vocab_size']:,} in all; {share}"
    )


# ---------------------------------------------------------------- resuming


def lineage_warnings(run_dir: Path) -> list[str]:
    """On resume: whether the parent's weights changed since the run started from them.

    A warning, not an error: resuming reads only the run's own checkpoint, and
    ``lineage.json`` keeps the sha256 of the weights the run did start from.
    """
    lineage = run_folder.read_lineage(run_dir)
    if lineage is None:
        return []
    path = Path(lineage["parent"]) / str(lineage.get("weights_file", run_folder.BEST))
    try:
        digest = file_sha256(path)
    except OSError:
        return [f"the parent run's weights {path} are gone; resuming from this run's own checkpoint"]
    if digest != lineage.get("sha256"):
        then = str(lineage.get("sha256"))[:12]
        return [
            f"the parent run's weights {path} changed since this run was fine-tuned from them "
            f"(sha256 {then}… then, {digest[:12]}… now); resuming from this run's own checkpoint"
        ]
    return []


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
