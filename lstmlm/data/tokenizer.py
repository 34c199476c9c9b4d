"""Word, character and byte-level BPE tokenizers, built and stored with `tokenizers`.

Every kind is a plain `tokenizers.Tokenizer` saved as a standard ``tokenizer.json``;
the kind is read back from its pre-tokenizer (ByteLevel = bpe, a split into single
characters = char, else word), and so is the word kind's ``pre_tokenize`` choice
(``pre_tokenize.py``; a tokenizer saved before the choice existed reads as whitespace).
``extend_tokenizer`` appends a new text's units to a word or char tokenizer, the old ids
unchanged (fine-tuning, ``train --vocab extend``).

The specials ``<unk>`` (id 0) and ``<eos>`` (id 1) live in the model vocabulary but are
not registered as "added tokens", so their spellings are never matched inside text:
``<eos>`` enters the id stream only at line ends (``encode_lines``, or ``"\\n"`` in
``encode``), and char/bpe round-trip any text exactly, even a literal ``"<eos>"``.
For the word kind, a word spelled ``<unk>`` (WikiText, PTB) or ``<eos>`` is an ordinary
vocabulary lookup and gets id 0 or 1, as in PyTorch's word language model.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from lstmlm.data import pre_tokenize as pre
from lstmlm.data.sources import LineSource, Progress
from lstmlm.errors import LstmlmError
from lstmlm.files import write_atomic

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

SPECIALS = ("<unk>", "<eos>")
KINDS = ("word", "char", "bpe")
DEFAULT_BPE_VOCAB = 8192
_ANY_CHAR = r"[\s\S]"  # Oniguruma's "." does not match "\n"
_NO_CAP = 2**31 - 1
_BATCH_LINES = 10_000


def train_tokenizer(
    kind: str,
    lines: LineSource | Iterable[str],
    *,
    vocab_size: int = 0,
    min_freq: int = 1,
    pre_tokenize: str = pre.DEFAULT,
    on_progress: Progress | None = None,
) -> Tokenizer:
    """Train a ``word``, ``char`` or ``bpe`` tokenizer on ``lines`` (the train split).

    ``vocab_size`` caps the whole vocabulary, specials included (most frequent units
    kept, ties broken by the trainer's fixed order); 0 means no cap for word/char and
    8192 for bpe. ``min_freq`` drops rarer words/chars (bpe: rarer merges).
    ``pre_tokenize`` (word only): how text is cut into words (``pre_tokenize.py``).
    The same input always gives a byte-identical ``tokenizer.json``. The lines are
    streamed through the trainer in batches; ``on_progress(lines_done, lines_total)``
    follows them (total None when ``lines`` has no length).
    """
    if kind not in KINDS:
        raise LstmlmError(f"--tokenizer must be one of {', '.join(KINDS)} (got {kind!r})")
    if pre_tokenize != pre.DEFAULT and kind != "word":
        raise LstmlmError(f"--pre-tokenize applies to the word tokenizer, not {kind}")
    if kind != "bpe" and 0 < vocab_size <= len(SPECIALS):
        raise LstmlmError(
            f"--vocab-size {vocab_size} leaves no room for {kind}s next to {', '.join(SPECIALS)}"
        )
    batches = _batches(lines, on_progress)
    if kind == "bpe":
        return Tokenizer(_train_bpe(batches, vocab_size or DEFAULT_BPE_VOCAB, min_freq))
    if kind == "word":
        vocab = _count_units(_word_pipeline({}, pre_tokenize), batches, vocab_size, min_freq)
        return Tokenizer(_word_pipeline(vocab, pre_tokenize))
    vocab = _count_units(_char_pipeline({}), batches, vocab_size, min_freq)
    return Tokenizer(_char_pipeline(vocab))


@dataclass(frozen=True)
class Extension:
    """A parent tokenizer extended with a new text's units (``extend_tokenizer``)."""

    tokenizer: Tokenizer
    shared: int  # units of the new text's vocabulary the parent already had (specials apart)
    added: int  # units appended after the parent's, in the new text's frequency order


def extend_tokenizer(
    parent: Tokenizer,
    lines: LineSource | Iterable[str],
    *,
    vocab_size: int = 0,
    min_freq: int = 1,
    on_progress: Progress | None = None,
) -> Extension:
    """``parent`` (word or char) with the units of ``lines`` it lacks appended, its ids unchanged.

    The new text's vocabulary is the one a new run would learn from it (same kind and
    pre-tokenization as the parent; ``vocab_size`` and ``min_freq`` of the new run); its units
    missing from the parent get the ids after the parent's, most frequent first. bpe is
    refused: its merges are learned jointly, and merges learned on the new text alone would
    cut words the parent's merges already cover into other pieces.
    """
    if parent.kind == "bpe":
        raise LstmlmError(
            "--vocab extend works for word and char tokenizers, not bpe (its merges cannot be extended "
            "without changing how known words are cut); use --vocab keep: bpe has no <unk>"
        )
    pre_tokenize = parent.pre_tokenize or pre.DEFAULT
    fresh = train_tokenizer(
        parent.kind,
        lines,
        vocab_size=vocab_size,
        min_freq=min_freq,
        pre_tokenize=pre_tokenize,
        on_progress=on_progress,
    )
    known = parent._hf.get_vocab()
    learned = fresh._hf.get_vocab()
    units = [unit for unit in sorted(learned, key=learned.__getitem__) if unit not in SPECIALS]
    new_units = [unit for unit in units if unit not in known]
    vocab = dict(known)
    for unit in new_units:
        vocab[unit] = len(vocab)
    hf = _word_pipeline(vocab, pre_tokenize) if parent.kind == "word" else _char_pipeline(vocab)
    return Extension(Tokenizer(hf), shared=len(units) - len(new_units), added=len(new_units))


def _word_pipeline(vocab: dict[str, int], pre_tokenize: str) -> HFTokenizer:
    tok = HFTokenizer(models.WordLevel(vocab, unk_token=SPECIALS[0]))
    normalizer, tok.pre_tokenizer = pre.pipeline(pre_tokenize)
    if normalizer is not None:
        tok.normalizer = normalizer
    return tok


def _char_pipeline(vocab: dict[str, int]) -> HFTokenizer:
    tok = HFTokenizer(models.WordLevel(vocab, unk_token=SPECIALS[0]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_ANY_CHAR), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return tok


def _count_units(
    tok: HFTokenizer, batches: Iterator[list[str]], vocab_size: int, min_freq: int
) -> dict[str, int]:
    """Vocabulary of the units ``tok`` splits the lines into: specials, then most frequent."""
    # The trainer's own special-token handling is unusable here: a special that also
    # occurs in the text (PTB's "<unk>") loses its id, so specials are placed by hand.
    trainer = trainers.WordLevelTrainer(
        vocab_size=_NO_CAP, min_frequency=min_freq, special_tokens=[], show_progress=False
    )
    tok.train_from_iterator(batches, trainer=trainer)
    learned = tok.get_vocab()
    units = [unit for unit in sorted(learned, key=learned.__getitem__) if unit not in SPECIALS]
    if vocab_size:
        units = units[: vocab_size - len(SPECIALS)]
    return {unit: i for i, unit in enumerate((*SPECIALS, *units))}


def _train_bpe(batches: Iterator[list[str]], vocab_size: int, min_freq: int) -> HFTokenizer:
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_freq,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(batches, trainer=trainer)
    # The byte-level regex keeps "<" apart from letters, so no merge can spell a special.
    return _without_added_tokens(tok)


def _without_added_tokens(tok: HFTokenizer) -> HFTokenizer:
    data = json.loads(tok.to_str())
    data["added_tokens"] = []
    return HFTokenizer.from_str(json.dumps(data))


def _batches(lines: LineSource | Iterable[str], on_progress: Progress | None = None) -> Iterator[list[str]]:
    if isinstance(lines, LineSource):
        yield from lines.iter_batches(on_progress=on_progress)
        return
    total = len(lines) if isinstance(lines, Sized) else None
    it, done = iter(lines), 0
    while batch := list(itertools.islice(it, _BATCH_LINES)):
        yield batch
        done += len(batch)
        if on_progress is not None:
            on_progress(done, total)


class Tokenizer:
    """A trained `tokenizers.Tokenizer` plus the language model's line-end convention."""

    def __init__(self, hf: HFTokenizer, *, source: str = "tokenizer") -> None:
        self._hf = hf
        self.kind, self.pre_tokenize = _kind_of(hf, source)
        self.unk_id = hf.token_to_id(SPECIALS[0])
        self.eos_id = _eos_id(hf, source)
        self.vocab_size = hf.get_vocab_size(with_added_tokens=True)
        # what ``decode`` puts between two tokens of a line where it only joins their strings
        # (word: no decoder, joined by spaces; char: Fuse); None where pieces interact (bpe)
        self.piece_separator = {"word": " ", "char": ""}.get(self.kind) if _joins(hf, self.kind) else None

    def __repr__(self) -> str:
        return f"Tokenizer({self.kind!r}, pre_tokenize={self.pre_tokenize!r}, vocab_size={self.vocab_size})"

    def encode_lines(self, lines: Iterable[str], *, dtype: DTypeLike = np.int64) -> np.ndarray:
        """Ids of every line followed by ``<eos>``, as one flat array of ``dtype``."""
        chunks = [self._encode_batch(batch, dtype) for batch in _batches(lines)]
        if len(chunks) == 1:
            return chunks[0]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)

    def _encode_batch(self, lines: list[str], dtype: DTypeLike) -> np.ndarray:
        encodings = self._hf.encode_batch(lines, add_special_tokens=False)
        eos = [self.eos_id]
        ids = itertools.chain.from_iterable(e.ids + eos for e in encodings)
        return np.fromiter(ids, dtype=dtype)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` with ``<eos>`` for each ``"\\n"`` and none appended (for prompts)."""
        ids: list[int] = []
        for i, line in enumerate(text.split("\n")):
            if i:
                ids.append(self.eos_id)
            ids.extend(self._hf.encode(line, add_special_tokens=False).ids)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``: ``<eos>`` becomes ``"\\n"``; word tokens are joined by spaces,
        char and bpe pieces reproduce the original text exactly."""
        values = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        lines: list[list[int]] = [[]]
        for value in values:
            if value == self.eos_id:
                lines.append([])
            else:
                lines[-1].append(int(value))
        return "\n".join(self._hf.decode(line, skip_special_tokens=False) for line in lines)

    def token(self, token_id: int) -> str:
        """The vocabulary entry for ``token_id`` (bpe: byte-level form, e.g. ``"Ġthe"``)."""
        token = self._hf.id_to_token(int(token_id))
        if token is None:
            raise LstmlmError(f"token id {token_id} is outside the vocabulary (size {self.vocab_size})")
        return token

    def id(self, token: str) -> int | None:
        """The id of vocabulary entry ``token``, or None if it has none."""
        return self._hf.token_to_id(token)

    def to_json(self) -> str:
        """The ``tokenizer.json`` content (stable: same tokenizer, same string)."""
        return self._hf.to_str(pretty=True)

    def save(self, path: Path) -> None:
        """Write ``tokenizer.json`` to ``path`` atomically."""
        write_atomic(Path(path), self.to_json().encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        """Read a ``tokenizer.json`` written by ``save``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise LstmlmError(f"{path}: tokenizer file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise LstmlmError(f"{path}: cannot read the tokenizer ({e})") from None
        return cls.from_json(text, source=str(path))

    @classmethod
    def from_json(cls, text: str, *, source: str = "tokenizer.json") -> Tokenizer:
        """Rebuild a tokenizer from ``to_json`` output; ``source`` names it in errors."""
        try:
            hf = HFTokenizer.from_str(text)
        except Exception as e:  # tokenizers raises a bare Exception for any parse error
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise LstmlmError(f"{source}: not a valid tokenizer.json ({reason})") from None
        return cls(hf, source=source)


def _kind_of(hf: HFTokenizer, source: str) -> tuple[str, str | None]:
    """(kind, the word kind's pre-tokenization or None) of a loaded tokenizer."""
    stored = json.loads(hf.to_str())
    pipeline = (stored.get("normalizer"), stored.get("pre_tokenizer"))
    if pipeline[1] is not None and pipeline[1].get("type") == "ByteLevel":
        return "bpe", None
    if pipeline == _components(_char_pipeline({})):
        return "char", None
    for name in pre.PRE_TOKENIZERS:
        if pipeline == _components(_word_pipeline({}, name)):
            return "word", name
    raise LstmlmError(f"{source}: not an lstmlm tokenizer (unknown pre-tokenizer)")


def _joins(hf: HFTokenizer, kind: str) -> bool:
    """Whether ``hf`` decodes a line by joining its tokens' strings (word, char as lstmlm builds them)."""
    decoder = json.loads(hf.to_str()).get("decoder")
    return (kind, decoder) in (("word", None), ("char", {"type": "Fuse"}))


def _components(tok: HFTokenizer) -> tuple[object, object]:
    """The normalizer and pre-tokenizer as ``tokenizer.json`` stores them."""
    stored = json.loads(tok.to_str())
    return stored.get("normalizer"), stored.get("pre_tokenizer")


def _eos_id(hf: HFTokenizer, source: str) -> int:
    eos_id = hf.token_to_id(SPECIALS[1])
    if eos_id is None:
        raise LstmlmError(f"{source}: the tokenizer has no {SPECIALS[1]} token")
    return eos_id
