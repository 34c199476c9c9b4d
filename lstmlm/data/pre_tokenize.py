"""How the word tokenizer cuts text into words: ``--pre-tokenize whitespace|punct|wikitext``.

The choice lives in ``tokenizer.json`` itself, as the `tokenizers` normalizer and
pre-tokenizer it builds, so every text a run reads later (prompts, ``eval --data``,
agreement suites) is cut exactly as its training text was, and a raw sentence gives the
same ids as its pre-tokenized form:

* ``whitespace``: words are what lies between spaces (the default; WikiText and PTB come
  pre-tokenized this way).
* ``punct``: each punctuation mark is a word of its own (``Robert.`` -> ``Robert .``).
* ``wikitext``: raw English to WikiText-2/103's conventions: punctuation split off, but
  not from abbreviations (``U.S.``, ``Mr.``, initials); contractions and possessives split
  before the apostrophe (``don 't``, ``Mary 's``); a hyphen inside a word, a comma or point
  inside a number marked (``well @-@ known``, ``1 @,@ 000``, ``2 @.@ 5``). Text already in
  that form passes unchanged.

``<unk>`` and ``<eos>`` written in the text stay whole under every choice.
"""

from __future__ import annotations

from tokenizers import Regex, normalizers, pre_tokenizers
from tokenizers.normalizers import Normalizer
from tokenizers.pre_tokenizers import PreTokenizer

from lstmlm.config import PRE_TOKENIZERS

DEFAULT = PRE_TOKENIZERS[0]

_SPECIAL = r"<unk>|<eos>"
_PUNCT_WORD = rf"{_SPECIAL}|\w+|[^\w\s]"  # a word, or one punctuation mark
# WikiText keeps these with their point (from its own text: "Mr.", "No.", "St.", ...)
_ABBREVIATIONS = (
    "Mr|Mrs|Ms|Dr|St|No|Nos|Jr|Sr|Mt|Co|Corp|Inc|Ltd|Bros|vs|var|Vol|Gen|Col|Lt|Sgt|Capt|Rev|Prof|Gov|Sen|Rep"
)
_CONTRACTION = r"'(?:s|t|re|ve|ll|d|m|S|T|RE|VE|LL|D|M)(?!\w)"  # after the normalizer's split
_WIKITEXT_WORD = (
    rf"{_SPECIAL}|@[-,.]@|{_CONTRACTION}|(?:\p{{Lu}}\.)+|(?:\w\.){{2,}}|(?:{_ABBREVIATIONS})\.(?!\w)"
    r"|\.{2,}|\w+|[^\w\s]"  # an ellipsis stays one word
)
_WIKITEXT_MARKS = (  # (pattern, replacement), applied in order before the split
    (r"(?<=\d),(?=\d)", " @,@ "),
    (r"(?<=\d)\.(?=\d)", " @.@ "),
    (r"(?<=\w)-(?=\w)", " @-@ "),
    (r"(?<=\w)'(?=\w)", " '"),
)


def _split_words(pattern: str) -> PreTokenizer:
    """Whitespace, then each match of ``pattern`` a word (nothing in a word is left unmatched)."""
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(pattern), behavior="isolated")]
    )


def pipeline(name: str) -> tuple[Normalizer | None, PreTokenizer]:
    """The normalizer (or None) and pre-tokenizer of the word tokenizer for ``name``."""
    if name == "whitespace":
        return None, pre_tokenizers.WhitespaceSplit()
    if name == "punct":
        return None, _split_words(_PUNCT_WORD)
    if name == "wikitext":
        marks = [normalizers.Replace(Regex(pattern), new) for pattern, new in _WIKITEXT_MARKS]
        return normalizers.Sequence(marks), _split_words(_WIKITEXT_WORD)
    raise ValueError(f"unknown pre-tokenization {name!r}")
